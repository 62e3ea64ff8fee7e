"""The side-by-side views as tables: host vs container, from ``engine.observe``'s rows.

One filler per view adds columns and rows to any table with ``add_columns`` and ``add_row``: the
TUI's DataTable, or (``workshop view``) a rich Table printed in the terminal. Pure rendering.
"""

from __future__ import annotations

import os
from typing import Protocol

from rich.text import Text

from engine.observe import diff_rows


class Table(Protocol):
    def add_columns(self, *labels: str) -> object: ...

    def add_row(self, *cells: Text) -> object: ...


def _add_row(table: Table, *cells: object) -> None:
    """A row of plain text. A bare string in a DataTable is read as markup, emoji codes included:
    a MAC address such as fa:ac:32:cd:a2:83 would show an emoji for ``:cd:``."""
    table.add_row(*(cell if isinstance(cell, Text) else Text(str(cell)) for cell in cells))


def _fill_namespaces(table: Table, host: list[dict], container: list[dict]) -> None:
    table.add_columns("namespace", "host", "container", "")
    for row in diff_rows(host, container, key="type", compare="inode"):
        own = row["status"] == "differs"
        style = "bold yellow" if own else ""
        mark = {"differs": "own", "same": "shared"}.get(row["status"], "")
        theirs = row["container"]["inode"] if row["container"] else "-"
        _add_row(table, Text(row["key"], style), str(row["host"]["inode"]), str(theirs), Text(mark, style))


def _command(row: dict) -> str:
    """A Python process that named itself (``--init``'s ``minibox-init``): its name first, as
    ``ps -o comm`` shows it; its command line is the interpreter's."""
    program = os.path.basename(row["command"].split(" ", 1)[0])
    if program.startswith("python") and row.get("name") and row["name"] != program:
        return f"{row['name']} ({row['command']})"
    return row["command"]


def _fill_processes(table: Table, host: list[dict], container: list[dict]) -> None:
    table.add_columns("side", "PID", "host PID", "command")
    for row in container:
        _add_row(table, Text("container", "yellow"), str(row["pid"]), str(row["host_pid"]), _command(row)[:60])
    _add_row(table, Text("host", "dim"), "", "", Text(f"{len(host)} processes in the host's PID namespace", "dim"))


def _fill_cgroups(table: Table, host: list[dict], container: list[dict]) -> None:
    """One row per value: a file of several ("cpu.stat": nr_throttled...) gives one per line, and
    each value is read for the learner (bytes in MiB, "max" or a huge number as no limit)."""
    table.add_columns("file", "container", "which means")
    values = {row["file"]: row["value"] for row in container}
    group = None
    for row in container:
        if row["group"] != group:  # the same group in every hierarchy, as a rule: said once
            group = row["group"]
            _add_row(table, Text("cgroup", "dim"), Text(_short_group(group), "dim"), "")
        if row["value"] is None:  # a file this kernel does not have (memory.peak before 5.19)
            _add_row(table, row["file"], Text("-", "dim"), Text("not on this kernel", "dim"))
            continue
        lines = str(row["value"]).splitlines() or [""]
        if len(lines) > 1 or (lines and " " in lines[0] and row["file"].endswith((".stat", ".events"))):
            for line in lines:
                key, _, value = line.partition(" ")
                _add_row(table, f"{row['file']} {key}", value, STAT_MEANINGS.get(key, ""))
        else:
            _add_row(table, row["file"], lines[0], _meaning(row["file"], lines[0], values))
    if not container:
        _add_row(table, Text("(start a container to see its cgroup files)", "dim"), "", "")


def _cpus(quota: int, period: int) -> str:
    return f"{quota / period:g} CPU: {quota} µs in each {period} µs"


def _short_group(group: str) -> str:
    """/minibox/4709f08cdc14aff7... (64 hex digits) -> /minibox/4709f08cdc14…"""
    head, _, last = group.rpartition("/")
    return f"{head}/{last[:12]}…" if len(last) == 64 else group


STAT_MEANINGS = {  # the lines of cpu.stat and memory.events that the cgroups lab reads
    "nr_periods": "periods in which it had work",
    "nr_throttled": "of those, held back at its quota",
    "throttled_time": "ns held back",
    "throttled_usec": "µs held back",
    "oom_kill": "processes the OOM killer killed",
}
NO_LIMIT = 1 << 62  # v1 writes "no memory limit" as the largest page multiple of a 64-bit number


