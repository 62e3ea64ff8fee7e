"""The class service: ``workshop class serve``. aiohttp, with the class's state in one SQLite file.

    POST /api/join        {code, name}            -> {attendee, token}       (the class code)
    POST /api/events      {attendee, token, events: [...]}                  (the attendee's token)
    GET  /api/news        ?attendee=&token=       -> {pace, message}        (attendees poll it)
    POST /api/leave       {attendee, token}       off the board (their events stay for the export)
    GET  /api/board                               -> who is where, who is stuck, a histogram
    POST /api/pace        {lab, step}             unlock up to that step      (instructor only:
    POST /api/broadcast   {message}               shown in every attendee's    Authorization:
    POST /api/break       {on: true|false}        stop the clock of "time on   Bearer TOKEN)
                                                  a step" for a break
    GET  /api/export.json, /api/export.csv         the results
    GET  /bundle.tar      the offline bundle, with ``serve --bundle`` (what room VMs install from)

Bound to 127.0.0.1 unless told otherwise. Bodies are at most 64 KiB, at most 100 events per
request, each attendee at most 20 requests per second; a bad or replayed event is answered 400
and not stored. The SQLite file keeps everything across a restart of the service.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import secrets
import sqlite3
import time
from collections.abc import Callable

from aiohttp import web

from labs.classroom.protocol import (
    IDENT,
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_REQUEST,
    MAX_MESSAGE,
    Refused,
    check_event,
    clean_name,
    where_on_board,
)

RATE_PER_SECOND = 20
SCHEMA = """
CREATE TABLE IF NOT EXISTS attendees (id TEXT PRIMARY KEY, name TEXT, token TEXT, joined REAL, last_seq INTEGER);
CREATE TABLE IF NOT EXISTS events (attendee TEXT, seq INTEGER, kind TEXT, lab TEXT, step TEXT, time REAL,
                                   received REAL, PRIMARY KEY (attendee, seq));
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS left_class (attendee TEXT PRIMARY KEY, time REAL);
CREATE TABLE IF NOT EXISTS progress (attendee TEXT PRIMARY KEY, lab TEXT, step TEXT, since REAL, failed INTEGER,
                                     hints INTEGER, steps_done INTEGER, finished INTEGER NOT NULL DEFAULT 0);
