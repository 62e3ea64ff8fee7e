"""Resolve ``-u USER[:GROUP]`` against the image's own /etc/passwd and /etc/group (not the host's)."""

from __future__ import annotations

import os

from engine.errors import BadValue


def _entries(rootfs: object, name: str) -> list[list[str]]:
    """Lines of /etc/NAME split at ":"; ``rootfs`` is a directory or an image (its layers merged)."""
    if isinstance(rootfs, str):
        try:
            with open(os.path.join(rootfs, "etc", name)) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
    else:
        text = rootfs.read_text(f"etc/{name}") or ""
    return [line.split(":") for line in text.splitlines() if line.strip() and not line.startswith("#")]


def resolve(rootfs: object, user: str) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary gids) for ``user``: a name or number, optionally ``:group``.

    Supplementary groups are those /etc/group lists the user name in (none for a bare UID).
    """
    if not user:
        return 0, 0, []
    name, _, group = user.partition(":")
    passwd = _entries(rootfs, "passwd")
    groups: list[int] = []
    if name.isdigit():
        uid = int(name)
        gid = next((int(e[3]) for e in passwd if len(e) > 3 and e[2] == name), uid)
    else:
        entry = next((e for e in passwd if e[0] == name and len(e) > 3), None)
        if entry is None:
            raise BadValue("-u/--user", user, "a user in the image's /etc/passwd, or a numeric UID[:GID]")
        uid, gid = int(entry[2]), int(entry[3])
        groups = [int(g[2]) for g in _entries(rootfs, "group") if len(g) > 3 and name in g[3].split(",")]
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            entry = next((e for e in _entries(rootfs, "group") if e[0] == group and len(e) > 2), None)
            if entry is None:
                raise BadValue("-u/--user", user, "a group in the image's /etc/group, or a numeric GID")
            gid = int(entry[2])
    return uid, gid, groups
