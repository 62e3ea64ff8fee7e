"""Name resolution for containers: ``/etc/hosts`` and ``/etc/resolv.conf`` in the init layer.

Each container's ``/etc/hosts`` lives in its init layer (``init/``, the layer the seed describes
between the image and the container's writable one). On a network it lists every container on
that network by name, so ``ping web`` works without a DNS server; when a container joins or
leaves, the engine rewrites the file of every other container on the network **in place** (same
inode: the overlay keeps showing the lower file it already found). ``resolv.conf`` is the
host's, minus loopback name servers a container cannot reach (as docker does).
"""

from __future__ import annotations

import os

BASE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def hosts_text(own: tuple[str, str] | None, hostname: str, peers: list[tuple[str, str]]) -> str:
    """``own`` = (address, name) of this container, or None off-network; ``peers`` the same."""
    lines = [BASE.rstrip("\n")]
    if own:
        address, name = own
        aliases = " ".join(dict.fromkeys([hostname, name]))
        lines.append(f"{address}\t{aliases}")
    else:
        lines.append(f"127.0.1.1\t{hostname}")
    lines += [f"{address}\t{name}" for address, name in sorted(peers)]
    return "\n".join(lines) + "\n"


def write_in_place(path: str, text: str) -> None:
    """Overwrite a container's file keeping its inode (a running container sees the new text)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return  # the container removed or replaced it: its choice
    with os.fdopen(fd, "w") as f:
        f.write(text)


def resolv_conf_text(host_file: str = "/etc/resolv.conf") -> str:
    try:
        with open(host_file) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    kept = [line for line in lines if not (line.split()[:1] == ["nameserver"] and _loopback(line.split()))]
    servers = [line for line in kept if line.startswith("nameserver")]
    if not servers:
        kept.append("# minibox: the host's name servers are on loopback, which a container cannot reach")
    return "\n".join(kept) + "\n"


def _loopback(words: list[str]) -> bool:
    return len(words) > 1 and (words[1].startswith("127.") or words[1] == "::1")
