"""The workshop TUI's start-up, memory and view refresh, measured in a real terminal (tmux).

    .venv/bin/python bench/tui_bench.py [--runs N]

- first paint: from starting ``workshop`` in a tmux pane to its title on the screen (polled with
  ``capture-pane`` every 5 ms, so the figure is an upper bound by up to 5 ms plus tmux's latency);
- memory: the app's resident set size (VmRSS) with a lab open;
- view refresh: one host-vs-container snapshot of all five observer views (what the app does
  after every command), against a running container.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_ID = os.urandom(3).hex()
DATA = f"/tmp/minibox-bench-tui-{RUN_ID}"
os.environ.update(MINIBOX_ROOT=f"{DATA}/minibox", MINIBOX_PREFIX=f"minibox-bench-{RUN_ID}",
                  WORKSHOP_DATA_DIR=f"{DATA}/data", WORKSHOP_HOME=f"{DATA}/home")  # fmt: skip
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
WORKSHOP = os.path.join(os.path.dirname(sys.executable), "workshop")


def pane(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-t", session, "-p"], capture_output=True, text=True).stdout


def first_paint(session: str) -> float:
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh"], check=True)
    try:
        time.sleep(0.3)
        start = time.perf_counter()
        subprocess.run(["tmux", "send-keys", "-t", session, f"exec {WORKSHOP}", "Enter"], check=True)
        while "Container Internals Workshop" not in pane(session):
            if time.perf_counter() - start > 20:
                raise SystemExit("bench: the workshop did not paint within 20 s")
            time.sleep(0.005)
        return time.perf_counter() - start
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def rss_with_a_lab_open(session: str) -> int:
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", WORKSHOP], check=True)
    try:
        deadline = time.monotonic() + 20
        while "Container Internals Workshop" not in pane(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)  # open lab 1
        while "step 1/" not in pane(session) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)  # let the views refresh once (pyroute2 loaded for the network tab)
        pid = subprocess.run(["tmux", "display", "-p", "-t", session, "#{pane_pid}"], capture_output=True,
                             text=True).stdout.strip()  # fmt: skip
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def view_refresh_ms(runs: int) -> float:
    import engine
    from engine.observe import snapshot

    spec = engine.ContainerSpec("busybox", ["sleep", "60"], name="bench-views", detach=True)
    record = engine.run_detached(spec)
    try:
        snapshot(os.getpid(), record.pid)  # warm: pyroute2's import
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            snapshot(os.getpid(), record.pid)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples) * 1000
    finally:
        engine.remove("bench-views", force=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    try:
        paints = [first_paint(f"minibox-bench-{RUN_ID}-{i}") for i in range(args.runs)]
        rss_kb = rss_with_a_lab_open(f"minibox-bench-{RUN_ID}-rss")
        refresh = view_refresh_ms(args.runs * 3)
    finally:
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "minibox"), "gc"], capture_output=True)
        subprocess.run(["rm", "-rf", DATA])
    print(f"{'what':<52}{'measured':>12}  target")
    print(f"{'first paint after `workshop` starts (median)':<52}{statistics.median(paints) * 1000:>9.0f} ms  < 500 ms")
    print(f"{'memory with a lab open (VmRSS)':<52}{rss_kb / 1024:>9.0f} MB  < 120 MB")
    print(f"{'all five views, host and container (median)':<52}{refresh:>9.1f} ms  < 100 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
