"""The class service under a room's load: 200 attendees, a class compressed into seconds.

    .venv/bin/python bench/class_bench.py [--attendees 200] [--events 60]

On loopback only. Starts ``workshop class serve``'s service on a free port, joins N attendees,
then sends each attendee's events (step started, failed and passed checks, hints: ``--events``
per attendee, in batches as the client does after an outage) from a pool of threads while the
board is read in a loop. Reports: events sent vs stored (nothing may be lost), the board's
response time (median and worst, target < 200 ms), the service's memory (VmRSS, target < 200 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def post(url: str, body: dict, token: str = "") -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attendees", type=int, default=200)
    parser.add_argument("--events", type=int, default=60, help="events per attendee (a 5-minute class: ~60)")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = tempfile.mkdtemp(prefix="class-bench-")
    code = (f"from labs.classroom.server import serve; serve({os.path.join(work, 'class.sqlite')!r}, "
            f"'127.0.0.1', {port}, 'bench1', 'teacher')")  # fmt: skip
    service = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/api/board", timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        members = [post(f"{url}/api/join", {"code": "bench1", "name": f"attendee {i}"}) for i in range(args.attendees)]
        steps = ["own-hostname", "rename-inside", "share-with-host"]
        kinds = ["step_started", "check_failed", "hint_used", "check_failed", "check_passed"]

        def attendee(member: dict) -> int:
            events = [{"kind": kinds[i % len(kinds)], "lab": "uts", "step": steps[(i // len(kinds)) % len(steps)],
                       "seq": i + 1, "time": time.time()} for i in range(args.events)]  # fmt: skip
            sent = 0
            for start in range(0, len(events), 10):  # batches of 10, as a client catching up sends them
                batch = events[start : start + 10]
                while True:
                    try:
                        post(
                            f"{url}/api/events",
                            {"attendee": member["attendee"], "token": member["token"], "events": batch},
                        )
                        break
                    except urllib.error.HTTPError as e:
                        if e.code != 429:
                            raise
                        time.sleep(0.05)  # over its rate: wait, as the client's next flush would
                sent += len(batch)
            return sent

        board_times: list[float] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                start = time.perf_counter()
                request = urllib.request.Request(f"{url}/api/board", headers={"Authorization": "Bearer teacher"})
                urllib.request.urlopen(request, timeout=30).read()
                board_times.append(time.perf_counter() - start)
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=32) as pool:
            sent = sum(pool.map(attendee, members))
        elapsed = time.perf_counter() - started
        done.set()
        watcher.join()
        request = urllib.request.Request(f"{url}/api/board", headers={"Authorization": "Bearer teacher"})
        board = json.load(urllib.request.urlopen(request, timeout=30))
        with open(f"/proc/{service.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
        import sqlite3

        database = sqlite3.connect(os.path.join(work, "class.sqlite"))
        stored = database.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        service.kill()
        service.wait()
        subprocess.run(["rm", "-rf", work])
    expected = sent
    print(f"{args.attendees} attendees x {args.events} events in {elapsed:.1f} s ({sent / elapsed:.0f} events/s)")
    print(f"events sent {sent}, stored {stored}: {'none lost' if stored == expected else 'LOST SOME'}; "
          f"{len(board['attendees'])} attendees on the board")  # fmt: skip
    print(f"board response while loaded: median {statistics.median(board_times) * 1000:.0f} ms, "
          f"worst {max(board_times) * 1000:.0f} ms  [target < 200 ms]")  # fmt: skip
    print(f"service memory (VmRSS): {rss:.0f} MB  [target < 200 MB]")
    return 0 if stored == expected else 1


if __name__ == "__main__":
    sys.exit(main())
