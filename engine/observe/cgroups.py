"""cgroup view: which cgroups a process is in and, for each, the limit and usage files minibox uses.

``/proc/PID/cgroup`` lists ``ID:CONTROLLERS:PATH`` per hierarchy (v1) or a single ``0::PATH``
(v2). The files read are the ones the labs teach, under the names this machine's layout uses:
v1 ``memory.limit_in_bytes`` / ``cpu.cfs_quota_us``, v2 ``memory.max`` / ``cpu.max``.
"""

from __future__ import annotations

import os

from engine import cgroups

V1_FILES = {
    "memory": ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt"),
    "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.stat"),
    "cpuacct": ("cpuacct.usage",),
    "pids": ("pids.max", "pids.current"),
}
V2_FILES = ("memory.max", "memory.current", "memory.peak", "memory.events", "cpu.max", "cpu.stat",
            "pids.max", "pids.current")  # fmt: skip


def membership(pid: int | str) -> dict[str, str]:
    """hierarchy -> path, from /proc/PID/cgroup (``unified`` for the v2 line)."""
    out = {}
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                out[controllers or "unified"] = path
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def cgroup_rows(pid: int | str) -> list[dict]:
    """One row per interesting cgroup file of the process's own groups, with its current value."""
    rows = []
    groups = membership(pid)
    if cgroups.driver().version == "v2":
        path = groups.get("unified", "/")
        for name in V2_FILES:
            rows.append(_row(name, os.path.join(cgroups.CGROUP_ROOT, path.lstrip("/"), name), path))
        return rows
    mounts = getattr(cgroups.driver(), "mounts", {})
    for controller, names in V1_FILES.items():
        group = next((p for c, p in groups.items() if controller in c.split(",")), None)
        if group is None or controller not in mounts:
            continue
        for name in names:
            rows.append(_row(name, os.path.join(mounts[controller], group.lstrip("/"), name), group))
    return rows


def _row(name: str, path: str, group: str) -> dict:
    value = cgroups.read(path)
    return {"file": name, "group": group, "path": path, "value": value}
