"""Observers: read-only snapshots of what the kernel says about a process, as plain data.

Each observer reads the kernel's own files for one process and returns rows (lists of dicts),
so a front end (the TUI, a notebook, ``workshop check``) only has to render or compare them:

- ``namespaces``  ``/proc/PID/ns/*``: which namespace (inode) the process is in, per type
- ``processes``   ``/proc/*/status``: the processes of the PID's PID namespace, with each one's
                  PID as the host sees it and as the container sees it (``NSpid``)
- ``cgroups``     the process's cgroup paths and, for a container, its limit and usage files
- ``mounts``      ``/proc/PID/mountinfo``: the mount table as the process sees it, with propagation
- ``network``     links, addresses and routes in the process's network namespace (netlink)

``snapshot(host_pid, container_pid)`` takes every view for both sides; ``diff`` says which rows
differ. Observers never change anything.
"""

from __future__ import annotations

from engine.observe.diff import diff_rows

VIEWS = ("namespaces", "processes", "cgroups", "mounts", "network")


def view(name: str, pid: int | str) -> list[dict]:
    """One view of one process, by name (see ``VIEWS``)."""
    if name == "namespaces":
        from engine.observe.namespaces import namespace_rows as read
    elif name == "processes":
        from engine.observe.processes import process_rows as read
    elif name == "cgroups":
        from engine.observe.cgroups import cgroup_rows as read
    elif name == "mounts":
        from engine.observe.mounts import mount_rows as read
    elif name == "network":
        from engine.observe.network import network_rows as read
    else:
        raise ValueError(f"unknown observer {name!r}; known: {', '.join(VIEWS)}")
    return read(pid)


def snapshot(host_pid: int | str, container_pid: int | str, views: tuple[str, ...] = VIEWS) -> dict:
    """Every asked-for view of both processes: ``{view: {"host": rows, "container": rows}}``."""
    return {name: {"host": view(name, host_pid), "container": view(name, container_pid)} for name in views}


__all__ = ["VIEWS", "diff_rows", "snapshot", "view"]
