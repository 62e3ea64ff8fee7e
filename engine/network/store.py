"""Network records on disk: one JSON file per network, with its address leases.

``/var/lib/minibox/networks/NAME.json`` holds the network's subnet, bridge device and
``leases``: address -> container. Networks living in a sandbox namespace that plays the host
(``MINIBOX_HOST_NETNS=NAME``, see ``netns.py``) are kept apart, under ``networks/in-NAME/``, as if
on another machine: each place has its own default network ``bridge`` with its own ``minibox0``.

A record is read and rewritten only under the engine's state lock (``state.Lock``) and replaced
atomically, like container records, so two ``minibox run`` at once never get the same address
and a crash never leaves half a file.
"""

from __future__ import annotations

import os
import re

from engine.errors import BadValue, MiniboxError
from engine.state import Paths, write_json_atomic

DEFAULT_NETWORK = "bridge"  # as docker's default network, whose device is docker0
RESERVED = {"none", "host"}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class NetworkNotFound(MiniboxError):
    def __init__(self, name: str, elsewhere: str = "") -> None:
        if elsewhere == "(host)":
            fix = "it lives in the machine's own namespace: run minibox there, without MINIBOX_HOST_NETNS"
        elif elsewhere:  # a practice namespace (`workshop shell` of a network lab enters it)
            fix = f"it lives in network namespace {elsewhere}: MINIBOX_HOST_NETNS={elsewhere} minibox ..."
        if elsewhere:
            super().__init__(f"network {name!r} not found on this host side", fix)
        else:
            super().__init__(
                f"network {name!r} not found", "see `minibox network ls`, or create it with `minibox network create`"
            )


def directory(paths: Paths, home: str) -> str:
    """Where the networks of one host side are kept ("" = the machine's own namespace)."""
    base = os.path.join(paths.lib, "networks")
    return os.path.join(base, f"in-{home}") if home else base


def homes(paths: Paths) -> list[str]:
    """Every host side that has network records."""
    base = directory(paths, "")
    try:
        entries = os.listdir(base)
    except FileNotFoundError:
        return []
    return [""] + sorted(e[3:] for e in entries if e.startswith("in-") and os.path.isdir(os.path.join(base, e)))


def record_path(paths: Paths, home: str, name: str) -> str:
    return os.path.join(directory(paths, home), f"{name}.json")


def check_name(name: str) -> None:
    if name in RESERVED or name.startswith("container:") or not NAME_PATTERN.fullmatch(name):
        raise BadValue("network name", name, "letters and digits, then also '-', '_' or '.' (not none/host)")


def load(paths: Paths, home: str, name: str) -> dict | None:
    import json

    try:
        with open(record_path(paths, home, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def get(paths: Paths, home: str, name: str) -> dict:
    data = load(paths, home, name)
    if data is None:
        sides = [other for other in homes(paths) if other != home and load(paths, other, name)]
        elsewhere = (sides[0] or "(host)") if sides else ""
        raise NetworkNotFound(name, elsewhere)
    return data


def save(paths: Paths, data: dict) -> None:
    os.makedirs(directory(paths, data["host_netns"]), mode=0o711, exist_ok=True)
    write_json_atomic(record_path(paths, data["host_netns"], data["name"]), data)


def delete(paths: Paths, home: str, name: str) -> None:
    os.unlink(record_path(paths, home, name))


def all_networks(paths: Paths, home: str) -> list[dict]:
    try:
        names = sorted(n[:-5] for n in os.listdir(directory(paths, home)) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    return [data for data in (load(paths, home, n) for n in names) if data is not None]
