"""``workshop tour``: the guided tour runs every stop on the real engine, without waiting when not on a terminal."""

from __future__ import annotations

import subprocess
import sys


def test_the_tour_runs_through():
    result = subprocess.run([sys.executable, "-m", "workshop_tui.cli", "tour"], capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "my-first-box" in out  # the UTS stop
    assert "Message Queues" in out  # ipcmk -Q then ipcs -q inside
    assert "67108864" in out or "max" in out  # the memory limit file, v1 or v2
    assert "(exit code 137)" in out  # the OOM kill
