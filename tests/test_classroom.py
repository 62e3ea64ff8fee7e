"""The class service and the attendee's side, for real on loopback: joining, progress events from
the runner, replays and floods refused, the instructor's token, pacing, broadcast, export, and an
attendee whose service went away and came back without losing an event."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import wait_for

from labs.classroom import client
from labs.runner import Runner


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(path: str, port: int) -> tuple[subprocess.Popen, str, str]:
    code = f"from labs.classroom.server import serve; serve({path!r}, '127.0.0.1', {port}, 'abc123', 'teacher-token')"
    service = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            urllib.request.urlopen(f"{url}/api/board", timeout=1)
        except urllib.error.HTTPError:
            return True  # 401: it answers
        except OSError:
            return False
        return True

    assert wait_for(up, timeout=15), "the class service did not start"
    return service, url, "teacher-token"


@pytest.fixture(autouse=True)
def lab_files_in_tmp(tmp_path, monkeypatch):
    """Labs started here put their files under tmp_path, never in the real ~/workshop."""
    monkeypatch.setenv("WORKSHOP_HOME", str(tmp_path / "home"))


@pytest.fixture
def service(tmp_path):
    port = free_port()
    proc, url, token = start_service(str(tmp_path / "class.sqlite"), port)
    yield {"url": url, "token": token, "port": port, "path": str(tmp_path / "class.sqlite"), "proc": proc}
    proc.kill()
    proc.wait()


def call(url: str, path: str, body: dict | None = None, token: str = "") -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"{url}{path}", data, headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read().decode()
            return answer.status, json.loads(text) if answer.headers.get_content_type() == "application/json" else text
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_an_attendee_progress_reaches_the_board(service, tmp_path):
    runner = Runner(data_dir=str(tmp_path / "attendee"))
    client.join(runner.progress.directory, service["url"], "abc123", "  Ada   Lovelace ")
    runner.start("chroot", force=True)
    try:
        runner.hint("chroot")
        assert not runner.check("chroot").passed  # nothing done yet: a failed check (it shows hint 2)
        assert wait_for(lambda: not client.pending(runner.progress.directory), timeout=10)
        status, board = call(service["url"], "/api/board", token=service["token"])
        assert status == 200
        (ada,) = board["attendees"]
        # the hint a failed check shows is no hint asked for: the board counts the failure instead
        assert (
            ada["name"] == "Ada Lovelace" and ada["lab"] == "chroot" and ada["failed_checks"] == 1 and ada["hints"] == 1
        )
        assert board["histogram"] == {f"chroot/{runner.lab('chroot').steps[0].id}": 1}
    finally:
        runner.reset("chroot", remove_workdir=True)


def test_the_board_pacing_and_export_need_the_instructor_token(service):
    for path in ("/api/board", "/api/export.csv"):
        assert call(service["url"], path)[0] == 401
        assert call(service["url"], path, token="guess")[0] == 401
    assert call(service["url"], "/api/pace", {"lab": "uts", "step": "x"})[0] == 401
    assert call(service["url"], "/api/pace", {"lab": "uts", "step": "no-such-step"}, service["token"])[0] == 400
    assert call(service["url"], "/api/pace", {"lab": "", "step": ""}, service["token"]) == (200, {"pace": ""})
    assert call(service["url"], "/api/pace", {"lab": "uts", "step": "rename-inside"}, service["token"])[0] == 200
    paced = call(service["url"], "/api/pace", {"lab": "3", "step": "2"}, service["token"])  # as `workshop solve 2`
    assert paced == (200, {"pace": "uts/rename-inside"})  # kept as ids: what the learners' side compares
    assert call(service["url"], "/api/broadcast", {"message": "Break until 11:00"}, service["token"])[0] == 200
    assert call(service["url"], "/api/broadcast", {"message": "x" * 281}, service["token"])[0] == 400


def test_pace_and_broadcast_reach_the_attendee(service, tmp_path):
    data = str(tmp_path / "attendee")
    client.join(data, service["url"], "abc123", "Grace")
    call(service["url"], "/api/pace", {"lab": "pid", "step": "two-numbers"}, service["token"])
    call(service["url"], "/api/broadcast", {"message": "Look at the board"}, service["token"])
    assert client.news(data) == {"pace": "pid/two-numbers", "message": "Look at the board"}


def test_bad_input_is_refused_and_not_stored(service, tmp_path):
    url = service["url"]
    assert call(url, "/api/join", {"code": "wrong", "name": "Eve"})[0] == 401
    assert call(url, "/api/join", {"code": " ABC123 ", "name": "Typed From The Projector"})[0] == 200
    assert call(url, "/api/join", {"code": "abc124", "name": "Mistyped"})[0] == 401
    assert call(url, "/api/join", {"code": "abc123", "name": "<script>"})[0] == 400
    assert call(url, "/api/join", {"code": "abc123", "name": "x" * 41})[0] == 400
    status, member = call(url, "/api/join", {"code": "abc123", "name": "Mallory"})
    assert status == 200
    send = lambda events, token=member["token"]: call(
        url, "/api/events", {"attendee": member["attendee"], "token": token, "events": events}
    )  # noqa: E501, E731
    event = {"kind": "step_started", "lab": "uts", "step": "own-hostname", "seq": 1, "time": time.time()}
    assert send([event])[0] == 200
    assert send([event])[0] == 200  # sent again (its answer was lost): taken, and stored once
    assert send([event, {**event, "seq": 2}])[0] == 200  # the old one again with a new one: the new one counts
    assert send([{**event, "seq": 4}, {**event, "seq": 3}])[0] == 400  # reordered
    assert send([{**event, "seq": 3, "kind": "rm -rf /"}])[0] == 400
    assert send([{**event, "seq": 3}], token="forged")[0] == 401
    assert send([{**event, "seq": 3 + i} for i in range(101)])[0] == 400  # more than 100 at once
    big = urllib.request.Request(
        f"{url}/api/events", b'{"x": "' + b"y" * 70000 + b'"}', {"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as too_big:
        urllib.request.urlopen(big, timeout=10)
    assert too_big.value.code == 413
    codes = [send([{**event, "seq": 10 + i}])[0] for i in range(30)]  # a flood in one second
    assert 429 in codes
    status, board = call(url, "/api/board", token=service["token"])
    assert [a["name"] for a in board["attendees"]] == ["Mallory", "Typed From The Projector"]


def test_events_wait_while_the_service_is_away_and_none_is_lost(tmp_path):
    port = free_port()
    path = str(tmp_path / "class.sqlite")
    proc, url, token = start_service(path, port)
    data = str(tmp_path / "attendee")
    client.join(data, url, "abc123", "Linus")
    proc.kill()
    proc.wait()
    for _ in range(250):  # the service is down: all of these queue up
        client.record(data, "hint_used", "uts", "own-hostname", send=False)
    assert client.flush(data, timeout=0.5) == 0 and len(client.pending(data)) == 250
    proc, url, token = start_service(path, port)  # back, with the same file: same class
    try:
        assert client.flush(data) == 250 and client.pending(data) == []
        status, board = call(url, "/api/board", token=token)
        assert board["attendees"][0]["hints"] == 250
        status, csv_text = call(url, "/api/export.csv", token=token)
        assert status == 200 and csv_text.splitlines()[0].startswith("name,") and "Linus" in csv_text
    finally:
        proc.kill()
        proc.wait()


def test_the_board_reads_one_row_per_attendee_kept_current_and_folds_an_older_file_once(tmp_path):
    import sqlite3

    from labs.classroom.server import ClassState

    def day(state: ClassState, attendee: str) -> None:
        events = [("lab_started", "uts", "intro"), ("step_started", "uts", "own-hostname"),
                  ("check_failed", "uts", "own-hostname"), ("hint_used", "uts", "own-hostname"),
                  ("check_passed", "uts", "own-hostname"), ("step_started", "uts", "host-untouched"),
                  ("check_failed", "uts", "host-untouched")]  # fmt: skip
        for seq, (kind, lab, step) in enumerate(events, 1):  # one request per event, as they come
            state.add_events(attendee, [{"kind": kind, "lab": lab, "step": step, "seq": seq, "time": 1000.0 + seq}])

    live = ClassState(str(tmp_path / "live.sqlite"), "abc123", "t")
    ada = live.join("abc123", "Ada")["attendee"]
    day(live, ada)
    expected = {"name": "Ada", "lab": "uts", "step": "host-untouched", "failed_checks": 1, "hints": 1,
                "steps_done": 1, "stuck": True}  # fmt: skip
    row = live.board()["attendees"][0]
    assert {k: row[k] for k in expected} == expected
    # A class file written before the progress table existed: its events are folded once, at start.
    old = sqlite3.connect(str(tmp_path / "old.sqlite"))
    old.executescript(
        "CREATE TABLE attendees (id TEXT PRIMARY KEY, name TEXT, token TEXT, joined REAL, last_seq INTEGER);"
        "CREATE TABLE events (attendee TEXT, seq INTEGER, kind TEXT, lab TEXT, step TEXT, time REAL,"
        " received REAL, PRIMARY KEY (attendee, seq));"
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT);"
    )
    copied = sqlite3.connect(str(tmp_path / "live.sqlite"))
    old.executemany("INSERT INTO attendees VALUES (?, ?, ?, ?, ?)", copied.execute("SELECT * FROM attendees"))
    old.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", copied.execute("SELECT * FROM events"))
    old.commit()
    reopened = ClassState(str(tmp_path / "old.sqlite"), "abc123", "t")
    assert reopened.board()["attendees"] == live.board()["attendees"]
    day_two = {"kind": "check_passed", "lab": "uts", "step": "host-untouched", "seq": 8, "time": 2000.0}
    reopened.add_events(ada, [day_two])  # and it goes on from there
    assert reopened.board()["attendees"][0]["steps_done"] == 2


def test_join_errors_are_one_line(tmp_path):
    argv = [sys.executable, "-m", "workshop_tui", "join", "http://127.0.0.1:1", "abc", "Ann"]
    result = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, "WORKSHOP_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode == 1 and "cannot reach the class service" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_board_app_shows_attendees_and_sends_a_broadcast(service, tmp_path):
    import asyncio

    from workshop_tui.board import BoardApp

    data = str(tmp_path / "attendee")
    client.join(data, service["url"], "abc123", "Barbara")
    for _ in range(3):
        client.record(data, "check_failed", "uts", "own-hostname", send=False)
    client.flush(data)

    async def scenario() -> None:
        app = BoardApp(service["url"], service["token"], refresh_seconds=0.2)
        async with app.run_test(size=(120, 30)) as pilot:
            for _ in range(50):
                await pilot.pause(0.05)
                if app.query_one("#attendees").row_count:
                    break
            table = app.query_one("#attendees")
            row = table.get_row_at(0)
            assert str(row[0]) == "Barbara" and row[1] == "(not started)" and row[3] == "3" and str(row[6]) == "stuck"
            await pilot.press("b", *"Lunch at 12", "enter")
            for _ in range(50):
                await pilot.pause(0.05)
                if client.news(data).get("message"):
                    break
            await pilot.press("p", *"uts/no-such-step", "enter")  # refused: the answer outlives refreshes
            await pilot.pause(1.5)
            status = str(app.query_one("#status").render())
            assert "refused" in status and "no step 'no-such-step'" in status and "attendee" in status
            await pilot.press("z")  # a break: the board says so until z again
            for _ in range(50):
                await pilot.pause(0.05)
                if "on a break since" in str(app.query_one("#status").render()):
                    break
            assert "on a break since" in str(app.query_one("#status").render())
            await pilot.press("z")
            for _ in range(50):
                await pilot.pause(0.05)
                if "on a break" not in str(app.query_one("#status").render()):
                    break
            assert "on a break" not in str(app.query_one("#status").render())

    asyncio.run(scenario())
    assert client.news(data)["message"] == "Lunch at 12"


def test_the_attendee_workshop_shows_the_broadcast_and_keeps_the_pace(service, tmp_path):
    import asyncio

    from workshop_tui.app import WorkshopApp

    runner = Runner(data_dir=str(tmp_path / "attendee"))
    client.join(runner.progress.directory, service["url"], "abc123", "Ken")
    first = runner.lab("uts").steps[0].id
    call(service["url"], "/api/pace", {"lab": "uts", "step": first}, service["token"])
    call(service["url"], "/api/broadcast", {"message": "Stay on step one"}, service["token"])

    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(60):
                await pilot.pause(0.05)
                if "paced" in app.screen.sub_title:
                    break
            assert f"paced up to uts/{first}" in app.screen.sub_title
            assert any("Stay on step one" in n.message for n in app._notifications)
            await pilot.press("n")
            await pilot.pause(0.1)
            assert app.screen.step.id == first  # the next step is not unlocked yet
            assert any("not unlocked" in n.message for n in app._notifications)

    try:
        asyncio.run(scenario())
    finally:
        runner.reset("uts", remove_workdir=True)


@pytest.mark.timeout(120)
def test_the_board_in_a_browser(service, tmp_path):
    """``workshop class board URL --serve``: behind a token of its own, the board app in Chromium."""
    import re
    import shutil

    from playwright.sync_api import sync_playwright
    from test_browser import FLAGS
    from test_serve import _status

    data = str(tmp_path / "attendee")
    client.join(data, service["url"], "abc123", "Dorothy")
    client.flush(data)
    port = free_port()
    log = tmp_path / "board.log"
    env = {**os.environ, "WORKSHOP_CLASS_TOKEN": service["token"]}
    with open(log, "w") as out:
        board = subprocess.Popen([sys.executable, "-m", "workshop_tui", "class", "board", service["url"], "--serve",
                                  "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)  # fmt: skip
    try:
        assert wait_for(lambda: "token=" in log.read_text(), 15), log.read_text()
        url = re.search(r"http://\S+", log.read_text()).group(0)
        assert service["token"] not in log.read_text()  # the instructor token is not printed again
        assert _status(f"http://127.0.0.1:{port}/") == 403
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            assert "Class board" in page.title() + page.content()
            page.mouse.click(640, 400)  # textual-serve's start screen: a click starts the app
            time.sleep(4)
            shot = str(tmp_path / "browser-board.png")
            page.screenshot(path=shot)
            assert os.path.getsize(shot) > 20_000
            browser.close()
    finally:
        os.killpg(board.pid, 15)
        board.wait(timeout=10)


def test_the_command_line_delivers_its_progress_before_it_exits(service, tmp_path):
    """`workshop check` exits within a second: its events must reach the board all the same (a
    sender thread used to die with the command). The hint a failed check shows is not counted as
    a hint asked for: the failure is (the board tells the two apart)."""
    data = str(tmp_path / "cli-attendee")
    env = {**os.environ, "WORKSHOP_DATA_DIR": data}
    workshop = [sys.executable, "-m", "workshop_tui"]
    joined = subprocess.run([*workshop, "join", service["url"], "abc123", "Bob"], env=env, capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert joined.returncode == 0, joined.stderr
    try:
        subprocess.run([*workshop, "start", "chroot", "--force"], env=env, capture_output=True, timeout=60, check=True)
        for _ in range(2):
            failed = subprocess.run([*workshop, "check"], env=env, capture_output=True, text=True, timeout=60)
            assert failed.returncode == 1 and "Hint" in failed.stdout
        assert client.pending(data) == []  # nothing left behind in the queue
        (bob,) = call(service["url"], "/api/board", token=service["token"])[1]["attendees"]
        assert bob["lab"] == "chroot" and bob["failed_checks"] == 2 and bob["hints"] == 0
    finally:
        Runner(data_dir=data).reset("chroot", remove_workdir=True)


def test_serve_on_a_busy_port_says_so_before_printing_a_code(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "workshop_tui", "class", "serve", "--port", str(port),
                                 "--file", str(tmp_path / "class.sqlite")],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 2 and "class code" not in result.stdout
    assert result.stderr == f"workshop: cannot listen on 127.0.0.1:{port}: Address already in use (another --port?)\n"


def test_the_command_line_keeps_to_the_pace_and_shows_the_broadcast(service, tmp_path):
    data = str(tmp_path / "paced-attendee")
    env = {**os.environ, "WORKSHOP_DATA_DIR": data}
    workshop = [sys.executable, "-m", "workshop_tui"]
    assert subprocess.run([*workshop, "join", service["url"], "abc123", "Cat"], env=env, timeout=30).returncode == 0
    runner = Runner(data_dir=data)
    first = runner.lab("chroot").steps[0].id
    assert call(service["url"], "/api/pace", {"lab": "chroot", "step": first}, service["token"])[0] == 200
    assert call(service["url"], "/api/broadcast", {"message": "Break until 11:00"}, service["token"])[0] == 200
    try:
        started = subprocess.run([*workshop, "start", "chroot", "--force"], env=env, capture_output=True, text=True,
                                 timeout=60)  # fmt: skip
        assert "From the instructor: Break until 11:00" in started.stdout and "Step 1/" in started.stdout
        for result in runner.solve("chroot", first):
            assert result.returncode == 0, result.stdout
        checked = subprocess.run([*workshop, "check"], env=env, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"The class is paced up to chroot/{first}" in checked.stdout and "Step 2/" not in checked.stdout
        # step 2 is not open yet: no check, hint or solution of it (as the TUI's `n`), said why
        for command in (["check"], ["hint"], ["solve", "-y"]):
            held = subprocess.run([*workshop, *command], env=env, capture_output=True, text=True, timeout=60)
            assert held.returncode == 1 and "paced up to" in held.stderr and "opens when" in held.stderr, held
            assert "From the instructor: Break until 11:00" in held.stdout  # a stuck learner hears it too
        again = subprocess.run([*workshop, "check", "chroot", first], env=env, capture_output=True, text=True,
                               timeout=60)  # fmt: skip
        assert again.returncode == 0  # an earlier step may be checked again...
        assert wait_for(lambda: not client.pending(data), timeout=10)
        (cat,) = call(service["url"], "/api/board", token=service["token"])[1]["attendees"]
        assert cat["steps_done"] == 1 and cat["status"] == "waiting" and not cat["stuck"]  # ...and counts once
        status = subprocess.run([*workshop, "status"], env=env, capture_output=True, text=True, timeout=60)
        assert f"paced up to chroot/{first}" in status.stdout and "Break until 11:00" in status.stdout
        twice = subprocess.run([*workshop, "join", service["url"], "abc123", "Cat"], env=env, capture_output=True,
                               text=True, timeout=30)  # fmt: skip
        assert twice.returncode == 1 and "already in the class" in twice.stderr and "workshop leave" in twice.stderr
        assert len(call(service["url"], "/api/board", token=service["token"])[1]["attendees"]) == 1  # no ghost row
    finally:
        runner.reset("chroot", remove_workdir=True)


def test_the_text_board_and_addresses_typed_without_http(service, tmp_path):
    """`class board --text`: the rows, the pace and the message; a wrong token said as such. An
    address typed from a projector without `http://` works for joining and for the board."""
    address = service["url"].removeprefix("http://")
    member = client.join(str(tmp_path / "attendee"), address, "abc123", "Ida")
    assert member["url"] == service["url"]
    call(service["url"], "/api/pace", {"lab": "uts", "step": "rename-inside"}, service["token"])
    board = [sys.executable, "-m", "workshop_tui", "class", "board", address, "--text"]
    shown = subprocess.run([*board, "--token", service["token"]], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    assert "Ida" in shown.stdout and "pace: uts/rename-inside · message: none" in shown.stdout
    wrong = subprocess.run([*board, "--token", "guess"], capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 1 and "the instructor token is wrong" in wrong.stderr


def test_who_waits_at_the_pace_or_has_finished_is_not_stuck(tmp_path):
    """Ten minutes on a step or three failed checks is "stuck", but not for a learner held at the
    instructor's pace or done with the lab: a paced room must not turn the board red."""
    from labs.classroom.server import ClassState
    from labs.loader import find

    state = ClassState(str(tmp_path / "class.sqlite"), "abc123", "secret")
    first, second = (step.id for step in find("chroot").steps[:2])
    long_ago = time.time() - 700
    script = {
        "slow": [("lab_started", first)],
        "held": [("lab_started", first), ("check_passed", first), ("step_started", second)],
        "done": [("lab_started", first), ("lab_finished", None)],
        "reopened": [("lab_started", first), ("lab_finished", first), ("lab_started", None)],  # (%lab_start)
        "trying": [("lab_started", first), *[("check_failed", first)] * 3],
    }
    for name, events in script.items():
        attendee = state.join("abc123", name)["attendee"]
        state.add_events(attendee, [{"seq": n, "kind": kind, "lab": "chroot", "step": step, "time": long_ago}
                                    for n, (kind, step) in enumerate(events, 1)])  # fmt: skip
    status = lambda: {a["name"]: a["status"] for a in state.board()["attendees"]}  # noqa: E731
    assert status() == {"slow": "stuck", "held": "stuck", "done": "done", "reopened": "done", "trying": "stuck"}
    state.set("pace", f"chroot/{first}")
    assert status() == {"slow": "stuck", "held": "waiting", "done": "done", "reopened": "done", "trying": "stuck"}
    stuck = {a["name"]: a["stuck"] for a in state.board()["attendees"]}
    assert stuck == {"done": False, "held": False, "reopened": False, "slow": True, "trying": True}
    assert not any("None" in where for where in state.board()["histogram"])  # (it said chroot/None)


