"""``workshop serve``: the browser front end answers only with the token, and only on loopback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from conftest import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_needs_the_printed_token_and_listens_on_loopback(tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "workshop_tui.cli", "serve", "--port", str(port)],
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        assert wait_for(lambda: "token=" in log.read_text(), 15), log.read_text()
        url = re.search(r"http://\S+", log.read_text()).group(0)
        assert url.startswith(f"http://127.0.0.1:{port}/?token=")
        assert wait_for(lambda: _status(f"http://127.0.0.1:{port}/") == 403, 15)
        assert _status(f"http://127.0.0.1:{port}/?token=wrong") == 403
        with urllib.request.urlopen(url, timeout=10) as page:
            html = page.read().decode()
            assert "Container Internals Workshop" in html and "/ws" in html
            assert "googleapis" not in html and "/static/fonts/RobotoMono" in html  # works without internet
            font = re.search(r'url\("([^"]+\.ttf)"\)', html).group(1)
            assert _status(font) == 200
            assert "workshop_token" in page.headers.get("Set-Cookie", "")
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
        local_addresses = [line.split()[3] for line in listening.splitlines()]
        assert local_addresses == [f"127.0.0.1:{port}"]
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=10)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0
