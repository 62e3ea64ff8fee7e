"""A warm Python process that starts containers with the library, for bench/run_bench.py.

    python bench/in_process_worker.py [--namespaces default|unshare] [--preload MODULE]

It imports ``engine`` (and ``--preload``'s module, e.g. ``textual.app`` to weigh what the TUI's
process carries), starts a few containers to warm up, then reads block sizes on stdin: for each
line ``N`` it runs ``engine.run`` N times back to back and prints the N wall times (seconds) on
one line. ``0`` or end of input ends it.

A process of its own, not the bench's: the bench imports subprocess, tarfile, hashlib... for its
own work, and every module a process has loaded makes each of its forks cost more (the page
tables copied, the pages touched after the fork): that is the caller's weight, measured apart.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

UNSHARE_NAMESPACES = {"pid", "mnt", "uts", "ipc"}  # what `unshare --fork --pid --mount --uts --ipc` makes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--namespaces", choices=("default", "unshare"), default="default")
    parser.add_argument("--preload", default="", help="a module to import first (the TUI's: textual.app)")
    args = parser.parse_args()
    if args.preload:
        importlib.import_module(args.preload)
    import engine

    extra = {"namespaces": UNSHARE_NAMESPACES} if args.namespaces == "unshare" else {}
    spec = engine.ContainerSpec("busybox", ["true"], auto_remove=True, **extra)
    devnull = os.open(os.devnull, os.O_WRONLY)
    stdio = (0, devnull, devnull)
    for _ in range(3):
        engine.run(spec, stdio=stdio)
    print("ready", flush=True)
    for line in sys.stdin:
        count = int(line)
        if count <= 0:
            break
        times = []
        for _ in range(count):
            start = time.perf_counter()
            engine.run(spec, stdio=stdio)
            times.append(time.perf_counter() - start)
        print(" ".join(f"{t:.6f}" for t in times), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
