"""IP address management: which subnet a network gets, which address a container gets.

Plain arithmetic on ``ipaddress`` objects, no kernel calls: the bridge gets the first host
address of the subnet (the containers' gateway), containers get the others. Leases are kept in
the network's record on disk (see ``store.py``), so an address is never handed out twice, even
after minibox restarts; a freed address is reused only after the others were tried (the allocator
goes round the subnet like a clock hand), so a stale ARP entry on a peer rarely points at the
wrong container.
"""

from __future__ import annotations

import ipaddress

from engine.errors import BadValue, MiniboxError

Subnet = ipaddress.IPv4Network

# Tried in order when a network is made without --subnet (docker starts at 172.17.0.0/16; these
# are further up the same private range, and then small ones, to stay clear of the usual LANs).
AUTOMATIC_SUBNETS = [f"172.{n}.0.0/16" for n in range(29, 32)] + [f"10.213.{n}.0/24" for n in range(256)]


def parse_subnet(text: str) -> Subnet:
    """``10.10.0.0/24`` -> the network, with a one-line error for anything else."""
    try:
        subnet = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        try:
            loose = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            raise BadValue("--subnet", text, "an IPv4 network in CIDR form, e.g. 10.10.0.0/24") from None
        raise BadValue("--subnet", text, f"the network's own address, i.e. {loose}") from None
    if not 8 <= subnet.prefixlen <= 29:
        raise BadValue("--subnet", text, "a prefix length from /8 to /29 (room for a gateway and containers)")
    zero = ipaddress.IPv4Network("0.0.0.0/8")
    if subnet.is_loopback or subnet.is_multicast or subnet.is_link_local or subnet.is_reserved or subnet.overlaps(zero):
        raise BadValue("--subnet", text, "an ordinary unicast range such as 10.10.0.0/24 (not 0/8, loopback, "
                       "link-local, multicast or reserved 240/4)")  # fmt: skip
    return subnet


def overlapping(subnet: Subnet, taken: dict[str, Subnet]) -> str | None:
    """The name of the first entry of ``taken`` (network or route) that overlaps ``subnet``."""
    for owner, other in taken.items():
        if subnet.overlaps(other):
            return owner
    return None


def choose_subnet(taken: dict[str, Subnet]) -> Subnet:
    for text in AUTOMATIC_SUBNETS:
        candidate = ipaddress.IPv4Network(text)
        if overlapping(candidate, taken) is None:
            return candidate
    raise MiniboxError("no free subnet left for a new network", "give one with --subnet, or remove unused networks")


def gateway(subnet: Subnet) -> ipaddress.IPv4Address:
    return subnet.network_address + 1


def allocate(subnet: Subnet, leased: set[str], last: str | None) -> ipaddress.IPv4Address:
    """The next free address after ``last`` (wrapping round), never the gateway or broadcast."""
    first = int(gateway(subnet)) + 1
    end = int(subnet.broadcast_address)  # exclusive
    size = end - first
    start = int(ipaddress.IPv4Address(last)) + 1 - first if last else 0
    for step in range(size):
        address = ipaddress.IPv4Address(first + (start + step) % size)
        if str(address) not in leased:
            return address
    raise MiniboxError(
        f"network {subnet} is full: all {size} addresses are in use",
        "remove stopped containers (`minibox rm`) or create a network with a larger --subnet",
    )
