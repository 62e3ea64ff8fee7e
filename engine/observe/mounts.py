"""Mount view: ``/proc/PID/mountinfo`` as data, with each mount's propagation.

The optional fields of a mountinfo line say how mount events travel: ``shared:N`` (events spread
to and from peer group N), ``master:N`` (received from N only, a slave), nothing (private).
"""

from __future__ import annotations


def propagation(optional_fields: list[str]) -> str:
    kinds = [f.split(":")[0] for f in optional_fields]
    if "shared" in kinds and "master" in kinds:
        return "shared+slave"
    if "shared" in kinds:
        return "shared"
    if "master" in kinds:
        return "slave"
    if "unbindable" in kinds:
        return "unbindable"
    return "private"


def mount_rows(pid: int | str) -> list[dict]:
    rows = []
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return []
    for line in lines:
        before, _, after = line.partition(" - ")
        fields = before.split()
        fstype, source, super_options = (after.split() + ["", "", ""])[:3]
        rows.append({
            "id": int(fields[0]),
            "parent": int(fields[1]),
            "root": fields[3],
            "target": fields[4],
            "options": fields[5],
            "propagation": propagation(fields[6:]),
            "fstype": fstype,
            "source": source,
            "super_options": super_options,
        })  # fmt: skip
    return rows
