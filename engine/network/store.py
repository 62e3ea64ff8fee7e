"""Network records on disk: one JSON file per network, with its address leases.

``/var/lib/minibox/networks/NAME.json`` holds the network's subnet, bridge device, the sandbox
namespace it lives in (if any) and ``leases``: address -> container. It is read and rewritten
only under the engine's state lock (``state.Lock``) and replaced atomically, like container
records, so two ``minibox run`` at once never get the same address and a crash never leaves half
a file.
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
    def __init__(self, name: str) -> None:
        super().__init__(
            f"network {name!r} not found", "see `minibox network ls`, or create it with `minibox network create`"
        )


def directory(paths: Paths) -> str:
    return os.path.join(paths.lib, "networks")


def record_path(paths: Paths, name: str) -> str:
    return os.path.join(directory(paths), f"{name}.json")


def check_name(name: str) -> None:
    if name in RESERVED or name.startswith("container:") or not NAME_PATTERN.fullmatch(name):
        raise BadValue("network name", name, "letters and digits, then also '-', '_' or '.' (not none/host)")


def load(paths: Paths, name: str) -> dict | None:
    import json

    try:
        with open(record_path(paths, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def get(paths: Paths, name: str) -> dict:
    data = load(paths, name)
    if data is None:
        raise NetworkNotFound(name)
    return data


def save(paths: Paths, data: dict) -> None:
    os.makedirs(directory(paths), mode=0o711, exist_ok=True)
    write_json_atomic(record_path(paths, data["name"]), data)


def delete(paths: Paths, name: str) -> None:
    os.unlink(record_path(paths, name))


def all_networks(paths: Paths) -> list[dict]:
    try:
        names = sorted(n[:-5] for n in os.listdir(directory(paths)) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    return [data for data in (load(paths, n) for n in names) if data is not None]