"""
PROGRESS_COLUMNS = "p.lab, p.step, p.since, p.failed, p.hints, p.steps_done, p.finished"
STUCK_AFTER_FAILED_CHECKS, STUCK_AFTER_SECONDS = 3, 600


class Progress:
    """Where one attendee is, folded from their events one by one (the board's row, kept current).

    Kept in the ``progress`` table and updated as events arrive, so the board reads one row per
    attendee instead of every event of the day (200 attendees x a few hundred events each).
    ``steps_done`` counts distinct steps (a step checked again, or by a notebook's solution cell
    and then its check cell, is one); ``passed`` holds the (lab, step) pairs counted so far.
    """

    def __init__(self, joined: float, lab: str | None = None, step: str | None = None, since: float | None = None,
                 failed: int = 0, hints: int = 0, steps_done: int = 0, finished: int = 0,
                 passed: set[tuple[str, str]] | None = None) -> None:  # fmt: skip
        self.lab, self.step, self.since = lab, step, joined if since is None else since
        self.failed, self.hints, self.steps_done, self.finished = failed, hints, steps_done, finished
        self.passed = set() if passed is None else passed

    def add(self, kind: str, lab: str, step: str | None, at: float) -> None:
        if kind in ("lab_started", "step_started") and step is None:  # a finished lab, opened again
            if lab != self.lab:
                self.lab, self.step, self.since, self.failed = lab, None, at, 0
            self.finished = 1
        elif kind in ("lab_started", "step_started") and (lab, step) != (self.lab, self.step):
            self.lab, self.step, self.since, self.failed, self.finished = lab, step, at, 0, 0
        elif kind == "check_failed":
            self.failed += 1
        elif kind == "hint_used":
            self.hints += 1
        elif kind == "check_passed" and (lab, step) not in self.passed:
            self.passed.add((lab, step))
            self.steps_done += 1
        elif kind == "lab_finished" and lab == self.lab:
            self.finished = 1

    def row(self, attendee: str) -> tuple:
        return (attendee, self.lab, self.step, self.since, self.failed, self.hints, self.steps_done, self.finished)


class ClassState:
    """Everything about one class, in SQLite (one writer: the service's event loop)."""

    def __init__(self, path: str, code: str, instructor_token: str) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(SCHEMA)
        if "finished" not in {row[1] for row in self.db.execute("PRAGMA table_info(progress)")}:  # an older file:
            self.db.execute("ALTER TABLE progress ADD COLUMN finished INTEGER NOT NULL DEFAULT 0")  # every row
            self.db.execute("DELETE FROM progress")  # folded again from the events (finished, distinct steps)
        self.code, self.instructor_token = code, instructor_token
        self.recent: dict[str, list[float]] = {}
        self._fold_missing_progress()

    def _fold_missing_progress(self) -> None:
        """Attendees without a progress row (a class file from before the table): fold their events once."""
        missing = self.db.execute(
            "SELECT id, joined FROM attendees WHERE id NOT IN (SELECT attendee FROM progress)"
        ).fetchall()
        for attendee, joined in missing:
            progress = Progress(joined)
            for event in self.db.execute(
                "SELECT kind, lab, step, time FROM events WHERE attendee = ? ORDER BY seq", (attendee,)
            ):
                progress.add(*event)
            self.db.execute("INSERT INTO progress VALUES (?, ?, ?, ?, ?, ?, ?, ?)", progress.row(attendee))
        self.db.commit()

    # --- attendees -------------------------------------------------------------------------------

    def join(self, code: object, name: object) -> dict:
        # as read off a projector: B8FC17 or " b8fc17 " is the code b8fc17 (ASCII: compare_digest needs it)
        said = code.strip().lower() if isinstance(code, str) and code.isascii() else None
        if said is None or not secrets.compare_digest(said, self.code.lower()):
            raise PermissionError("wrong class code")
        name = base = clean_name(name if isinstance(name, str) else "")
        taken = {row[0] for row in self.db.execute(
            "SELECT name FROM attendees WHERE id NOT IN (SELECT attendee FROM left_class)")}  # fmt: skip
        for n in range(2, 1000):  # two Adas in the room: the board tells them apart
            if name not in taken:
                break
            name = f"{base} ({n})"
        attendee, token, joined = secrets.token_hex(8), secrets.token_urlsafe(24), time.time()
        self.db.execute("INSERT INTO attendees VALUES (?, ?, ?, ?, 0)", (attendee, name, token, joined))
        self.db.execute("INSERT INTO progress VALUES (?, ?, ?, ?, ?, ?, ?, ?)", Progress(joined).row(attendee))
        self.db.commit()
        return {"attendee": attendee, "token": token, "name": name}

    def leave(self, attendee: str) -> None:
        """Off the board from now on; the events stay, for the export."""
        self.db.execute("INSERT OR REPLACE INTO left_class VALUES (?, ?)", (attendee, time.time()))
        self.db.commit()

    def authenticate(self, attendee: object, token: object) -> int:
        row = self.db.execute("SELECT token, last_seq FROM attendees WHERE id = ?", (str(attendee),)).fetchone()
        if row is None or not isinstance(token, str) or not secrets.compare_digest(row[0], token):
            raise PermissionError("unknown attendee or wrong token: join the class again")
        return row[1]

    def throttle(self, attendee: str) -> None:
        now = time.monotonic()
        recent = [t for t in self.recent.get(attendee, []) if now - t < 1.0]
        if len(recent) >= RATE_PER_SECOND:
            raise OverflowError("too many requests: at most 20 per second")
        self.recent[attendee] = [*recent, now]

    def add_events(self, attendee: str, events: object) -> int:
        last = self.db.execute("SELECT last_seq FROM attendees WHERE id = ?", (attendee,)).fetchone()[0]
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS_PER_REQUEST:
            raise Refused(f"events: a list of 1 to {MAX_EVENTS_PER_REQUEST}")
        checked = []
        stored = last
        for raw in events:  # all or nothing: one bad event refuses the request
            if isinstance(raw, dict) and type(raw.get("seq")) is int and raw["seq"] <= stored:
                continue  # stored already: sent again because the answer to it was lost. Not twice.
            event = check_event(raw, last)
            last = event["seq"]
            checked.append(event)
        if not checked:
            return 0
        now = time.time()
        self.db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(attendee, e["seq"], e["kind"], e["lab"], e["step"], e["time"], now) for e in checked],
        )
        self.db.execute("UPDATE attendees SET last_seq = ? WHERE id = ?", (last, attendee))
        row = self.db.execute(
            f"SELECT a.joined, {PROGRESS_COLUMNS} FROM attendees a JOIN progress p ON p.attendee = a.id WHERE a.id = ?",
            (attendee,),
        ).fetchone()
        passed = set(self.db.execute(  # the steps counted so far (this attendee's: the primary key's prefix)
            "SELECT DISTINCT lab, step FROM events WHERE attendee = ? AND kind = 'check_passed' AND seq <= ?",
            (attendee, stored)))  # fmt: skip
        progress = Progress(*row, passed=passed)
        for e in checked:
            progress.add(e["kind"], e["lab"], e["step"], e["time"])
        self.db.execute("INSERT OR REPLACE INTO progress VALUES (?, ?, ?, ?, ?, ?, ?, ?)", progress.row(attendee))
        self.db.commit()  # events and progress together, or neither
        return len(checked)

    # --- instructor ------------------------------------------------------------------------------

    def setting(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))
        self.db.commit()

    def set_break(self, on: bool) -> None:
        """A break starts (``on``) or ends: while it lasts, nobody's time on a step grows, so a
        coffee break does not mark the whole room stuck."""
        since = self.setting("break_since")
        if on and not since:
            self.set("break_since", repr(time.time()))
        elif not on and since:
            breaks = json.loads(self.setting("breaks", "[]")) + [[float(since), time.time()]]
            self.set("breaks", json.dumps(breaks))
            self.set("break_since", "")

    def _break_time(self, now: float) -> Callable[[float], float]:
        """Seconds of breaks since a moment (the one under way counts up to now)."""
        intervals = json.loads(self.setting("breaks", "[]"))
        if self.setting("break_since"):
            intervals.append([float(self.setting("break_since")), now])
        return lambda start: sum(max(0.0, end - max(begin, start)) for begin, end in intervals if end > start)

    def board(self, with_those_who_left: bool = False) -> dict:
        """Who is where; ``with_those_who_left`` (the export): also who left, marked."""
        now = time.time()
        on_break = self._break_time(now)
        attendees = []
        histogram: dict[str, int] = {}
        rows = self.db.execute(
            f"SELECT a.name, {PROGRESS_COLUMNS}, l.time IS NOT NULL"
            " FROM attendees a JOIN progress p ON p.attendee = a.id LEFT JOIN left_class l ON l.attendee = a.id"
            " ORDER BY a.name"
        )  # who left is off the board (not counted stuck for ever), but in the export
        pace = self.setting("pace")
        for name, lab, step, since, failed, hints, steps_done, finished, gone in rows:
            if gone and not with_those_who_left:
                continue
            where = where_on_board(lab, step)
            histogram[where] = histogram.get(where, 0) + 1
            on_step = now - since - on_break(since)  # working time: breaks do not count
            if finished:
                status = "done"  # the lab, that is: waiting for the next one is no trouble
            elif lab and _past_pace(pace, lab, step):
                status = "waiting"  # passed the step the class is paced to: held back, not stuck
            elif failed >= STUCK_AFTER_FAILED_CHECKS or on_step > STUCK_AFTER_SECONDS:
                status = "stuck"
            else:
                status = ""
            attendees.append({"name": name, "lab": lab, "step": step, "seconds_on_step": round(on_step),
                              "failed_checks": failed, "hints": hints, "steps_done": steps_done,
                              "status": status, "stuck": status == "stuck",
                              **({"left": bool(gone)} if with_those_who_left else {})})  # fmt: skip
        return {"attendees": attendees, "histogram": histogram, "pace": self.setting("pace"),
                "message": self.setting("message"), "break_since": self.setting("break_since")}  # fmt: skip


