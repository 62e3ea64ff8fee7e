"""Process view: the processes in PID's PID namespace, numbered both ways.

``/proc/N/status`` has a line ``NSpid: 4711 1``: the process's PID in each PID namespace it is
in, from the host's outwards to its own. The last number is what ``ps`` inside the container
shows; the first is what the host's ``ps`` shows.
"""

from __future__ import annotations

import os


def _status(pid: str) -> dict[str, str]:
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def process_rows(pid: int | str) -> list[dict]:
    """Every process whose PID namespace is PID's (for the host's shell: all of them)."""
    try:
        target = os.stat(f"/proc/{pid}/ns/pid").st_ino
    except FileNotFoundError:
        return []
    rows = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/pid").st_ino != target:
                continue
            status = _status(entry)
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # exited while we looked
        ns_pids = status.get("NSpid", entry).split()
        rows.append({
            "host_pid": int(entry),
            "pid": int(ns_pids[-1]),
            "ppid": int(status.get("PPid", 0)),
            "uid": int(status.get("Uid", "0").split()[0]),
            "name": status.get("Name", ""),
            "command": command or f"[{status.get('Name', '')}]",
        })  # fmt: skip
    return sorted(rows, key=lambda r: r["pid"])
