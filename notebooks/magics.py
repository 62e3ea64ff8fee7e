"""The IPython extension every lab notebook loads (``%load_ext notebooks.magics``).

- ``%lab_start LAB``: start (or resume) the lab, as ``workshop start`` does;
- ``%%shell [CONTAINER]``: run the cell as a shell script on the host (a network lab's host is its
  practice namespace) or, with a name, inside that container; output streams in as it comes;
- ``%view VIEW [CONTAINER]``: an observer's rows, host beside container, as a table; rows that
  differ between the two sides are marked;
- ``check([STEP])``: ✓ or ✗ for the current (or given) step, each check's message, a hint on ✗;
- ``%%solution STEP``: the step's solution, run only if the step's check does not pass yet, then
  the check;
- ``%lab_reset``: put the lab back at its start.

A mistake (a step that does not exist, a container that is not running) is said in one line, as
IPython's own ``UsageError``, not as a traceback. After a kernel restart the lab is found again
from the notebook's name (Jupyter tells the kernel, ``JPY_SESSION_NAME``); ``workshop notebook``
has its kernels load this extension themselves, so ``check()`` is there before any cell ran.

Everything is the labs package's and the engine's own code (runner, checks, observers); this
module only renders it (HTML in Jupyter, text elsewhere).
"""

from __future__ import annotations

import functools
import html
import os
import re
import shlex
from collections.abc import Callable

from labs.runner import INTERRUPTED, Runner, stream_command

_state: dict = {"runner": None, "lab": None}
NOTEBOOK_NAME = re.compile(r"^\d\d-(?P<lab>[\w-]+?)(?:-solutions)?\.ipynb$")  # as notebooks.generate names them


