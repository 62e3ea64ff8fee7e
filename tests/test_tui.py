"""Pilot tests of the workshop TUI (Textual's run_test): the main flow on the real engine."""

from __future__ import annotations

import asyncio
import os

import pytest
from conftest import ROOT
from textual.geometry import Region
from textual.widgets import Label

from labs.runner import Runner
from workshop_tui.app import WorkshopApp


@pytest.fixture
def runner(tmp_path):
    data = os.path.join(ROOT, "tui-data", tmp_path.name)
    os.environ["WORKSHOP_DATA_DIR"] = data
    os.environ["WORKSHOP_HOME"] = os.path.join(data, "home")
    runner = Runner(data_dir=data)
    yield runner
    runner.reset("uts")


def step_title(screen) -> str:  # noqa: ANN001 -- a LabScreen
    return str(screen.query_one("#step-title").render())


def log_text(screen) -> str:  # noqa: ANN001 -- a LabScreen
    return "\n".join(str(line.text) for line in screen.query_one("#log").lines)


async def settle(app: WorkshopApp, pilot) -> None:  # noqa: ANN001
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def test_home_lists_the_labs_and_locks_by_prerequisite(runner):
    async def scenario() -> None:
        app = WorkshopApp(runner)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one("#labs")
            assert table.row_count == len(runner.labs())
            states = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
            assert "needs namespaces" in states[2]  # uts needs namespaces first
            await pilot.press("down", "down", "enter")  # a locked lab does not open...
            assert type(app.screen).__name__ == "HomeScreen"
            assert "press f to open it anyway" in str(app.screen.query_one("#lab-goal").render())
            assert not app._notifications  # said on the home screen: a toast would sit over the lab
            await pilot.press("f")  # ...unless asked
            await settle(app, pilot)
            assert type(app.screen).__name__ == "LabScreen"
            app.pop_screen()
            await settle(app, pilot)
            assert "press f" not in str(app.screen.query_one("#lab-goal").render())
            await pilot.press("enter")  # opened once, it opens as any other
            await settle(app, pilot)
            assert type(app.screen).__name__ == "LabScreen"

    asyncio.run(scenario())


def test_home_and_end_keys_and_a_reset_clears_the_log(runner):
    async def scenario() -> None:
        app = WorkshopApp(runner)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one("#labs")
            await pilot.press("end")
            assert table.cursor_row == table.row_count - 1
            await pilot.press("home")
            assert table.cursor_row == 0
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("c")  # not done: a ✗ in the log
            await settle(app, pilot)
            assert "✗" in log_text(app.screen)
            await pilot.press("x", "y")  # reset, confirmed
            await settle(app, pilot)
            assert "✗" not in log_text(app.screen) and "starts again" in log_text(app.screen)

    asyncio.run(scenario())


def test_solve_and_check_a_step_then_resume_after_restart(runner):
    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            screen = app.screen
            assert "step 1/3" in step_title(screen)
            await pilot.press("c")  # not done yet
            await settle(app, pilot)
            assert "✗" in log_text(screen)
            await pilot.press("s", "y")  # the solution, confirmed
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            assert "step 2/3" in step_title(screen)
            # the namespaces view shows the container's own UTS namespace
            table = screen.query_one("#table-namespaces")
            rows = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[3]) for i in range(table.row_count)}
            assert rows["uts"] == "own" and rows["user"] == "shared"
        # progress was saved: a new app (a restart) resumes at step 2
        assert Runner(data_dir=runner.progress.directory).progress.lab("uts")["done"] == ["own-hostname"]
        app = WorkshopApp(Runner(data_dir=runner.progress.directory))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("r")
            await settle(app, pilot)
            assert "step 2/3" in step_title(app.screen)

    asyncio.run(scenario())


