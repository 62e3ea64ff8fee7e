"""Modal dialogs: confirm an action that changes things, and the key help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question)
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help-close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        lines = ["[b]Keys[/b]  (every binding has an id and can be remapped)", ""]
        seen = set()
        for binding in [*self.under.BINDINGS, *self.app.BINDINGS]:
            if isinstance(binding, Binding) and binding.key not in seen:  # (a screen's own ? shadows the app's)
                seen.add(binding.key)
                key = binding.key_display or self.app.get_key_display(binding)
                lines.append(f"  [b]{key:<12}[/b] {binding.tooltip or binding.description}")
        lines += ["", "Mouse: click a lab, a tab or a button.", "Escape or ? closes this."]
        with Vertical(id="help-box"):
            yield Static("\n".join(lines))

    def action_close(self) -> None:
        self.dismiss(None)
