"""``workshop tour``: a five-minute guided tour of minibox, before the labs.

Each stop says what to look for, runs one real command on the engine (the same ``minibox``
a learner can type), and shows its output. Press Enter to go on (it does not wait when its input
is not a terminal).
"""

from __future__ import annotations

import os
import subprocess
import sys

STOPS: list[tuple[str, list[str]]] = [
    (
        "A container is a process with its own hostname (UTS namespace).",
        ["run", "--rm", "-h", "my-first-box", "busybox", "hostname"],
    ),
    (
        "In its own PID namespace the command is PID 1 and the host's processes are invisible.",
        ["run", "--rm", "busybox", "ps"],
    ),
    (
        "Every namespace is a link in /proc/$$/ns; compare these inodes with the host's, printed at the start.",
        ["run", "--rm", "busybox", "sh", "-c", "ls -l /proc/$$/ns"],
    ),
    (
        "A System V message queue made inside (ipcmk -Q) lives in the container's IPC namespace.",
        ["run", "--rm", "busybox", "sh", "-c", "ipcmk -Q && ipcs -q"],
    ),
    (
        "A cgroup limits resources: here 64 MiB of memory and half a CPU (cfs quota / period).",
        ["run", "--rm", "-m", "64m", "--cpus", "0.5", "busybox", "sh", "-c",
         "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
         "/sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max"],
    ),
    (
        "Going over the memory limit gets the container OOM-killed (exit code 137).",
        ["run", "--rm", "-m", "16m", "busybox", "sh", "-c", 'x=a; while true; do x="$x$x"; done'],
    ),
]  # fmt: skip


def run_demo(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    pause = sys.stdin.isatty() and "--no-pause" not in argv  # --no-pause: for scripts calling run_demo
    print("Container Internals Workshop: a guided tour of minibox (then `workshop` opens the labs).\n")
    print("The host's namespaces, for comparison:")
    subprocess.run(["ls", "-l", f"/proc/{os.getpid()}/ns"])
    for number, (text, args) in enumerate(STOPS, 1):
        print(f"\n[{number}/{len(STOPS)}] {text}\n$ minibox {' '.join(_quote(a) for a in args)}")
        result = subprocess.run([sys.executable, "-m", "engine.cli", *args])
        if result.returncode:
            print(f"(exit code {result.returncode})")
        if pause:
            input("\nEnter to continue, Ctrl-C to stop... ")
    print("\nNow try it yourself: `minibox run -it busybox sh`, then `minibox --help`.")
    return 0


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in ' $;|&"<>') else arg