def _meaning(file: str, value: str, values: dict[str, str]) -> str:
    if value == "max" or (value.isdigit() and int(value) >= NO_LIMIT) or (file == "cpu.cfs_quota_us" and value == "-1"):
        return "no limit"
    if file.startswith("memory.") and value.isdigit() and not file.endswith("failcnt"):
        return f"{int(value) / (1 << 20):.1f} MiB"
    if file == "cpu.cfs_quota_us" and value.lstrip("-").isdigit() and values.get("cpu.cfs_period_us", "").isdigit():
        return _cpus(int(value), int(values["cpu.cfs_period_us"]))
    if file == "cpu.max" and " " in value:
        quota, period = value.split()
        return "no limit" if quota == "max" else _cpus(int(quota), int(period))
    if file == "cpuacct.usage" and value.isdigit():
        return f"{int(value) / 1e9:.2f} s of CPU used"
    return ""


def _layers(row: dict) -> str:
    """An overlay's directories (lowerdir, upperdir, workdir): what labs 10 and 11 are about."""
    if row["fstype"] != "overlay":
        return ""
    return " ".join(o for o in row.get("super_options", "").split(",") if o.split("=")[0] in _OVERLAY_DIRS)


_OVERLAY_DIRS = ("lowerdir", "upperdir", "workdir")


def _fill_mounts(table: Table, host: list[dict], container: list[dict]) -> None:
    table.add_columns("side", "mount point", "type", "overlay layers", "propagation", "source")
    for side, rows, style in (("container", container, "yellow"), ("host", list(reversed(host[-40:])), "dim")):
        for row in rows:  # the host's newest first: what was just mounted is at the top
            _add_row(table, Text(side, style), row["target"], row["fstype"], _layers(row), row["propagation"],
                          row["source"])  # fmt: skip


def _fill_network(table: Table, host: list[dict], container: list[dict]) -> None:
    table.add_columns("side", "kind", "name", "detail")
    for side, rows, style in (("container", container, "yellow"), ("host", host, "dim")):
        for row in rows:
            if row["kind"] == "route":
                via = f" via {row['gateway']}" if row.get("gateway") else ""
                detail = f"{row['destination']}{via}"
            elif row["kind"] == "link":
                plugged = f" in {row['master']}" if row.get("master") else ""
                detail = f"{row.get('type', '')} {row.get('flags', '')} {row.get('mac') or ''}{plugged}"
            else:
                detail = row.get("address")
            _add_row(table, Text(side, style), row["kind"], str(row.get("name")), str(detail))


FILLERS = {"namespaces": _fill_namespaces, "processes": _fill_processes, "cgroups": _fill_cgroups,
           "mounts": _fill_mounts, "network": _fill_network}  # fmt: skip


class _Printed:
    """``add_columns``/``add_row`` onto a rich Table, for the terminal."""

    def __init__(self) -> None:
        from rich.table import Table as RichTable

        self.table = RichTable()

    def add_columns(self, *labels: str) -> None:
        for label in labels:
            self.table.add_column(label)

    def add_row(self, *cells: Text) -> None:
        self.table.add_row(*cells)


def print_views(runner, lab, step, views: list[str]) -> None:  # noqa: ANN001 -- labs objects
    """``workshop view``: each view of the lab's container (the step's first) against the host."""
    from rich.console import Console

    from engine.observe import view as observe

    console = Console()
    name, pid = runner.observed_pid(lab, step)
    sandbox = runner.sandbox(lab)
    side = (f"container {name} (pid {pid})" if pid else f"container {name}: not running"
            if name else "no container of this lab is running")  # fmt: skip
    for which in views:
        host = observe(which, runner.host_side(lab, which))
        container = observe(which, pid) if pid else []
        where = f"the practice namespace {sandbox}" if sandbox and which == "network" else f"host (pid {os.getpid()})"
        printed = _Printed()
        FILLERS[which](printed, host, container)
        console.print(Text(f"{which}: {where}  vs  {side}", style="bold"), soft_wrap=True)  # a title never wraps
        console.print(printed.table)
        if which == "network":
            from workshop_tui.diagram import network_diagram

            console.print(network_diagram(host, container, veth_owners(), name))


def veth_owners() -> dict[str, str]:
    """Host-side veth name -> container name, from the engine's records."""
    import engine

    owners = {}
    for record in engine.list_containers():
        veth = (record.data.get("network") or {}).get("veth")
        if veth:
            owners[veth] = record.name
    return owners