def test_an_older_class_file_is_folded_again_with_done_and_distinct_steps(tmp_path):
    """A class file from before the "finished" column: its rows are made again from the events."""
    import sqlite3

    from labs.classroom.server import ClassState

    path = str(tmp_path / "class.sqlite")
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE attendees (id TEXT PRIMARY KEY, name TEXT, token TEXT, joined REAL, last_seq INTEGER);
        CREATE TABLE events (attendee TEXT, seq INTEGER, kind TEXT, lab TEXT, step TEXT, time REAL, received REAL,
                             PRIMARY KEY (attendee, seq));
        CREATE TABLE progress (attendee TEXT PRIMARY KEY, lab TEXT, step TEXT, since REAL, failed INTEGER,
                               hints INTEGER, steps_done INTEGER);
        INSERT INTO attendees VALUES ('a1', 'Old Timer', 'tok', 1.0, 4);
        INSERT INTO events VALUES ('a1', 1, 'lab_started', 'uts', 'own-hostname', 2.0, 2.0),
                                  ('a1', 2, 'check_passed', 'uts', 'own-hostname', 3.0, 3.0),
                                  ('a1', 3, 'check_passed', 'uts', 'own-hostname', 4.0, 4.0),
                                  ('a1', 4, 'lab_finished', 'uts', 'own-hostname', 5.0, 5.0);
        INSERT INTO progress VALUES ('a1', 'uts', 'own-hostname', 2.0, 0, 0, 2);
    """)
    db.commit()
    db.close()
    (old,) = ClassState(path, "abc123", "secret").board()["attendees"]
    assert old["status"] == "done" and old["steps_done"] == 1
    (again,) = ClassState(path, "abc123", "secret").board()["attendees"]  # opened again: nothing changes
    assert again["status"] == "done" and again["steps_done"] == 1


def test_joining_mid_lab_shows_where_on_the_board(service, tmp_path):
    data = str(tmp_path / "late-attendee")
    env = {**os.environ, "WORKSHOP_DATA_DIR": data}
    runner = Runner(data_dir=data)
    runner.start("chroot", force=True)
    try:
        joined = subprocess.run([sys.executable, "-m", "workshop_tui", "join", service["url"], "abc123", "Dan"],
                                env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
        assert joined.returncode == 0, joined.stderr
        (dan,) = call(service["url"], "/api/board", token=service["token"])[1]["attendees"]
        assert (dan["lab"], dan["step"]) == ("chroot", runner.lab("chroot").steps[0].id)
    finally:
        runner.reset("chroot", remove_workdir=True)


def test_two_attendees_of_one_name_are_told_apart(service, tmp_path):
    first = client.join(str(tmp_path / "one"), service["url"], "abc123", "Ada Lovelace")
    second = client.join(str(tmp_path / "two"), service["url"], "abc123", "Ada Lovelace")
    assert (first["name"], second["name"]) == ("Ada Lovelace", "Ada Lovelace (2)")
    board = call(service["url"], "/api/board", token=service["token"])[1]
    assert [a["name"] for a in board["attendees"]] == ["Ada Lovelace", "Ada Lovelace (2)"]


def test_leaving_sends_what_waited_and_takes_the_attendee_off_the_board(service, tmp_path):
    data = str(tmp_path / "leaver")
    client.join(data, service["url"], "abc123", "Eve")
    client.record(data, "check_failed", "uts", "own-hostname", send=False)  # not sent yet
    assert client.leave(data) is True
    assert client.membership(data) is None and not client.leave(data)  # a second leave: in no class
    assert call(service["url"], "/api/board", token=service["token"])[1]["attendees"] == []
    (eve,) = call(service["url"], "/api/export.json", token=service["token"])[1]
    assert eve["left"] and eve["failed_checks"] == 1  # in the results; what waited was sent before leaving


def test_a_class_made_anew_is_said_and_rejoining_sends_what_waited(tmp_path):
    """The instructor restarted the service on a fresh class file: the attendee's token is unknown
    there. The learner is told, and after joining again nothing that waited is lost."""
    data = str(tmp_path / "attendee")
    port = free_port()
    first, url, token = start_service(str(tmp_path / "first.sqlite"), port)
    try:
        client.join(data, url, "abc123", "Fay")
        client.record(data, "step_started", "uts", "own-hostname", send=False)
        client.flush(data)
    finally:
        first.kill()
        first.wait()
    second, url, token = start_service(str(tmp_path / "second.sqlite"), port)
    try:
        client.record(data, "check_failed", "uts", "own-hostname", send=False)
        assert client.flush(data) == 0 and "no longer knows you" in client.trouble(data)
        client.join(data, url, "abc123", "Fay")
        assert client.trouble(data) == ""
        client.record(data, "hint_used", "uts", "own-hostname", send=False)
        assert client.flush(data) == 2 and client.pending(data) == []
        (fay,) = call(url, "/api/board", token=token)[1]["attendees"]
        assert fay["failed_checks"] == 1 and fay["hints"] == 1
    finally:
        second.kill()
        second.wait()


def test_a_break_stops_the_clock_of_time_on_a_step(service, tmp_path):
    from labs.classroom.server import ClassState

    state = ClassState(str(tmp_path / "break.sqlite"), "abc123", "t")
    ada = state.join("abc123", "Ada")["attendee"]
    started = time.time() - 700  # on this step for 11 minutes and 40 seconds
    state.add_events(ada, [{"kind": "step_started", "lab": "uts", "step": "own-hostname", "seq": 1, "time": started}])
    assert state.board()["attendees"][0]["stuck"]  # over 10 minutes on one step
    state.set_break(True)
    state.set("break_since", repr(time.time() - 650))  # the break began 10 minutes and 50 seconds ago
    row = state.board()["attendees"][0]
    assert not row["stuck"] and 45 <= row["seconds_on_step"] <= 60 and state.board()["break_since"]
    state.set_break(False)  # over: the 650 s stay uncounted
    assert not state.board()["attendees"][0]["stuck"] and not state.board()["break_since"]
    assert 45 <= state.board()["attendees"][0]["seconds_on_step"] <= 60
    # over HTTP, the instructor's alone
    assert call(service["url"], "/api/break", {"on": True})[0] == 401
    assert call(service["url"], "/api/break", {"on": "yes"}, service["token"])[0] == 400
    assert call(service["url"], "/api/break", {"on": True}, service["token"]) == (200, {"break": True})
    assert call(service["url"], "/api/board", token=service["token"])[1]["break_since"]
    assert call(service["url"], "/api/break", {"on": False}, service["token"]) == (200, {"break": False})
    assert not call(service["url"], "/api/board", token=service["token"])[1]["break_since"]
