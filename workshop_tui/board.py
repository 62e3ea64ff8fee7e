"""The instructor's class board: ``workshop class board URL --token TOKEN`` (also in a browser
through ``workshop class board ... --serve``, textual-serve).

Who is on which step, for how long, how many failed checks and hints, who looks stuck; how many
attendees are on each step (a histogram); keys to pace the class (unlock up to a step), broadcast
a message to every attendee's workshop, and export the results. Reads and writes only the class
service's HTTP API (``labs/classroom/server.py``), off the UI thread.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Input, Static

from labs.classroom.protocol import where_on_board

STATUS_STYLES = {"stuck": "bold red", "waiting": "yellow", "done": "green"}


class BoardApp(App):
    TITLE = "Class board"
    CSS = """
    #histogram { height: auto; max-height: 12; padding: 0 1; border-bottom: solid $primary; }
    #status { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    #ask { display: none; }
    DataTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("b", "ask('broadcast')", "Broadcast", id="broadcast"),
        Binding("p", "ask('pace')", "Pace (LAB/STEP)", id="pace"),
        Binding("z", "toggle_break", "Break on/off", id="break"),
        Binding("e", "export", "Export", id="export"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, url: str, token: str, refresh_seconds: float = 2.0) -> None:
        super().__init__()
        self.url, self.token, self.refresh_seconds = url.rstrip("/"), token, refresh_seconds
        self.asking = ""
        self.last_board: dict = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="histogram")
        yield DataTable(id="attendees", zebra_stripes=True)
        yield Static(id="status")
        yield Input(id="ask")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("name", "lab / step", "on step", "failed checks", "hints asked", "steps done", "")
        self.load()
        self.set_interval(self.refresh_seconds, self.load)

    # --- the service -----------------------------------------------------------------------------

    def _call(self, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data, {
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=5) as answer:
            raw = answer.read().decode()
            return json.loads(raw) if answer.headers.get_content_type() == "application/json" else raw

    @work(thread=True, exclusive=True, group="board", exit_on_error=False)
    def load(self) -> None:
        try:
            board = self._call("/api/board")
        except (urllib.error.URLError, OSError, ValueError) as e:
            from labs.classroom.client import why_refused

            self.call_from_thread(self.show_status, f"cannot read the board: {why_refused(e)}", True)
            return
        self.call_from_thread(self.show, board)

    def show(self, board: dict) -> None:
        self.last_board = board
        table = self.query_one(DataTable)
        table.clear()
        for a in board["attendees"]:
            where = where_on_board(a["lab"], a["step"])
            minutes, seconds = divmod(a["seconds_on_step"], 60)
            status = a.get("status", "stuck" if a["stuck"] else "")  # (a service from before "status")
            state = Text(status, STATUS_STYLES.get(status, ""))  # stuck; waiting at the pace; done with the lab
            style = "red" if status == "stuck" else ""
            table.add_row(Text(a["name"], style), where, f"{minutes}:{seconds:02d}", str(a["failed_checks"]),
                          str(a["hints"]), str(a["steps_done"]), state)  # fmt: skip
        histogram = Text()
        width = max(board["histogram"].values(), default=1)
        for where, count in sorted(board["histogram"].items()):
            histogram.append(f"{where[:38]:<39}", "bold")
            histogram.append("█" * max(1, round(30 * count / width)), "cyan")
            histogram.append(f" {count}\n")
        self.query_one("#histogram", Static).update(histogram or Text("nobody has joined yet", "dim"))
        stuck = sum(a["stuck"] for a in board["attendees"])
        waiting = sum(a.get("status") == "waiting" for a in board["attendees"])
        pace = board.get("pace") or "none"
        message = board.get("message") or "none"
        count = len(board["attendees"])
        people = f"{count} attendee{'s' if count != 1 else ''}"
        held = f", {waiting} waiting at the pace" if waiting else ""
        summary = Text(f"{people}, {stuck} stuck{held} · pace: {pace} · message: {message}")
        if board.get("break_since"):
            started = time.strftime("%H:%M", time.localtime(float(board["break_since"])))
            summary.append(f" · on a break since {started}: time on a step is not counted (z ends it)", "bold yellow")
        notice, until = getattr(self, "notice", (None, 0.0))
        if notice is not None and time.monotonic() < until:  # an answer to the instructor stays a while
            summary.append("\n").append_text(notice)
        self.query_one("#status", Static).update(summary)

    def show_status(self, text: str, error: bool = False) -> None:
        """An answer to what the instructor did (or a trouble): kept under the summary for 20 s,
        through the refreshes every 2 s."""
        self.notice = (Text(text, "bold red" if error else "green"), time.monotonic() + 20)
        self.query_one("#status", Static).update(self.notice[0])

    # --- instructor actions ----------------------------------------------------------------------

    def action_ask(self, what: str) -> None:
        self.asking = what
        ask = self.query_one("#ask", Input)
        ask.placeholder = "message to every attendee (Enter sends, Escape cancels)" if what == "broadcast" else \
            "unlock up to LAB/STEP, e.g. uts/rename-inside (Enter sets, Escape cancels)"  # fmt: skip
        ask.display = True
        ask.focus()

    def action_toggle_break(self) -> None:
        """A break starts (or ends): the service stops counting time on a step meanwhile."""
        self.send("/api/break", {"on": not self.last_board.get("break_since")})

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        event.input.value = ""
        event.input.display = False
        if self.asking == "broadcast":
            self.send("/api/broadcast", {"message": value})
        elif "/" in value:
            lab, _, step = value.partition("/")
            self.send("/api/pace", {"lab": lab, "step": step})
        elif not value or value == "-":  # an empty pace opens every step again
            self.send("/api/pace", {"lab": "", "step": ""})
        else:
            self.show_status("pace: give LAB/STEP (nothing, or -, to open every step)", True)

    def on_key(self, event) -> None:  # noqa: ANN001 -- textual.events.Key
        ask = self.query_one("#ask", Input)
        if event.key == "escape" and ask.display:
            ask.display = False
            event.stop()

    @work(thread=True, group="send", exit_on_error=False)
    def send(self, path: str, body: dict) -> None:
        try:
            self._call(path, body)
        except urllib.error.HTTPError as e:
            self.call_from_thread(self.show_status, f"refused: {json.load(e).get('error', e.reason)}", True)
            return
        except (urllib.error.URLError, OSError) as e:
            self.call_from_thread(self.show_status, f"cannot reach the service: {getattr(e, 'reason', e)}", True)
            return
        self.load()

    @work(thread=True, group="send", exit_on_error=False)
    def action_export(self) -> None:
        import os

        name = time.strftime("class-results-%Y%m%d-%H%M%S")
        try:
            for kind in ("json", "csv"):
                text = self._call(f"/api/export.{kind}")
                with open(f"{name}.{kind}", "w") as f:
                    f.write(text if isinstance(text, str) else json.dumps(text, indent=2))
        except (urllib.error.URLError, OSError) as e:
            self.call_from_thread(self.show_status, f"export failed: {e}", True)
            return
        self.call_from_thread(self.show_status, f"results written to {os.path.abspath(name)}.json and .csv")
