"""A small text diagram of bridges and veth pairs, drawn from the network observer's rows.

What ``ip link``, ``bridge link`` and ``ip addr`` say, as a picture: each bridge with its
address, the veth ends plugged into it and the container on the far end of each, then the host's
other interfaces and its default route. Pure rendering: the rows come from ``engine.observe``.
"""

from __future__ import annotations

from rich.text import Text


def _addresses(rows: list[dict]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for row in rows:
        if row["kind"] == "address" and ":" not in row["address"]:  # IPv4 only: short and to the point
            found.setdefault(row["name"], []).append(row["address"])
    return found


def network_diagram(host: list[dict], container: list[dict], owners: dict[str, str], focus: str | None) -> Text:
    """``owners``: host-side veth name -> container name; ``focus``: the container shown beside."""
    links = [r for r in host if r["kind"] == "link"]
    addresses = _addresses(host)
    text = Text()
    bridges = [link for link in links if link.get("type") == "bridge"]
    for bridge in bridges:
        name = bridge["name"]
        text.append(f"{name}", "bold")
        text.append(f"  bridge  {' '.join(addresses.get(name, [])) or 'no address'}  {bridge['flags']}\n")
        ports = [link for link in links if link.get("master") == name]
        for i, port in enumerate(ports):
            branch = "└─" if i == len(ports) - 1 else "├─"
            owner = owners.get(port["name"])
            text.append(f" {branch} {port['name']} ⇄ eth0 of ")
            text.append(owner or "?", "bold yellow" if owner and owner == focus else "")
            text.append("  ← this container\n" if owner and owner == focus else "\n", "yellow")
        if not ports:
            text.append(" └─ (no container plugged in)\n", "dim")
    unplugged = [link for link in links if link.get("type") not in ("bridge", "loopback") and not link.get("master")]
    for link in unplugged:
        text.append(f"{link['name']}  {link.get('type', '')}  {' '.join(addresses.get(link['name'], []))}\n", "dim")
    default = next((r for r in host if r["kind"] == "route" and r["destination"] == "default"), None)
    if default:
        text.append(f"host default route: via {default['gateway']} dev {default['name']}\n", "dim")
    if not bridges:
        text.append("no bridge on the host side yet (containers with --net bridge make minibox0)\n", "dim")
    if focus:
        own = _addresses(container)
        route = next((r for r in container if r["kind"] == "route" and r["destination"] == "default"), None)
        inside = ", ".join(f"{n} {' '.join(a)}" for n, a in own.items() if n != "lo") or "only lo"
        text.append(f"inside {focus}: {inside}", "yellow")
        text.append(f" → default via {route['gateway']}" if route else " → no default route", "yellow")
    return text
