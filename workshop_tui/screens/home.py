"""Home: every lab with its state (done, in progress, locked by a prerequisite) and time estimate."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static


class LabTable(DataTable):
    """The labs, one per row: Home and End go to the first and the last (DataTable's own scroll
    sideways, which a table this narrow never needs)."""

    BINDINGS = [
        Binding("home", "scroll_top", "First lab", show=False),
        Binding("end", "scroll_bottom", "Last lab", show=False),
    ]


class HomeScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open lab", id="open-lab"),
        Binding("f", "open(True)", "Open anyway", id="open-lab-force"),
        Binding("r", "resume", "Resume", id="resume"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield LabTable(id="labs", cursor_type="row")
        yield Static(id="lab-goal")
        yield Static("Enter opens a lab, r resumes where you left off, ? shows every key.", id="home-help")
        yield Footer()

    def on_mount(self) -> None:
        self.lab_ids: list[str] = []
        table = self.query_one(DataTable)
        table.add_columns("#", "State", "Time", "Lab")  # the long titles last: cut at the edge, not the state
        self.refresh_labs()
        self.set_interval(2.0, self.follow_progress)

    def on_screen_resume(self) -> None:
        self.refresh_labs()

    def follow_progress(self) -> None:
        """Show what another front end saved (`workshop check` in a terminal, a notebook)."""
        progress = self.app.runner.progress
        progress.reload()
        if self.is_current and progress.version != self.shown_version:
            self.refresh_labs(keep_cursor=True)

    def refresh_labs(self, keep_cursor: bool = False) -> None:
        runner = self.app.runner
        self.shown_version = runner.progress.version  # first: a newer save is then shown at the next refresh
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        current_row = 0
        self.lab_ids.clear()
        for row, lab in enumerate(runner.labs()):
            entry = runner.progress.data["labs"].get(lab.id, {})
            if runner.finished(lab.id):
                state = "[green]✓ done[/]"
            elif entry.get("started"):  # opened early (f) too: where the learner is
                state = f"[yellow]{len(entry.get('done', []))}/{len(lab.steps)} steps[/]"
            elif runner.missing_prerequisites(lab):
                state = f"[dim]needs {', '.join(runner.missing_prerequisites(lab))}[/]"
            else:
                state = ""
            if runner.progress.current_lab == lab.id:
                current_row = row
                state = f"▶ {state}"
            table.add_row(str(lab.number), state, f"{lab.minutes} min", lab.title, key=lab.id)
            self.lab_ids.append(lab.id)
        table.move_cursor(row=cursor if keep_cursor else current_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row < len(self.lab_ids):
            self.show_details(self.lab_ids[event.cursor_row])

    def show_details(self, lab_id: str, refused: bool = False) -> None:
        """The highlighted lab's goal and steps; for a lab that builds on unfinished ones, what to
        do about it (here, not in a toast: a toast outlives the screen and would sit over the lab)."""
        runner = self.app.runner
        lab = runner.lab(lab_id)
        steps = " → ".join(step.title for step in lab.steps)
        text = f"[b]{lab.title}[/b]\n{lab.goal}\n\n[dim]{steps}[/]"
        missing = runner.missing_prerequisites(lab)
        if missing and not runner.progress.data["labs"].get(lab_id, {}).get("started"):
            style = "b yellow" if refused else "yellow"
            text = f"[{style}]Builds on {', '.join(missing)}: do that first, or press f to open it anyway.[/]\n{text}"
        self.query_one("#lab-goal", Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self, force: bool = False) -> None:
        table = self.query_one(DataTable)
        if not self.lab_ids:
            return
        lab_id = self.lab_ids[table.cursor_row]
        lab = self.app.runner.lab(lab_id)
        opened_before = self.app.runner.progress.data["labs"].get(lab_id, {}).get("started")
        if self.app.runner.missing_prerequisites(lab) and not (force or opened_before):
            self.app.bell()
            self.show_details(lab_id, refused=True)
            return
        from workshop_tui.screens.lab import LabScreen

        self.app.push_screen(LabScreen(lab_id))

    def action_resume(self) -> None:
        current = self.app.runner.progress.current_lab
        if current is None:
            self.notify("Nothing to resume yet: pick a lab and press Enter.")
            return
        from workshop_tui.screens.lab import LabScreen

        self.app.push_screen(LabScreen(current))