def test_a_step_checked_in_another_window_shows_here_and_is_kept(runner):
    """`workshop check` in a terminal while the TUI is open: the lab screen goes on to the next
    step (at its next refresh), the home screen shows the progress, and the TUI's own later
    changes (a hint) do not write its older copy over it."""

    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            screen = app.screen
            assert "step 1/3" in step_title(screen)
            screen.class_news = {"pace": "uts/own-hostname"}  # an instructor holds the class at step 1
            cli = Runner(data_dir=runner.progress.directory)  # `workshop solve` + `workshop check`
            assert all(r.returncode == 0 for r in cli.solve("uts", "own-hostname"))
            assert cli.check("uts", "own-hostname").passed
            screen.refresh_views()  # what its 2 s timer calls
            await pilot.pause(0.3)  # (not settle: the views' refreshes cancel each other's workers)
            await settle(app, pilot)
            assert "(checked in another window)" in log_text(screen)
            assert "step 1/3" in step_title(screen)  # paced: it stays
            screen.class_news = {}  # unlocked
            await pilot.press("n")
            await pilot.pause(0.3)
            await settle(app, pilot)
            assert "step 2/3" in step_title(screen)
            assert all(r.returncode == 0 for r in cli.solve("uts", "rename-inside"))
            assert cli.check("uts", "rename-inside").passed
            screen.refresh_views()  # not paced now: it goes on to the next step by itself
            await pilot.pause(0.3)
            await settle(app, pilot)
            assert "step 3/3" in step_title(screen)
            assert log_text(screen).count("(checked in another window)") == 2
            await pilot.press("h")  # a change of the TUI's own
            await settle(app, pilot)
            await pilot.press("escape")  # to the labs (the lab screen's workers are cancelled)
            await pilot.pause()
            home, uts_state = app.screen, lambda: str(app.screen.query_one("#labs").get_row_at(2)[1])
            assert "▶" in uts_state() and "2/3 steps" in uts_state()  # the lab at hand, opened early
            cli.reset("uts")  # `workshop reset uts` in the terminal
            home.follow_progress()  # what its 2 s timer calls
            assert "▶" not in uts_state()
            with Runner(data_dir=runner.progress.directory).progress.change() as other:  # a notebook, say
                other["labs"]["uts"] = {"done": ["own-hostname"], "hints": {}, "started": 1.0, "finished": 2.0}
            home.follow_progress()
            assert "✓ done" in uts_state()
        assert Runner(data_dir=runner.progress.directory).progress.lab("uts")["done"] == ["own-hostname"]

    asyncio.run(scenario())


def test_without_a_real_terminal_the_shell_key_opens_a_command_line(runner):
    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("s", "y")  # start the lab's container
            await settle(app, pilot)
            await pilot.press("e")  # suspend() is impossible under run_test: a command line instead
            line = app.screen.query_one("#command-line")
            assert line.display and line.has_focus and "uts-box" in line.placeholder
            await pilot.press(*"hostname", "enter")
            await settle(app, pilot)
            log = log_text(app.screen)
            assert "minibox exec uts-box sh -c hostname" in log and "\nlearner" in log
            await pilot.press("escape")
            assert not line.display

    asyncio.run(scenario())


@pytest.mark.parametrize("lab_id", [lab.id for lab in Runner(data_dir="/nonexistent").labs()])
def test_every_lab_can_be_done_in_the_tui_with_its_own_run_blocks(runner, lab_id):
    """Press r for each command the step's text shows, then c: every step must pass that way."""

    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab=lab_id)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            screen = app.screen
            for step in screen.lab.steps:
                assert screen.step.id == step.id
                for _ in step.commands:
                    await pilot.press("r")
                    await settle(app, pilot)
                await pilot.press("c")
                await settle(app, pilot)
                log = log_text(screen)
                assert step.id in runner.progress.lab(lab_id)["done"], f"{lab_id}/{step.id}:\n{log[-1500:]}"
            assert runner.finished(lab_id)
            assert "done ✓" in step_title(screen)

    try:
        asyncio.run(scenario())
    finally:
        runner.reset(lab_id, remove_workdir=True)


def test_y_copies_the_next_command(runner):
    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("y")
            assert app.clipboard.startswith("minibox run -d --name uts-box -h learner")

    asyncio.run(scenario())


