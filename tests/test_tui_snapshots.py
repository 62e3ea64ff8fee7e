"""Snapshots of the screens that do not depend on the machine (PIDs and inode numbers do), at
80x24 and 120x40. After a deliberate change: `pytest tests/test_tui_snapshots.py --snapshot-update`,
then look at the SVGs in tests/__snapshots__/ before committing them."""

from __future__ import annotations

import os

import pytest

APP = os.path.join(os.path.dirname(__file__), "snapshot_apps", "home.py")


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_home(snap_compare, size):
    assert snap_compare(APP, terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_home_with_the_second_lab_highlighted(snap_compare, size):
    assert snap_compare(APP, press=["down"], terminal_size=size)


def test_help(snap_compare):
    assert snap_compare(APP, press=["question_mark"], terminal_size=(80, 24))


LAB = os.path.join(os.path.dirname(__file__), "snapshot_apps", "lab_step.py")


async def views_filled(pilot) -> None:
    """Let the views' worker threads finish before the picture is taken: the views are filled
    more than once at start (mount, then the tab's activation), and a picture taken between a
    clear and a refill has narrow columns (seen on a loaded machine)."""
    table = pilot.app.screen.query_one("#table-namespaces")
    for _ in range(100):
        await pilot.pause(0.05)
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
        if table.row_count and not any(w.is_running for w in pilot.app.workers):
            break
    # The step's text (the lab's introduction, then step 1) is laid out in the background too: a
    # picture taken before it settles has another scrollbar (seen on a loaded machine).
    body, last = pilot.app.screen.query_one("#step-body"), None
    for _ in range(60):
        await pilot.pause(0.05)
        now = (body.virtual_size, body.parent.virtual_size, len(body.children))
        if now == last:
            break
        last = now
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_lab_step(snap_compare, size):
    assert snap_compare(LAB, terminal_size=size, run_before=views_filled)
