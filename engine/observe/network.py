"""Network view: links, addresses and routes of a process's network namespace, over netlink.

A netlink socket talks to the network namespace it was created in. So this thread joins the
namespace ``/proc/PID/ns/net`` with ``setns(2)`` (the network namespace is per thread), opens
pyroute2's socket there and goes straight back: the answer is what ``ip link``, ``ip addr`` and
``ip route`` would print inside. (pyroute2's own ``netns=`` option does the same through a helper
process, 5 times slower.) Imported only when asked for: pyroute2 costs ~170 ms to import.
"""

from __future__ import annotations

from engine.network.netns import outside_event_loop


def _netlink_in(where: int | str):  # noqa: ANN202 -- a pyroute2 IPRoute, imported lazily
    """A netlink socket in the network namespace of PID ``where`` (or at the path ``where``)."""
    from pyroute2 import IPRoute

    from engine.network.netns import entered

    path = where if str(where).startswith("/") else f"/proc/{where}/ns/net"
    with entered(path):
        return IPRoute()


@outside_event_loop
def network_rows(where: int | str) -> list[dict]:
    """Links (with their type and bridge), addresses and routes; ``where``: a PID or netns path."""
    rows: list[dict] = []
    with _netlink_in(where) as ip:
        links = ip.get_links()
        names = {link["index"]: link.get("ifname") for link in links}
        for link in links:
            info = link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
            rows.append({"kind": "link", "name": link.get("ifname"), "state": link.get("operstate"),
                         "mac": link.get("address"), "mtu": link.get("mtu"),
                         "flags": "UP" if link["flags"] & 1 else "DOWN",
                         "type": info or ("loopback" if link.get("ifname") == "lo" else "device"),
                         "master": names.get(link.get("master"))})  # fmt: skip
        for addr in ip.get_addr():
            rows.append({"kind": "address", "name": names.get(addr["index"]),
                         "address": f"{addr.get('address')}/{addr['prefixlen']}"})  # fmt: skip
        for route in ip.get_routes(table=254):
            dst = route.get("dst")
            rows.append({"kind": "route", "name": names.get(route.get("oif")),
                         "destination": f"{dst}/{route['dst_len']}" if dst else "default",
                         "gateway": route.get("gateway")})  # fmt: skip
    return rows