def test_a_command_longer_than_the_pane_is_shown_whole_each_line_with_a_prompt(runner):
    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            fence = app.screen.query_one("MarkdownFence")
            code = fence.query_one(Label)
            assert fence.max_scroll_x == 0 and code.size.width <= fence.size.width  # nothing off to the right
            lines = [line.text.strip() for line in code.render_lines(Region(0, 0, *code.size))]
            assert len([line for line in lines if line]) > 3  # three commands, the first one wrapped
            words = " ".join(" ".join(lines).split())
            assert "$ minibox run -d --name uts-box -h learner --cap-add SYS_ADMIN busybox sleep 3600" in words
            assert "$ minibox exec uts-box hostname" in words

    asyncio.run(scenario())


def test_checking_a_later_step_out_of_order_does_not_end_the_lab(runner):
    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("s", "y")  # step 1's solution, not checked
            await settle(app, pilot)
            await pilot.press("n", "s", "y")  # look at step 2 and do it
            await settle(app, pilot)
            await pilot.press("c")
            await settle(app, pilot)
            title = step_title(app.screen)
            assert "step 2/3" in title and "done ✓" not in title.split(":")[0]
            assert runner.progress.lab("uts")["done"] == ["rename-inside"] and not runner.finished("uts")

    asyncio.run(scenario())


def test_network_diagram_draws_bridges_ports_and_the_container_inside():
    from workshop_tui.diagram import network_diagram

    def link(name, kind, master=None):
        return {"kind": "link", "name": name, "type": kind, "master": master, "flags": "UP", "mac": "x"}

    host = [link("lo", "loopback"), link("minibox0", "bridge"), link("mb-aaa", "veth", "minibox0"),
            link("mb-bbb", "veth", "minibox0"), link("mb-uplink", "veth"),
            {"kind": "address", "name": "minibox0", "address": "172.29.0.1/16"},
            {"kind": "route", "name": "mb-uplink", "destination": "default", "gateway": "192.0.2.1"}]  # fmt: skip
    inside = [{"kind": "address", "name": "eth0", "address": "172.29.0.2/16"},
              {"kind": "route", "name": "eth0", "destination": "default", "gateway": "172.29.0.1"}]  # fmt: skip
    text = network_diagram(host, inside, {"mb-aaa": "web", "mb-bbb": "client"}, "web").plain
    assert "minibox0  bridge  172.29.0.1/16" in text
    assert "├─ mb-aaa ⇄ eth0 of web  ← this container" in text and "└─ mb-bbb ⇄ eth0 of client" in text
    assert "host default route: via 192.0.2.1 dev mb-uplink" in text
    assert "inside web: eth0 172.29.0.2/16 → default via 172.29.0.1" in text
    empty = network_diagram([link("lo", "loopback")], [], {}, None).plain
    assert "no bridge on the host side yet" in empty


def test_view_cells_are_shown_as_they_are_never_as_markup_or_emoji():
    """A MAC address with ``:cd:`` in it once showed an emoji; ``[b]`` in a command, bold text."""
    from textual.app import App
    from textual.widgets import DataTable
    from textual.widgets._data_table import default_cell_formatter

    from workshop_tui.views import FILLERS

    host = [{"kind": "link", "name": "minibox0", "type": "bridge", "flags": "UP", "mac": "fa:ac:32:cd:a2:83"}]
    container = [{"pid": 1, "host_pid": 4242, "command": "sh -c 'echo [b]x[/b] :cd:'"}]

    class Tables(App):
        def compose(self):
            yield DataTable(id="network")
            yield DataTable(id="processes")

    async def shown() -> list[str]:
        app = Tables()
        async with app.run_test():
            network, processes = app.query_one("#network", DataTable), app.query_one("#processes", DataTable)
            FILLERS["network"](network, host, [])
            FILLERS["processes"](processes, [], container)
            return [default_cell_formatter(c).plain for t in (network, processes) for c in t.get_row_at(0)]

    cells = asyncio.run(shown())
    assert "bridge UP fa:ac:32:cd:a2:83" in cells
    assert "sh -c 'echo [b]x[/b] :cd:'" in cells


def filled(view: str, container: list[dict]) -> list[list[str]]:
    """A view's filler run on a plain table: its rows as text."""
    from workshop_tui.views import FILLERS

    class Rows:
        def __init__(self) -> None:
            self.rows: list[list[str]] = []

        def add_columns(self, *labels: str) -> None: ...

        def add_row(self, *cells: object) -> None:
            self.rows.append([str(cell) for cell in cells])

    table = Rows()
    FILLERS[view](table, [], container)
    return table.rows