def _said_in_one_line(function: Callable) -> Callable:
    """A learner's mistake as one line (IPython shows a UsageError without a traceback)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):  # noqa: ANN202
        from IPython.core.error import UsageError

        from engine.errors import MiniboxError
        from labs.runner import LabSetupFailed

        try:
            return function(*args, **kwargs)
        except MiniboxError as e:
            raise UsageError(e.one_line()) from None
        except (KeyError, IndexError):  # a bug's: its traceback is what a report needs
            raise
        except (LookupError, PermissionError, LabSetupFailed) as e:  # the labs' "no such step/lab"
            raise UsageError(str(e.args[0]) if e.args else str(e)) from None

    return wrapper


def _runner() -> Runner:
    if _state["runner"] is None:
        _state["runner"] = Runner()
    return _state["runner"]


def _lab():  # noqa: ANN202 -- labs.model.Lab
    if _state["lab"] is None:
        lab_id = _lab_of_this_notebook()
        if lab_id is None:
            raise LookupError("no lab started in this notebook: run its first cell (%lab_start LAB)")
        _state["lab"] = _runner().lab(lab_id)  # a restarted kernel: quietly where it was (no start:
        _runner().practice_network_up(_state["lab"])  # the TUI's current lab, the class stay as they are)
    return _state["lab"]


def _lab_of_this_notebook() -> str | None:
    """The lab whose notebook this kernel runs, from its file name (``04-pid.ipynb``: pid)."""
    match = NOTEBOOK_NAME.match(os.path.basename(os.environ.get("JPY_SESSION_NAME", "")))
    if not match:
        return None
    try:
        return _runner().lab(match["lab"]).id
    except LookupError:
        return None


def _display_html(markup: str, text: str) -> None:
    """HTML for Jupyter, plain text for terminals and text exports."""
    from IPython.display import display

    display({"text/html": markup, "text/plain": text}, raw=True)


# --- magics --------------------------------------------------------------------------------------


@_said_in_one_line
def lab_start(line: str) -> None:
    runner = _runner()
    lab = runner.start(line.strip(), force=True)
    _state["lab"] = lab
    workdir = runner.workdir(lab)
    sandbox = runner.sandbox(lab)
    extra = f"; host commands run in the practice network namespace <code>{sandbox}</code>" if sandbox else ""
    started = f"<p><b>{html.escape(lab.title)}</b> started: files in <code>{html.escape(workdir)}</code>{extra}.</p>"
    _display_html(started, f"{lab.title} started: files in {workdir}")
    done = runner.progress.lab(lab.id).get("done", [])
    if done:  # a second run of the notebook from the top would meet what the first one made
        where = "finished" if runner.finished(lab.id) else f"under way: {len(done)} of {len(lab.steps)} steps done"
        said = (f"This lab is {where}. Cells run again meet what they made the first time (a name "
                "already in use, a second mount): %lab_reset in a new cell starts the lab over.")  # fmt: skip
        _display_html(f"<p>{html.escape(said)}</p>", said)
    pace = _class_news().get("pace")  # (and the instructor's message)
    if pace:
        said = f"The class is paced up to {pace}."
        _display_html(f"<p>{html.escape(said)}</p>", said)


@_said_in_one_line
def shell(line: str, cell: str) -> None:
    """Run the cell with sh; each line of output is printed as soon as it comes."""
    lab, runner = _lab(), _runner()
    container = line.strip()
    command = runner.render(lab, cell)
    if container:
        command = f"minibox exec {shlex.quote(container)} sh -c {shlex.quote(command)}"
    runner.practice_network_up(lab)
    code = stream_command(command, runner.workdir(lab), lambda text: print(text, flush=True),
                          sandbox=runner.sandbox(lab), env=runner.environment(lab))  # fmt: skip
    if code == INTERRUPTED and "minibox run" in cell:
        print("(a container it started may still be running: `minibox ps` lists them, `minibox rm -f NAME`)")
    elif code and code != INTERRUPTED:
        print(f"(exit code {code})")


@_said_in_one_line
def solution(line: str, cell: str = "") -> None:
    lab, runner = _lab(), _runner()
    step_id = line.strip()
    if _paced_out(lab, lab.step(step_id)):
        return
    if runner.passes(lab.id, step_id):  # a look first: a failed check here is no failure of the learner's
        runner.check(lab.id, step_id)  # done by hand: recorded as done
        print(f"step {step_id}: already done ✓")
        return
    results = runner.solve(lab.id, step_id)
    for result in results:
        print(f"$ {result.args[-1]}\n{result.stdout}", end="" if result.stdout.endswith("\n") else "\n")
        if result.returncode:
            print(f"(exit code {result.returncode}: stopped here; fix what it says, then run this cell again)")
    if results and not results[-1].returncode:
        check(step_id)  # the step done by its solution is recorded (and shown) as done


@_said_in_one_line
def check(step_id: str | None = None) -> None:
    """✓/✗ for a step (the current one by default), with each check's message and a hint on ✗."""
    lab, runner = _lab(), _runner()
    step = lab.step(step_id) if step_id else runner.current_step(lab)
    if step is not None and _paced_out(lab, step):
        return
    outcome = runner.check(lab.id, step_id)
    messages = [("✓" if r.ok else "✗", r.message) for r in outcome.results]
    earlier = _earlier_steps_not_done(lab, outcome.step) if not outcome.passed else []
    if earlier:  # run out of order: say so first, the checks' own messages may only be its echo
        messages.insert(0, ("✗", f"step {', '.join(earlier)} is not done yet: this one builds on it"))
    rows = "".join(f"<li>{mark} {html.escape(message)}</li>" for mark, message in messages)
    mark = "✓" if outcome.passed else "✗"
    title = f"{mark} step {outcome.step.id}: {'done' if outcome.passed else 'not done yet'}"
    next_hint = runner.render(lab, outcome.next_hint) if outcome.next_hint else ""
    hint = "" if outcome.passed or not next_hint else f"<p>Hint: {_inline_markdown(next_hint)}</p>"
    color = "#1a7f37" if outcome.passed else "#cf222e"
    text = "\n".join([title, *(f"  {mark} {message}" for mark, message in messages)])
    if next_hint and not outcome.passed:
        text += f"\n  Hint: {next_hint}"
    head = f"<b style='color:{color}'>{html.escape(title)}</b>"
    _display_html(f"<div class='lab-check'>{head}<ul>{rows}</ul>{hint}</div>", text)


def _earlier_steps_not_done(lab, step) -> list[str]:  # noqa: ANN001 -- labs.model objects
    done = _runner().progress.lab(lab.id).get("done", [])
    return [f"{n} ({s.id})" for n, s in enumerate(lab.steps[: lab.index(step.id)], 1) if s.id not in done]


def _class_news() -> dict:
    """The instructor's pace and message, if this workshop joined a class (the message shown)."""
    directory = _runner().progress.directory
    if not os.path.exists(os.path.join(directory, "class.json")):
        return {}
    from labs.classroom.client import news

    fresh = news(directory, timeout=1.5)
    if fresh.get("message"):
        said = fresh["message"]
        _display_html(f"<p><b>From the instructor:</b> {html.escape(said)}</p>", f"From the instructor: {said}")
    return fresh


