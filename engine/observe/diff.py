"""Compare two sides of a view: which rows are the same, which differ, which exist on one side only."""

from __future__ import annotations


def diff_rows(host: list[dict], container: list[dict], key: str, compare: str) -> list[dict]:
    """Pair rows by ``key`` and mark each pair: ``same``, ``differs`` or ``host-only``/``container-only``.

    E.g. for namespaces, key="type", compare="inode": a row ``differs`` exactly when the container
    has its own namespace of that type.
    """
    theirs = {row[key]: row for row in container}
    out = []
    for row in host:
        other = theirs.pop(row[key], None)
        if other is None:
            status = "host-only"
        else:
            status = "same" if row.get(compare) == other.get(compare) else "differs"
        out.append({"key": row[key], "status": status, "host": row, "container": other})
    out += [{"key": k, "status": "container-only", "host": None, "container": r} for k, r in theirs.items()]
    return out