def test_the_cgroups_view_shows_every_line_of_a_stat_file_and_reads_the_values():
    """The TUI showed cpu.stat's first line only (nr_periods): lab 09's nr_throttled was not there;
    and "no limit" was 9223372036854771712, the group's 80 characters on every row."""

    group = "/minibox/" + "ab" * 32
    container = [
        {"file": "memory.limit_in_bytes", "value": "9223372036854771712", "group": group},
        {"file": "memory.usage_in_bytes", "value": "1048576", "group": group},
        {"file": "cpu.cfs_quota_us", "value": "20000", "group": group},
        {"file": "cpu.cfs_period_us", "value": "100000", "group": group},
        {"file": "cpu.stat", "value": "nr_periods 12\nnr_throttled 9\nthrottled_time 5", "group": group},
        {"file": "cpu.max", "value": "max 100000", "group": group},
    ]

    table = filled("cgroups", container)
    rows = {row[0]: row[1:] for row in table}
    assert rows["cgroup"] == ["/minibox/" + "ab" * 6 + "…", ""] and sum(group in str(r) for r in table) == 0
    assert rows["memory.limit_in_bytes"][1] == "no limit" and rows["memory.usage_in_bytes"][1] == "1.0 MiB"
    assert rows["cpu.cfs_quota_us"][1].startswith("0.2 CPU") and rows["cpu.max"][1] == "no limit"
    assert rows["cpu.stat nr_throttled"] == ["9", "of those, held back at its quota"]


def test_r_after_the_last_command_runs_it_again(runner):
    """A learner who fixed a mistake by hand, or who is asked to run the last `cat` again to watch
    a counter grow, pressed r and got "No more commands in this step"."""

    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            screen = app.screen
            (block,) = screen.step.commands
            for _ in range(2):
                await pilot.press("r")
                await settle(app, pilot)
            start = "$ " + runner.render(screen.lab, block)[:30]  # (the log wraps long lines)
            assert log_text(screen).count(start) == 2, log_text(screen)
            assert "runs the last command again" in str(screen.query_one("#next-command").render())

    try:
        asyncio.run(scenario())
    finally:
        runner.reset("uts", remove_workdir=True)


def test_leaving_the_tui_names_the_labs_containers_still_there(runner, capsys):
    """`q` left 12 containers running without a word."""
    from workshop_tui.cli import _say_what_is_still_running

    _say_what_is_still_running(runner)
    assert capsys.readouterr().out == ""
    lab = runner.start("uts", force=True)
    try:
        runner.run_command(lab, "minibox run -d --name uts-box busybox sleep 60", check=True)
        _say_what_is_still_running(runner)
        said = capsys.readouterr().out
        assert "still there: uts-box." in said and "workshop clean --all" in said, said
    finally:
        runner.reset("uts", remove_workdir=True)


def test_the_processes_view_names_minibox_init_as_ps_does():
    """Lab 04 says PID 1 is minibox-init; the view showed the Python command line it runs in."""

    container = [
        {"pid": 1, "host_pid": 10, "name": "minibox-init", "command": "/usr/bin/python3 /x/.venv/bin/minibox run"},
        {"pid": 2, "host_pid": 11, "name": "sleep", "command": "sleep 3600"},
    ]
    table = filled("processes", container)
    assert table[0][3].startswith("minibox-init (/usr/bin/python3") and table[1][3] == "sleep 3600"


def test_e_on_a_stopped_container_says_so_instead_of_exec_into_it(runner):
    """The views may name the step's own container when it has stopped; `e` then ran
    `minibox exec -it` into it, and the terminal flashed an error."""

    async def scenario() -> None:
        app = WorkshopApp(runner, open_lab="uts")
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            runner.run_command(app.screen.lab, "minibox run --name uts-box busybox true", check=True)
            await pilot.press("e")
            await settle(app, pilot)
            said = [n.message for n in app._notifications]
            assert "uts-box is not running." in said, said

    try:
        asyncio.run(scenario())
    finally:
        runner.reset("uts", remove_workdir=True)

