"""Published ports (``-p HOSTPORT:CPORT[/tcp|udp]``): parsing, and checks that a port is free.

Publishing is DNAT (see ``firewall.py``): nothing listens on the host port, so the kernel would
not stop two containers, or a host program and a container, from claiming the same one. These
checks do: against every other container's published ports, and against sockets already bound
on the host side (read from ``/proc/thread-self/net/tcp`` of the host side's namespace).
"""

from __future__ import annotations

import re

from engine.errors import BadValue, MiniboxError

PATTERN = re.compile(r"(\d+):(\d+)(?:/(tcp|udp))?")


def parse(text: str) -> tuple[int, int, str]:
    """``8080:80`` -> (8080, 80, "tcp")."""
    match = PATTERN.fullmatch(text.strip().lower())
    if not match:
        raise BadValue("-p/--publish", text, "HOSTPORT:CONTAINERPORT, optionally /tcp or /udp, e.g. 8080:80")
    host_port, container_port, proto = int(match[1]), int(match[2]), match[3] or "tcp"
    for port in (host_port, container_port):
        if not 1 <= port <= 65535:
            raise BadValue("-p/--publish", text, "ports from 1 to 65535")
    return host_port, container_port, proto


def check_unique(wanted: list[tuple[int, int, str]]) -> None:
    seen = set()
    for host_port, _, proto in wanted:
        if (host_port, proto) in seen:
            raise BadValue("-p/--publish", f"{host_port}/{proto}", "each host port once")
        seen.add((host_port, proto))


class PortInUse(MiniboxError):
    def __init__(self, port: int, proto: str, by: str) -> None:
        super().__init__(f"host port {port}/{proto} is already in use by {by}", "choose another host port with -p")


def bound_on_host(port: int, proto: str) -> bool:
    """Is a socket bound to ``port`` in this thread's network namespace (listening, for TCP)?"""
    for family in ("", "6"):
        try:
            with open(f"/proc/thread-self/net/{proto}{family}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    listening = fields[3] == "0A" if proto == "tcp" else True
                    if local_port == port and listening:
                        return True
        except FileNotFoundError:
            continue
    return False
