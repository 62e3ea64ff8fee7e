"""The real app in a real terminal: started in tmux the way the README says, driven by keys."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is installed by make test's set-up")


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-t", session, "-p"], capture_output=True, text=True).stdout


def keys(session: str, *names: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *names], check=True)


def test_workshop_in_tmux_opens_a_lab_runs_its_command_and_checks(tmp_path):
    session = f"minibox-t-{os.urandom(3).hex()}"
    data = os.path.join(ROOT, "tmux-data", tmp_path.name)
    env = f"WORKSHOP_DATA_DIR={data} WORKSHOP_HOME={data}/home PATH={os.path.dirname(sys.executable)}:$PATH"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30"], check=True)
    try:
        keys(session, f"env {env} workshop", "Enter")
        assert wait_for(lambda: "Container Internals Workshop" in screen(session), 15)
        assert wait_for(lambda: "needs chroot" in screen(session), 10), screen(session)  # lab 2 is locked
        keys(session, "Enter")  # open lab 1
        assert wait_for(lambda: "step 1/5" in screen(session), 10)
        keys(session, "r")  # run the step's command block
        keys(session, "c")  # and check
        assert wait_for(lambda: "step 2/5" in screen(session), 15), screen(session)
        keys(session, "?")
        assert wait_for(lambda: "every binding has an id" in screen(session), 5)
        keys(session, "Escape", "Escape")  # close help, back to the labs
        assert wait_for(lambda: "1/5 steps" in screen(session), 10), screen(session)
        keys(session, "q")
        assert wait_for(lambda: "Container Internals Workshop" not in screen(session), 10)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        subprocess.run([sys.executable, "-m", "workshop_tui.cli", "reset", "-y", "chroot"], capture_output=True,
                       env={**os.environ, "WORKSHOP_DATA_DIR": data, "WORKSHOP_HOME": f"{data}/home"})  # fmt: skip