def _paced_out(lab, step) -> bool:  # noqa: ANN001 -- labs.model objects
    """A step past the instructor's pace is not open yet, in a notebook as in the TUI."""
    from labs.classroom.client import not_open_yet

    why = not_open_yet(_class_news(), lab, step)
    if why:
        _display_html(f"<p><b>Not yet:</b> {html.escape(why)}.</p>", f"Not yet: {why}.")
    return bool(why)


def _inline_markdown(text: str) -> str:
    """A hint's `code` and **bold**, as HTML (the rest escaped)."""
    import re

    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


@_said_in_one_line
def view(line: str) -> None:
    """``%view VIEW [CONTAINER] [--step STEP]``: host beside container, the container's rows
    marked; without CONTAINER, the lab's container the step names (as in the TUI)."""
    from engine import observe

    words = line.split()
    step_id = ""
    if "--step" in words[:-1]:
        at = words.index("--step")
        step_id, words = words[at + 1], words[:at] + words[at + 2 :]
    if not words or words[0] not in observe.VIEWS:
        raise LookupError(f"%view VIEW [CONTAINER] [--step STEP], VIEW one of: {', '.join(observe.VIEWS)}")
    step = _lab().step(step_id) if step_id else None
    name, pid = (words[1], _pid(words[1])) if len(words) > 1 else _runner().observed_pid(_lab(), step)
    host_rows = observe.view(words[0], _runner().host_side(_lab(), words[0]))
    container_rows = observe.view(words[0], pid) if pid else []
    _display_html(*_table(words[0], host_rows, container_rows, name, running=bool(pid)))


@_said_in_one_line
def lab_reset(line: str = "") -> None:
    lab = _lab()
    for text in _runner().reset(lab.id):
        print(text)
    _state["lab"] = _runner().start(lab.id, force=True)
    print(f"lab {lab.id} is back at its start")


def _pid(name: str) -> int:
    import engine

    record = engine.get(name)
    if record.state != "running":
        raise LookupError(f"container {name} is {record.state}, not running")
    return record.pid


# --- tables ----------------------------------------------------------------------------------------


class _Rows:
    """``add_columns``/``add_row`` (what the TUI's and the terminal's views fill) into plain rows."""

    def __init__(self) -> None:
        self.header: list[str] = []
        self.rows: list[tuple[list[str], bool]] = []

    def add_columns(self, *labels: str) -> None:
        self.header = list(labels)

    def add_row(self, *cells: object) -> None:
        plain = [getattr(cell, "plain", str(cell)) for cell in cells]
        self.rows.append((plain, plain[0] == "container" or plain[-1] == "own"))  # the container's own rows


def _table(
    view_name: str, host: list[dict], container: list[dict], name: str | None, running: bool = True
) -> tuple[str, str]:
    """(HTML, text) of one view: the same columns and rows as the TUI's (workshop_tui.views)."""
    from workshop_tui.views import FILLERS

    table = _Rows()
    FILLERS[view_name](table, host, container)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join(
        "<tr"
        + (" style='background:#fff8c5'" if marked else "")
        + ">"
        + "".join(f"<td>{html.escape(v)}</td>" for v in values)
        + "</tr>"
        for values, marked in table.rows
    )
    side = (f"container <b>{html.escape(name)}</b>" + ("" if running else ": not running")
            if name else "no container of this lab is running")  # fmt: skip
    markup = f"<p><b>{view_name}</b>: host vs {side} (highlighted rows: the container's own)</p>" \
             f"<table class='lab-view'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"  # fmt: skip
    text = "\n".join(["\t".join(table.header), *("\t".join(values) + ("  *" if marked else "")
                                                   for values, marked in table.rows)])  # fmt: skip
    return markup, text


def load_ipython_extension(ipython) -> None:  # noqa: ANN001 -- IPython's InteractiveShell
    ipython.register_magic_function(lab_start, "line", "lab_start")
    ipython.register_magic_function(shell, "cell", "shell")
    ipython.register_magic_function(solution, "line_cell", "solution")
    ipython.register_magic_function(view, "line", "view")
    ipython.register_magic_function(lab_reset, "line", "lab_reset")
    ipython.push({"check": check})
