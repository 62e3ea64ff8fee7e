"""Namespace view: ``ls -l /proc/PID/ns`` as data, one row per namespace type."""

from __future__ import annotations

import os

from engine.namespaces import NAMESPACES


def namespace_rows(pid: int | str) -> list[dict]:
    rows = []
    for ns in NAMESPACES:
        path = f"/proc/{pid}/ns/{ns.proc_name}"
        try:
            link = os.readlink(path)  # e.g. "uts:[4026532178]"
            inode = os.stat(path).st_ino
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            link, inode = "", None
        rows.append({"type": ns.name, "inode": inode, "link": link})
    return rows
