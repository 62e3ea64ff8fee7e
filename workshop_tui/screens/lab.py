"""A lab's step: the instructions on the left, host vs container on the right, output below.

Commands (the step's ```run blocks, its solution, checks) run in worker threads and stream into
the log, so the screen never freezes; a running command can be cancelled. The side-by-side
views come from ``engine.observe`` and refresh by themselves every two seconds and after every
command. Errors show as one line, never a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections import deque

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Header,
    Input,
    Markdown,
    RichLog,
    Sparkline,
    Static,
    TabbedContent,
    TabPane,
)  # fmt: skip

from engine.observe import VIEWS
from labs.model import Lab, Step
from labs.runner import stream_command
from workshop_tui.views import FILLERS, veth_owners

VIEW_TITLES = {"namespaces": "Namespaces", "processes": "Processes", "cgroups": "cgroups", "mounts": "Mounts",
               "network": "Network"}  # fmt: skip

RUN_BLOCK = re.compile(r"^```run\n(.*?)^```", flags=re.S | re.M)


def with_prompts(markdown: str) -> str:
    """Show each line of a ```run block as ``$ command``: a command longer than the pane wraps,
    and the prompt tells its continuation apart from the next command (each line is one)."""

    def prompted(block: re.Match) -> str:
        lines = "".join(f"$ {line}\n" for line in block.group(1).rstrip("\n").splitlines())
        return f"```console\n{lines}```"

    return RUN_BLOCK.sub(prompted, markdown)


class LabScreen(Screen):
    # In the footer's order, shortest first to fit a narrow terminal: "?" (every key, with the
    # longer words of each tooltip) first, the rarer ones last, where a narrow footer cuts.
    BINDINGS = [
        Binding("question_mark", "app.help", "Keys", id="keys", tooltip="every key and what it does"),
        Binding("r", "run_next", "Run", id="run-command", tooltip="run the step's next command (the last again)"),
        Binding("c", "check", "Check", id="check", tooltip="check your work: the step's end state"),
        Binding("h", "hint", "Hint", id="hint", tooltip="the step's next hint"),
        Binding("s", "solve", "Solution", id="solve", tooltip="see the step's solution, and run it if you say so"),
        Binding("n", "step(1)", "Next", id="next-step", tooltip="the next step"),
        Binding("p", "step(-1)", "Prev", id="previous-step", tooltip="the previous step"),
        Binding("y", "copy_next", "Copy", id="copy-command", tooltip="copy the next command, for your own shell"),
        Binding("t", "shell(False)", "Host shell", id="host-shell", tooltip="a shell where the lab's commands run"),
        Binding("e", "shell(True)", "Container shell", id="container-shell", tooltip="a shell in the lab's container"),
        Binding("k", "cancel", "Cancel", id="cancel-command", tooltip="stop the command that is running"),
        Binding("x", "reset", "Reset lab", id="reset-lab", tooltip="put the lab back at its start"),
        Binding("escape", "app.pop_screen", "Labs", id="back", tooltip="back to the list of labs"),
    ]

    def __init__(self, lab_id: str) -> None:
        super().__init__()
        self.lab_id = lab_id
        self.lab: Lab | None = None
        self.step: Step | None = None
        self.command_index = 0
        self.shown_done: set[str] = set()  # the steps done, and the progress's version, when shown
        self.shown_version = 0
        self.running: subprocess.Popen | None = None
        self.command_line_container: str | None = None
        # container name -> (memory samples, cpu % samples, last (time, cpu ns)): the sparklines
        self.usage: dict[str, tuple[deque, deque, list]] = {}
        # Held while commands run: a check waits for them (r then c at once must check the result).
        self.busy = threading.Lock()
        # view -> what its table shows now: a refresh that finds the same is not redrawn, so a
        # learner's cursor and scroll position stay where they were between the 2 s refreshes
        self.shown: dict[str, tuple] = {}

    # --- layout --------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Static(id="step-title")
                with VerticalScroll(id="step-scroll"):
                    yield Markdown(id="step-body")
                yield Static(id="next-command")
                yield RichLog(id="log", wrap=True, markup=True, max_lines=2000)
                yield Input(id="command-line", placeholder="type a command, Enter runs it (Escape hides this line)")
            with Vertical(id="right"):
                yield Static(id="observed")
                with TabbedContent(id="views"):
                    for view in VIEWS:
                        with TabPane(VIEW_TITLES[view], id=f"tab-{view}"):
                            if view == "network":  # bridges and veth pairs as a picture, then the rows
                                yield Static(id="network-diagram")
                            if view == "cgroups":  # live usage over the last minute, then the files
                                yield Static(id="usage")
                                yield Sparkline([], id="spark-memory")
                                yield Sparkline([], id="spark-cpu")
                            yield DataTable(id=f"table-{view}", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#command-line", Input).display = False
        runner = self.app.runner
        try:
            self.lab = runner.start(self.lab_id, force=True)
        except Exception as e:  # noqa: BLE001 -- shown as one line, the app stays up
            self.notify(f"cannot start lab: {e}", severity="error", markup=False)
            self.app.pop_screen()
            return
        self.sub_title = self.lab.title
        self.show_step(runner.current_step(self.lab) or self.lab.steps[-1])
        self.set_interval(2.0, self.refresh_views)
        self.class_news: dict = {}
        if os.path.exists(os.path.join(runner.progress.directory, "class.json")):  # joined a class
            self.poll_class()
            self.set_interval(10.0, self.poll_class)

    @work(thread=True, exclusive=True, group="class", exit_on_error=False)
    def poll_class(self) -> None:
        """The instructor's broadcast and pace, from the class service (labs/classroom)."""
        from labs.classroom.client import flush, news, trouble

        flush(self.app.runner.progress.directory)  # what waited while the service was away goes now
        said = trouble(self.app.runner.progress.directory)
        if said and not getattr(self, "class_trouble_said", False):
            self.class_trouble_said = True
            self.app.call_from_thread(self.notify, said, title="Class", severity="warning", timeout=30)
        fresh = news(self.app.runner.progress.directory)
        if fresh:
            self.app.call_from_thread(self.show_class_news, fresh)

    def show_class_news(self, fresh: dict) -> None:
        if fresh.get("message") and fresh["message"] != self.class_news.get("message"):
            self.notify(fresh["message"], title="From the instructor", timeout=30)
        self.class_news = fresh
        pace = fresh.get("pace") or ""
        self.sub_title = f"{self.lab.title} · the class is paced up to {pace}" if pace else self.lab.title

    def _paced_out(self, index: int) -> bool:
        """Is step ``index`` beyond what the instructor has unlocked?"""
        from labs.classroom.client import beyond_pace

        return beyond_pace(getattr(self, "class_news", {}), self.lab, index)

    def show_step(self, step: Step) -> None:
        lab, runner = self.lab, self.app.runner
        self.step = step
        self.command_index = 0
        number = lab.index(step.id) + 1
        self.shown_version = runner.progress.version  # first: a newer save is then shown at the next refresh
        self.shown_done = set(runner.progress.lab(lab.id)["done"])
        done = "  ✓" if step.id in self.shown_done else ""
        self.query_one("#step-title", Static).update(
            f"{lab.title} — step {number}/{len(lab.steps)}: {step.title}{done}"
        )
        body = with_prompts(runner.render(lab, step.body))
        if number == 1 and lab.intro.strip():  # the lab's introduction comes before its first step
            body = f"{with_prompts(runner.render(lab, lab.intro)).strip()}\n\n---\n\n{body}"
        self.query_one("#step-body", Markdown).update(body)
        self.show_next_command()
        if step.observe:
            self.query_one(TabbedContent).active = f"tab-{step.observe[0]}"
        self.refresh_views()

    def show_next_command(self) -> None:
        commands = self.step.commands if self.step else []
        label = self.query_one("#next-command", Static)
        if self.command_index < len(commands):
            first_line = self.app.runner.render(self.lab, commands[self.command_index]).splitlines()[0]
            label.update(f"r runs, y copies: {first_line}" + (" …" if "\n" in commands[self.command_index] else ""))
        else:
            label.update("c checks your work · r runs the last command again · h hint · s solution")

    def log_line(self, text: str | Text) -> None:
        self.query_one("#log", RichLog).write(text)

    # --- commands ------------------------------------------------------------------------------

    def action_run_next(self) -> None:
        if self.step is None or not self.step.commands:
            self.notify("This step has no command to run: press c to check.")
            return
        if self.command_index >= len(self.step.commands):  # all ran: the last again (a `cat` to watch
            self.command_index = len(self.step.commands) - 1  # a counter grow, a mistake fixed by hand)
            self.notify("Running the step's last command again (p then n starts the step over).")
        command = self.app.runner.render(self.lab, self.step.commands[self.command_index])
        self.command_index += 1
        self.show_next_command()
        self.run_shell([command])

    def action_copy_next(self) -> None:
        """Put the next command on the clipboard (OSC 52: works over ssh and in most terminals)."""
        if self.step is None or not self.step.commands:
            self.notify("This step has no command to copy.")
            return
        index = min(self.command_index, len(self.step.commands) - 1)
        self.app.copy_to_clipboard(self.app.runner.render(self.lab, self.step.commands[index]))
        self.notify("Command copied: paste it into your own shell.")

    @work(thread=True, group="command", exit_on_error=False)
    def run_shell(self, commands: list[str]) -> None:
        with self.busy:
            self._run_commands(commands)
        self.app.call_from_thread(self.refresh_views)

    def _run_commands(self, commands: list[str]) -> None:
        workdir = self.app.runner.workdir(self.lab)
        os.makedirs(workdir, exist_ok=True)
        self.app.runner.practice_network_up(self.lab)
        for command in commands:
            self.app.call_from_thread(self.log_line, Text(f"$ {command}", style="bold cyan"))

            def started(process: subprocess.Popen) -> None:
                self.running = process

            try:
                code = stream_command(command, workdir, lambda line: self.app.call_from_thread(self.log_line, line),
                                      on_start=started, sandbox=self.app.runner.sandbox(self.lab),
                                      env=self.app.runner.environment(self.lab))  # fmt: skip
            except OSError as e:
                code = None
                self.app.call_from_thread(self.log_line, Text(f"cannot run: {e}", style="red"))
            finally:
                self.running = None
            if code:
                self.app.call_from_thread(self.log_line, Text(f"(exit code {code})", style="yellow"))
                if len(commands) > 1 and command != commands[-1]:  # a solution: the rest builds on it
                    self.app.call_from_thread(self.log_line, Text("(stopped: the commands after it build on it)",
                                                                  style="yellow"))  # fmt: skip
                    return

    def action_cancel(self) -> None:
        process = self.running
        if process is None:
            self.notify("Nothing is running.")
            return
        os.killpg(process.pid, signal.SIGTERM)
        self.log_line(Text("(cancelled)", style="yellow"))

    def action_check(self) -> None:
        self.log_line(Text("checking…", style="dim"))
        self.run_check()

    @work(thread=True, exclusive=True, group="check", exit_on_error=False)
    def run_check(self) -> None:
        try:
            with self.busy:  # after the commands already started, not in the middle of them
                outcome = self.app.runner.check(self.lab.id, self.step.id)  # the step on the screen
        except Exception as e:  # noqa: BLE001 -- one line in the app, never a traceback
            self.app.call_from_thread(self.notify, str(e), severity="error", markup=False)
            return
        self.app.call_from_thread(self.show_check, outcome)

    def show_check(self, outcome) -> None:  # noqa: ANN001 -- labs.runner.CheckOutcome
        for result in outcome.results:
            style = "green" if result.ok else "red"
            self.log_line(Text(f"{'✓' if result.ok else '✗'} {result.message}", style=style))
        if not outcome.passed:
            if outcome.next_hint:
                self.log_line(Text(f"Hint: {self.app.runner.render(self.lab, outcome.next_hint)}", style="yellow"))
            self.notify("Not yet — see the log.", severity="warning")
            return
        if outcome.next_step and self._paced_out(self.lab.index(outcome.next_step.id)):
            self.notify(f"✓ {outcome.step.title}. The class is paced here: n opens the next step when "
                        "your instructor unlocks it.", timeout=10)  # fmt: skip
            self.show_step(outcome.step)
        elif outcome.next_step:
            self.notify(f"✓ {outcome.step.title}")
            self.show_step(outcome.next_step)
        elif not self.app.runner.finished(self.lab.id):  # a step looked at out of order (n/p): stay
            self.notify(f"✓ {outcome.step.title} (an earlier step is still open: p goes back)")
            self.show_step(outcome.step)
        else:
            self.show_lab_done()

    def show_lab_done(self) -> None:
        progress = self.app.runner.progress
        self.shown_version = progress.version
        self.shown_done = set(progress.lab(self.lab.id)["done"])
        self.notify(f"✓ Lab {self.lab.title!r} done!", timeout=8)
        self.query_one("#step-body", Markdown).update(self.app.runner.finish_text(self.lab))
        self.query_one("#next-command", Static).update("lab done · esc: the labs · x: do it again")
        self.query_one("#step-title", Static).update(f"{self.lab.title} — done ✓")

    def follow_progress(self) -> None:
        """The step on the screen was checked in another front end (`workshop check` in a
        terminal, a notebook): say so and go on, as this screen's own check would have."""
        runner = self.app.runner
        runner.progress.reload()
        own_check = any(w.node is self and w.group == "check" and not w.is_finished for w in self.app.workers)
        if self.step is None or own_check or runner.progress.version == self.shown_version:
            return  # (this screen's own check is shown by show_check)
        self.shown_version = runner.progress.version
        if self.step.id in self.shown_done or self.step.id not in runner.progress.lab(self.lab.id)["done"]:
            return
        self.log_line(Text(f"✓ {self.step.title} (checked in another window)", style="green"))
        current = runner.current_step(self.lab)
        if runner.finished(self.lab.id):
            self.show_lab_done()
        elif current and self._paced_out(self.lab.index(current.id)):
            self.notify("The class is paced here: n opens the next step when your instructor unlocks it.", timeout=10)
            self.show_step(self.step)
        else:
            self.show_step(current or self.step)

    def action_hint(self) -> None:
        try:
            step, hint, number = self.app.runner.hint(self.lab.id)
        except LookupError as e:
            self.notify(str(e), markup=False)
            return
        if hint:
            self.log_line(Text(f"Hint {number}/{len(step.hints)}: {hint}", style="yellow"))
        else:
            self.notify("No more hints: press s to see the solution.")

    def action_solve(self) -> None:
        from workshop_tui.screens.dialogs import ConfirmScreen

        step = self.step
        commands = [self.app.runner.render(self.lab, c) for c in step.solution]
        question = "Run the solution of this step?\n\n" + "\n".join(f"  $ {c}" for c in commands)

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_shell(commands)

        self.app.push_screen(ConfirmScreen(question), answered)

    def action_step(self, delta: int) -> None:
        index = self.lab.index(self.step.id) + delta
        if delta > 0 and self._paced_out(index):
            self.notify("The instructor has not unlocked that step yet.", severity="warning")
            return
        if 0 <= index < len(self.lab.steps):
            self.show_step(self.lab.steps[index])

    def action_reset(self) -> None:
        from workshop_tui.screens.dialogs import ConfirmScreen

        names = ", ".join(self.lab.containers) or "none"
        question = f"Reset lab {self.lab.id!r}? Its containers ({names}) are removed and its progress is forgotten.\n" \
                   f"The files the lab gave you in {self.app.runner.workdir(self.lab)} are put back as they were; " \
                   "anything else you made there stays."  # fmt: skip

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_reset()

        self.app.push_screen(ConfirmScreen(question), answered)

    @work(thread=True, group="command", exit_on_error=False)
    def run_reset(self) -> None:
        """Removing containers can take seconds: off the UI thread, and not while commands run."""
        with self.busy:
            try:
                lines = self.app.runner.reset(self.lab.id)
                lab = self.app.runner.start(self.lab.id, force=True)
            except Exception as e:  # noqa: BLE001 -- one line in the app
                self.app.call_from_thread(self.notify, f"reset failed: {e}", severity="error", markup=False)
                return
        self.app.call_from_thread(self.query_one("#log", RichLog).clear)  # the old tries' output is stale now
        for line in lines:
            self.app.call_from_thread(self.log_line, line)
        again = " (its practice network namespaces made afresh)" if lab.sandbox else ""
        self.app.call_from_thread(self.log_line, f"The lab starts again from its first step{again}.")
        self.lab = lab
        self.app.call_from_thread(self.show_step, lab.steps[0])

    def action_shell(self, in_container: bool) -> None:
        """A real shell, on the host or in the lab's container: the app hands over the terminal.

        Where the terminal cannot be handed over (in a browser, under tests) a command line in the
        app takes its place: each line runs like a step's command, its output in the log.
        """
        name, pid = self.running_container()
        if in_container and pid is None:
            said = f"{name} is not running." if name else "No container of this lab is running yet."
            self.notify(said, severity="warning")
            return
        sandbox = self.app.runner.sandbox(self.lab)
        if in_container:
            argv, where = ["minibox", "exec", "-it", name, "sh"], f"Container {name}"
            env, cwd = self.app.runner.environment(self.lab), self.app.runner.workdir(self.lab)
        else:
            argv, env, cwd = self.app.runner.shell(self.lab)  # as `workshop shell`: the lab's prompt too
            where = f"Host (the practice network namespace {sandbox})" if sandbox else "Host"
        try:
            with self.app.suspend():
                print(f"\n{where} shell; `exit` returns to the workshop.\n")
                subprocess.run(argv, cwd=cwd, env=env)
        except Exception:  # noqa: BLE001 -- suspend() is impossible in a browser or under tests
            self.open_command_line(name if in_container else None)
        self.refresh_views()

    def open_command_line(self, container: str | None) -> None:
        line = self.query_one("#command-line", Input)
        self.command_line_container = container
        where = f"in container {container}" if container else "on the host"
        line.placeholder = f"command to run {where} — Enter runs it, Escape hides this line"
        line.display = True
        line.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        command = event.value.strip()
        event.input.value = ""
        if not command:
            return
        container = self.command_line_container
        if container:
            command = f"minibox exec {container} sh -c {shlex.quote(command)}"
        self.run_shell([command])

    def on_key(self, event) -> None:  # noqa: ANN001 -- textual.events.Key
        line = self.query_one("#command-line", Input)
        if event.key == "escape" and line.display and line.has_focus:
            line.display = False
            event.stop()

    # --- host vs container views ---------------------------------------------------------------

    def container_name(self) -> str | None:
        return self.running_container()[0]

    def running_container(self) -> tuple[str | None, int | None]:
        """The lab's first running container and its init's PID: the "container" side of the views."""
        return self.app.runner.observed_pid(self.lab, self.step) if self.lab else (None, None)

    def refresh_views(self) -> None:
        if self.lab is not None:
            self.follow_progress()
            self.collect_views(self.query_one(TabbedContent).active.removeprefix("tab-"))

    @work(thread=True, exclusive=True, group="observe", exit_on_error=False)
    def collect_views(self, view: str) -> None:
        import engine

        observe = self.app.observe
        try:
            name, pid = self.running_container()
            host_rows = observe(view, self.app.runner.host_side(self.lab, view))
            container_rows = observe(view, pid) if pid else []
            stats = {}
            if name and view == "cgroups":
                try:
                    stats = engine.inspect(name)["Cgroup"]["Stats"]
                except engine.MiniboxError:
                    pass  # not one of minibox's own containers (lab 16: podman's): the view only
        except Exception as e:  # noqa: BLE001 -- a container may vanish while we look
            name, pid, host_rows, container_rows, stats = None, None, [], [], {}
            self.app.call_from_thread(self.notify, f"{view}: {e}", severity="warning", markup=False)
        self.app.call_from_thread(self.fill_view, view, name, pid, host_rows, container_rows)
        if stats:
            self.app.call_from_thread(self.show_usage, name, stats)

    def show_usage(self, name: str, stats: dict) -> None:
        """Memory in use and CPU share since the last sample, as sparklines (one point per refresh)."""
        memory, cpu, last = self.usage.setdefault(name, (deque(maxlen=30), deque(maxlen=30), []))
        now, cpu_ns = time.monotonic(), stats.get("cpu_usage_ns") or 0
        memory.append((stats.get("memory_usage") or 0) / 2**20)
        if last:
            cpu.append(max(0.0, (cpu_ns - last[1]) / ((now - last[0]) * 1e9) * 100))
        last[:] = [now, cpu_ns]
        self.query_one("#spark-memory", Sparkline).data = list(memory)
        self.query_one("#spark-cpu", Sparkline).data = list(cpu) or [0]
        limit = stats.get("memory_limit")
        limit_text = f" of {limit / 2**20:.0f} MiB" if limit else ""
        self.query_one("#usage", Static).update(
            f"memory {memory[-1]:.1f} MiB{limit_text} (top line) · cpu {cpu[-1] if cpu else 0:.0f}% (bottom line)"
            f" · throttled periods {stats.get('cpu_throttled_periods') or 0}"
        )

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_views()

    def fill_view(self, view: str, name: str | None, pid: int | None, host: list[dict], container: list[dict]) -> None:
        side = (f"container [b]{name}[/b] (pid {pid})" if pid else f"container [b]{name}[/b]: [dim]not running[/]"
                if name else "[dim]no container of this lab is running[/]")  # fmt: skip
        sandbox = self.app.runner.sandbox(self.lab) if self.lab else ""
        host_side = f"host side: the practice namespace {sandbox}" if sandbox and view == "network" else "host"
        self.query_one("#observed", Static).update(f"{host_side} (pid {self.app.host_pid()})  vs  {side}")
        shown = (name, pid, host, container, veth_owners() if view == "network" else None)
        if self.shown.get(view) == shown:
            return
        self.shown[view] = shown
        table = self.query_one(f"#table-{view}", DataTable)
        table.clear(columns=True)
        FILLERS[view](table, host, container)
        if view == "network":
            from workshop_tui.diagram import network_diagram

            diagram = network_diagram(host, container, shown[4], name)
            self.query_one("#network-diagram", Static).update(diagram)
