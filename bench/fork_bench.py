"""What a fork costs a Python process before the child runs its first line: os.fork() or libc's.

    .venv/bin/python bench/fork_bench.py [--preload textual.app] [--rounds 400]

The child writes the time into shared memory as its first act and exits; the parent has taken
the time just before forking. ``os.fork()`` runs CPython's fork bookkeeping and every imported
module's at-fork handlers in both processes; libc's ``fork()`` (through ``ctypes.PyDLL``, holding
the GIL) runs none, which is what ``engine.syscalls.fork_to_exec`` uses for a container's init
when the caller has no other thread. The two take turns; medians are printed.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import mmap
import os
import statistics
import struct
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def one_fork(fork: Callable[[], int], stamp: mmap.mmap) -> tuple[float, float]:
    """(ms until the child's first line, ms until the parent has reaped it)."""
    start = time.perf_counter_ns()
    pid = fork()
    if pid == 0:
        stamp[:8] = struct.pack("q", time.perf_counter_ns())  # CLOCK_MONOTONIC: the same clock in both
        os._exit(0)
    os.waitpid(pid, 0)
    reaped = time.perf_counter_ns()
    child = struct.unpack("q", stamp[:8])[0]
    return (child - start) / 1e6, (reaped - start) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preload", default="", help="a module to import first (the TUI's: textual.app)")
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    import engine.container  # noqa: F401 -- the weight of a process that uses the library

    if args.preload:
        importlib.import_module(args.preload)
    libc_fork = ctypes.PyDLL(None, use_errno=True).fork
    forks = {"os.fork()": os.fork, "libc fork()": libc_fork}
    stamp = mmap.mmap(-1, mmap.PAGESIZE)  # MAP_SHARED | MAP_ANONYMOUS: the child's writes reach us
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in forks}
    for _ in range(args.rounds):
        for name, fork in forks.items():
            samples[name].append(one_fork(fork, stamp))
    loaded = f" ({args.preload} loaded)" if args.preload else ""
    print(f"{'fork' + loaded:<34}{'first line ms':>14}{'reaped ms':>11}")
    for name, times in samples.items():
        first, reaped = (statistics.median(t[i] for t in times) for i in (0, 1))
        print(f"{name:<34}{first:>14.3f}{reaped:>11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
