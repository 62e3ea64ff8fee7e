"""Garbage collection: remove what a crashed or killed minibox left behind.

A ``kill -9`` of minibox (or a power cut) can leave: a record that says ``running`` whose init is
gone, a cgroup directory with no record, a mount under the state directory (only possible with
``--mntns host``), a container directory (on disk or under /run) without a record, a ``--rm``
container not yet removed, a network address leased to a container that is gone, half a layer or
blob of an interrupted import.
``gc`` also empties ``lib/trash/`` (what ``--rm`` containers that wrote nothing leave for the next
start to delete: not a leftover, see ``state.empty_trash``).
``gc`` finds each by looking at the kernel's own lists (``/proc/self/mountinfo``, the cgroup
tree) and at the records, and cleans it. Running containers are left alone, and so are those
``minibox create`` made that wait for ``minibox start``. It holds the state lock throughout:
``create`` makes a container's directories and record under the same lock, so gc never sees
half of one; its cgroup comes later, at ``start``, by when its record is there to claim it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from engine import cgroups, state, syscalls
from engine.errors import SyscallError
from engine.state import CREATED, RUNNING, STOPPED, Lock, Paths, Record, mounts_under, remove_tree


def collect(paths: Paths | None = None) -> list[str]:
    """Clean up; return one line per thing removed or repaired."""
    from engine.container import finalize

    paths = paths or Paths()
    with Lock(paths):  # `create` makes a container's directories and record under this lock too
        return _collect(paths, finalize)


def _collect(paths: Paths, finalize: Callable[[Record, int | None], None]) -> list[str]:
    done: list[str] = []
    records = state.all_records(paths)
    known = {r.id for r in records}
    for record in records:
        supervisor_alive = state.process_alive(
            record.data.get("supervisor_pid"), record.data.get("supervisor_start_time")
        )
        waits_for_start = record.data.get("awaiting_start") and record.data["state"] == CREATED  # `minibox create`
        if record.data["state"] != STOPPED and record.state != RUNNING and not supervisor_alive and not waits_for_start:
            finalize(record, None)
            done.append(f"container {record.name}: marked stopped, cgroup removed (its supervisor had died)")
        elif record.data["state"] == STOPPED and record.data["spec"].get("auto_remove"):
            record.remove_directories()
            done.append(f"container {record.name}: removed (--rm)")
    drv = cgroups.driver()
    parent = state.prefix()
    for child in drv.children(parent):
        if child not in known:
            group = f"{parent}/{child}"
            drv.kill_all(group)
            drv.remove(group)
            done.append(f"cgroup {group}: removed (no container)")
    running = [d + "/" for r in records if r.state == RUNNING for d in (r.dir(), r.runtime_dir())]
    for mount_point in reversed(mounts_under(paths.lib, paths.runtime)):
        if any(mount_point.startswith(d) for d in running):  # a running --mntns host container's
            continue
        try:  # (the kernel's mount table says it is a mount: os.path.ismount misses bind mounts)
            syscalls.umount2(mount_point, syscalls.MNT_DETACH)
            done.append(f"mount {mount_point}: unmounted")
        except SyscallError:  # already gone: another gc, or the container's own cleanup, won
            pass
    for base in (paths.containers, paths.runtime):
        try:
            entries = os.listdir(base)
        except FileNotFoundError:
            entries = []
        for entry in entries:
            if entry not in known and not state.has_record(paths, entry):
                remove_tree(os.path.join(base, entry))
                done.append(f"directory {os.path.join(base, entry)}: removed (no record)")
    drv.remove_if_empty(parent)
    # --rm containers' emptied layers: deleted as usual (not leftovers), unless that fails
    for path, why in state.empty_trash(paths, wait=True):
        done.append(f"trash {path}: could not delete it ({why}): delete it by hand")
    from engine.images.store import Store

    for leftover in Store(paths).leftovers():
        remove_tree(leftover) if os.path.isdir(leftover) else os.unlink(leftover)
        done.append(f"image store: {leftover} removed (an interrupted import)")
    if os.path.isdir(os.path.join(paths.lib, "networks")):  # only pay pyroute2's import when used
        from engine import network

        done += network.collect(paths)
    return done
