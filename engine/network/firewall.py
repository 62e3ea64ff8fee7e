"""NAT with nftables: masquerade for traffic leaving a network, DNAT for published ports.

minibox keeps every rule in **one table of its own**, ``table ip minibox``, and rewrites that
table whole in one ``nft -f`` transaction each time something changes: a network or a published
port appears or goes. The kernel swaps the table atomically, so no packet ever sees half a rule
set, and a rule of a removed container can never linger.

The table, with docker's iptables rules it corresponds to (``iptables_view`` prints those):

- ``postrouting`` (hook postrouting, srcnat): packets from a network's subnet leaving by another
  interface get the host's address as source (``-j MASQUERADE``): outbound traffic;
- ``prerouting`` / ``output`` (hook prerouting / output, dstnat): a packet for one of the host's
  own addresses (``fib daddr type local``; iptables' ``-m addrtype --dst-type LOCAL``) goes to the
  ``published`` chain, where ``tcp dport 8080 dnat to 172.29.0.2:80`` sends it to the container
  (``-j DNAT``). ``prerouting`` sees packets arriving from outside, ``output`` the host's own;
- a host connection to ``127.0.0.1:8080`` keeps its loopback source after DNAT, so it is
  masqueraded to the bridge's address on the way out (with ``route_localnet`` on the bridge);
- ``forward`` (hook forward, filter): the host routes between all its interfaces, so without a
  rule a container could reach another network's containers through it. Traffic from one
  minibox bridge to another is dropped: networks are isolated (docker's DOCKER-ISOLATION chains).

Forwarding between interfaces must be on (``net.ipv4.ip_forward``) for any of this: it is set
when the first network is made and put back as it was when the last one is removed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from engine import state
from engine.errors import MiniboxError


@dataclass(frozen=True)
class Published:
    """One ``-p HOSTPORT:CPORT/PROTO`` of a running container."""

    host_port: int
    container_port: int
    proto: str
    address: str  # the container's
    container: str  # its name, for the rule's comment


@dataclass(frozen=True)
class Bridged:
    """One network: its bridge device and subnet."""

    name: str
    bridge: str
    subnet: str


def table_name() -> str:
    return state.prefix()


def ruleset(networks: list[Bridged], ports: list[Published]) -> str:
    """The whole ``table ip minibox``, as nft source text."""
    post = []
    for net in networks:
        post.append(
            f'ip saddr {net.subnet} oifname != "{net.bridge}" masquerade comment "{net.name}: out to the world"'
        )
        if ports:
            post.append(
                f'ip saddr 127.0.0.0/8 oifname "{net.bridge}" masquerade comment "{net.name}: host to a published port"'
            )
    published = [
        f'{p.proto} dport {p.host_port} dnat to {p.address}:{p.container_port} comment "{p.container}"' for p in ports
    ]
    isolation = [
        f'iifname "{a.bridge}" oifname "{b.bridge}" drop comment "{a.name} -/-> {b.name}"'
        for a in networks
        for b in networks
        if a is not b
    ]
    chains = [
        ("forward", "type filter hook forward priority filter; policy accept;", isolation),
        ("postrouting", "type nat hook postrouting priority srcnat; policy accept;", post),
        (
            "prerouting",
            "type nat hook prerouting priority dstnat; policy accept;",
            ["fib daddr type local jump published"],
        ),
        # "dstnat" is not accepted for the output hook by nft 1.0.6: it is the same number, -100.
        ("output", "type nat hook output priority -100; policy accept;", ["fib daddr type local jump published"]),
        ("published", "", published),
    ]
    lines = [f"table ip {table_name()} {{"]
    for chain, base, rules in chains:
        lines.append(f"\tchain {chain} {{")
        if base:
            lines.append(f"\t\t{base}")
        lines += [f"\t\t{rule}" for rule in rules]
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply(networks: list[Bridged], ports: list[Published]) -> None:
    """Replace minibox's table in one transaction (or delete it when there is no network)."""
    table = f"ip {table_name()}"
    # "add table" first makes "delete table" safe when the table does not exist yet.
    script = f"add table {table}\ndelete table {table}\n"
    if networks:
        script += ruleset(networks, ports)
    _nft(script)


def _nft(script: str) -> str:
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft is None:
        raise MiniboxError(
            "the `nft` command (nftables) is missing", "install it: `apt install nftables` (or `make setup`)"
        )
    result = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True)
    if result.returncode != 0:
        first = (result.stderr.strip().splitlines() or ["?"])[0]
        raise MiniboxError(
            f"nftables refused minibox's rules: {first}", "check that nf_tables works (`nft list ruleset`)"
        )
    return result.stdout


def listing() -> str:
    """``nft list table ip minibox`` as the kernel has it now ("" when there is no table)."""
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin") or "nft"
    result = subprocess.run([nft, "list", "table", "ip", table_name()], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


def iptables_view(networks: list[Bridged], ports: list[Published]) -> str:
    """The same rules written as docker writes them with iptables (``iptables-save`` format)."""
    chain = table_name().upper()
    lines = ["*nat", f":{chain} - [0:0]"]
    lines += [f"-A PREROUTING -m addrtype --dst-type LOCAL -j {chain}",
              f"-A OUTPUT -m addrtype --dst-type LOCAL -j {chain}"]  # fmt: skip
    for net in networks:
        lines.append(f"-A POSTROUTING -s {net.subnet} ! -o {net.bridge} -j MASQUERADE")
        if ports:
            lines.append(f"-A POSTROUTING -s 127.0.0.0/8 -o {net.bridge} -j MASQUERADE")
    for p in ports:
        match = f"-p {p.proto} -m {p.proto} --dport {p.host_port}"
        lines.append(f"-A {chain} {match} -j DNAT --to-destination {p.address}:{p.container_port}")
    lines += ["COMMIT", "*filter"]
    lines += [f"-A FORWARD -i {a.bridge} -o {b.bridge} -j DROP" for a in networks for b in networks if a is not b]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"