@functools.lru_cache(maxsize=64)
def _lab(lab_id: str) -> object | None:
    """A lab's definition (its steps' order), read once per service."""
    from labs.loader import find

    try:
        return find(lab_id)
    except LookupError:
        return None


def _past_pace(pace: str, lab_id: str, step: str | None) -> bool:
    """Is ``step`` of ``lab_id`` past the class's pace ("LAB/STEP"), as the learners' side sees it?"""
    from labs.classroom.client import beyond_pace

    lab = _lab(lab_id) if pace.startswith(f"{lab_id}/") and step else None
    try:
        return lab is not None and beyond_pace({"pace": pace}, lab, lab.index(step))
    except ValueError:  # a step the lab no longer has
        return False


# --- HTTP ---------------------------------------------------------------------------------------------


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


async def _body(request: web.Request) -> dict:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise Refused("the body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused("the body is a JSON object")
    return data


def _instructor(request: web.Request) -> None:
    state: ClassState = request.app["state"]
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not secrets.compare_digest(given, state.instructor_token):
        raise PermissionError("the instructor token is required")


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:  # noqa: ANN001
    try:
        return await handler(request)
    except Refused as e:
        return _error(400, str(e))
    except PermissionError as e:
        return _error(401, str(e))
    except OverflowError as e:
        return _error(429, str(e))


async def join(request: web.Request) -> web.Response:
    data = await _body(request)
    return web.json_response(request.app["state"].join(data.get("code"), data.get("name")))


async def _from_attendee(request: web.Request) -> tuple[ClassState, dict, str]:
    """An attendee's request: the class, its body, and who sent it (their token checked)."""
    state: ClassState = request.app["state"]
    data = await _body(request)
    attendee = str(data.get("attendee"))
    state.authenticate(attendee, data.get("token"))
    return state, data, attendee


async def events(request: web.Request) -> web.Response:
    state, data, attendee = await _from_attendee(request)
    state.throttle(attendee)
    return web.json_response({"stored": state.add_events(attendee, data.get("events"))})


async def leave(request: web.Request) -> web.Response:
    state, _data, attendee = await _from_attendee(request)
    state.leave(attendee)
    return web.json_response({"left": True})


async def news(request: web.Request) -> web.Response:
    state: ClassState = request.app["state"]
    state.authenticate(request.query.get("attendee"), request.query.get("token"))
    return web.json_response({"pace": state.setting("pace"), "message": state.setting("message")})


async def board(request: web.Request) -> web.Response:
    _instructor(request)
    return web.json_response(request.app["state"].board())


async def pace(request: web.Request) -> web.Response:
    _instructor(request)
    data = await _body(request)
    lab, step = str(data.get("lab", "")), str(data.get("step", ""))
    if not lab and not step:  # no pace: every step open again
        request.app["state"].set("pace", "")
        return web.json_response({"pace": ""})
    if not (IDENT.fullmatch(lab) and IDENT.fullmatch(step)):
        raise Refused("pace: a lab id and a step id")
    from labs.loader import find

    try:  # a typo would pace nobody: the labs are this repository's own
        found = find(lab)
        paced = f"{found.id}/{found.step(step).id}"  # as ids: "3/2" (numbers, as `workshop solve 2`) is uts/...
    except LookupError as e:
        raise Refused(f"pace: {e.args[0]}") from None
    request.app["state"].set("pace", paced)
    return web.json_response({"pace": paced})


async def broadcast(request: web.Request) -> web.Response:
    _instructor(request)
    message = str((await _body(request)).get("message", ""))
    if len(message) > MAX_MESSAGE:
        raise Refused(f"a message is at most {MAX_MESSAGE} characters")
    request.app["state"].set("message", message)
    return web.json_response({"message": message})


async def pause(request: web.Request) -> web.Response:
    _instructor(request)
    on = (await _body(request)).get("on")
    if not isinstance(on, bool):
        raise Refused('break: {"on": true} to start one, {"on": false} to end it')
    request.app["state"].set_break(on)
    return web.json_response({"break": on})


async def export(request: web.Request) -> web.Response:
    _instructor(request)
    rows = request.app["state"].board(with_those_who_left=True)["attendees"]
    if request.match_info["kind"] == "json":
        return web.json_response(rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["name"])
    writer.writeheader()
    writer.writerows(rows)
    return web.Response(text=out.getvalue(), content_type="text/csv")


def make_app(state: ClassState, bundle: str = "") -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[errors])
    app["state"] = state
    if bundle:  # public like the workshop's source: it holds no secret, and VMs fetch it without one
        app.add_routes([web.get("/bundle.tar", lambda _request: web.FileResponse(bundle))])
    app.add_routes([
        web.post("/api/join", join), web.post("/api/events", events), web.get("/api/news", news),
        web.post("/api/leave", leave),
        web.get("/api/board", board), web.post("/api/pace", pace), web.post("/api/broadcast", broadcast),
        web.post("/api/break", pause),
        web.get("/api/export.{kind:json|csv}", export),
    ])  # fmt: skip
    return app


def serve(
    path: str, host: str = "127.0.0.1", port: int = 8100, code: str = "", token: str = "", bundle: str = ""
) -> None:
    """Run the service (blocking); prints the class code and the instructor's token."""
    state = ClassState(
        path,
        code or kept(path, "code", secrets.token_hex(3)),
        token or kept(path, "instructor_token", secrets.token_urlsafe(24)),
    )
    print(f"class service on http://{host}:{port}\n  class code (for attendees): {state.code}\n"
          f"  instructor token (keep it): {state.instructor_token}", flush=True)  # fmt: skip
    if bundle:
        print(f"  offline bundle for room VMs: http://{host}:{port}/bundle.tar", flush=True)
    web.run_app(make_app(state, bundle), host=host, port=port, print=None)


def kept(path: str, key: str, new: str) -> str:
    """A setting kept in the class's file (code, token), so a restarted service keeps them."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    if row:
        return row[0]
    db.execute("INSERT INTO settings VALUES (?, ?)", (key, new))
    db.commit()
    return new
