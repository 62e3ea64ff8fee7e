"""``workshop serve`` in a real browser: headless Chromium (Debian's) opens the printed URL and the
app starts behind it. The screenshot stays in pytest's tmp_path (/tmp/pytest-of-USER/) to be looked at."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from conftest import wait_for
from test_serve import free_port

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is installed by make test's set-up")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


def app_processes_under(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "-m workshop_tui" in line]


def test_the_app_runs_in_headless_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "WORKSHOP_DATA_DIR": str(tmp_path / "data"), "WORKSHOP_HOME": str(tmp_path / "home")}
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "workshop_tui.cli", "serve", "--port", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)  # fmt: skip
    try:
        assert wait_for(lambda: "token=" in log.read_text(), 15)
        url = re.search(r"http://\S+", log.read_text()).group(0)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            assert "Container Internals Workshop" in page.title() + page.content()
            page.mouse.click(640, 400)  # textual-serve's start screen: a click starts the app
            assert wait_for(lambda: app_processes_under(server.pid), 15), "no app process behind the page"
            time.sleep(3)  # let the first screen paint
            shot = str(tmp_path / "browser-home.png")  # pytest keeps the last runs' tmp_path: look at it
            page.screenshot(path=shot)
            assert os.path.getsize(shot) > 20_000  # a painted terminal, not an empty page
            browser.close()
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=10)
