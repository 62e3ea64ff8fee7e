"""engine.run of this tree against an older commit's, side by side in one run.

    sudo .venv/bin/python bench/compare_commits.py COMMIT [--namespaces unshare|default] [--rounds 30]
                                                         [--preload textual.app]

This VM's milliseconds drift by a quarter (and its disk has slow minutes) from one half hour to
the next, so two benches taken apart cannot tell a 10% change. Here both versions run at once:
a git worktree of COMMIT in a temporary directory, one warm worker process per tree
(``in_process_worker.py``, the bench's own), and ``unshare ... chroot ... true`` as the yardstick,
taking turns in blocks of ten. It prints each one's median and its ratio to ``unshare``.

Both workers share one state root (under /tmp, with run/ on a tmpfs, as the bench's) and one
cgroup prefix, all removed at the end, with the worktree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
RUN_ID = os.urandom(3).hex()
ROOT = f"/tmp/minibox-compare-{RUN_ID}"
PREFIX = f"minibox-compare-{RUN_ID}"
os.environ.update(MINIBOX_ROOT=ROOT, MINIBOX_PREFIX=PREFIX)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as the bench: bytecode cached, as users' installs


def start_worker(tree: str, namespaces: str, preload: str) -> subprocess.Popen:
    worker = subprocess.Popen(
        [sys.executable, os.path.join(tree, "bench", "in_process_worker.py"), "--namespaces", namespaces,
         *(["--preload", preload] if preload else [])],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if worker.stdout.readline().strip() != "ready":
        raise SystemExit(f"compare: the worker of {tree} did not start")
    return worker


def block(worker: subprocess.Popen) -> list[float]:
    worker.stdin.write("10\n")
    worker.stdin.flush()
    return [float(t) for t in worker.stdout.readline().split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("commit", help="the older version, e.g. HEAD~3 or a commit ID")
    parser.add_argument("--namespaces", choices=("unshare", "default"), default="unshare")
    parser.add_argument("--rounds", type=int, default=30, help="blocks of ten per version")
    parser.add_argument("--preload", default="", help="a module both workers import first (the TUI's: textual.app)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("compare: run as root")
    from engine import images
    from engine.state import Paths

    old_tree = tempfile.mkdtemp(prefix="minibox-compare-tree-")
    workers: dict[str, subprocess.Popen] = {}
    try:
        subprocess.run(["git", "-C", REPO, "worktree", "add", "--detach", "-f", old_tree, args.commit],
                       check=True, capture_output=True)  # fmt: skip
        os.makedirs(Paths().run)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=711,size=256m", f"{PREFIX}-run", Paths().run], check=True)
        rootfs = images.get(Paths(), "busybox").layers[-1]
        unshare = ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "chroot", rootfs, "true"]
        workers[args.commit] = start_worker(old_tree, args.namespaces, args.preload)
        workers["this tree"] = start_worker(REPO, args.namespaces, args.preload)
        samples: dict[str, list[float]] = {"unshare ... chroot ... true": [], **{name: [] for name in workers}}
        for round_number in range(args.rounds):
            for _ in range(10):
                start = time.perf_counter()
                subprocess.run(unshare, check=True)
                samples["unshare ... chroot ... true"].append(time.perf_counter() - start)
            names = list(workers) if round_number % 2 == 0 else list(reversed(workers))  # neither always first
            for name in names:
                samples[name] += block(workers[name])
    finally:
        for worker in workers.values():
            worker.stdin.close()
            worker.wait()
        subprocess.run([sys.executable, "-m", "engine.cli", "gc"], cwd=REPO, capture_output=True)
        subprocess.run(["umount", Paths().run], capture_output=True)
        shutil.rmtree(ROOT, ignore_errors=True)
        subprocess.run(["git", "-C", REPO, "worktree", "remove", "--force", old_tree], capture_output=True)
        shutil.rmtree(old_tree, ignore_errors=True)
    yardstick = statistics.median(samples["unshare ... chroot ... true"])
    loaded = f", {args.preload} loaded" if args.preload else ""
    print(f"{'engine.run, ' + args.namespaces + ' namespaces' + loaded:<40}{'median ms':>10}{'/ unshare':>11}")
    for name, times in samples.items():
        median = statistics.median(times)
        print(f"{name:<40}{median * 1000:>10.2f}{median / yardstick:>10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
