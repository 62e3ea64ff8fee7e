"""The workshop's terminal UI: a Textual app over ``labs`` (the logic) and ``engine.observe`` (the views).

``workshop`` with no arguments starts it. Screens live in ``screens/``; this module only wires
them. Nothing here calls the kernel: the app renders what the runner and the observers return.
"""

from __future__ import annotations

import os

from textual.app import App
from textual.binding import Binding

from labs.runner import Runner


class WorkshopApp(App):
    CSS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workshop.tcss")  # also for subclasses
    TITLE = "Container Internals Workshop"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
    ]

    def __init__(self, runner: Runner | None = None, open_lab: str | None = None) -> None:
        super().__init__()
        self.runner = runner or Runner()
        self.open_lab = open_lab

    # Where the side-by-side views come from; snapshot tests give fixed ones (PIDs, inodes).
    @staticmethod
    def observe(view: str, where: object) -> list[dict]:
        from engine.observe import view as read

        return read(view, where)

    @staticmethod
    def host_pid() -> int:
        return os.getpid()

    def on_mount(self) -> None:
        from workshop_tui.screens.home import HomeScreen

        self.push_screen(HomeScreen())
        if self.open_lab:
            from workshop_tui.screens.lab import LabScreen

            self.push_screen(LabScreen(self.open_lab))

    def action_help(self) -> None:
        from workshop_tui.screens.dialogs import HelpScreen

        self.push_screen(HelpScreen(self.screen))
