"""Links, addresses and routes over netlink (pyroute2): the bridge and each container's veth pair.

What ``docker0`` is made of, done with the same netlink messages ``ip`` sends:

- a **bridge** (a virtual switch) on the host side, holding the network's gateway address;
- per container a **veth pair**, two interfaces joined like the ends of a cable. One end stays on
  the host side and is plugged into the bridge; the other is created straight inside the
  container's network namespace as ``eth0``, gets the container's address and a default route
  via the bridge.

The caller chooses the namespace (``netns.host_side()``): a netlink socket works in the namespace
of the thread that opened it. pyroute2 is imported here only, when a network is used: it costs
~110 ms to import, which a container without networking should not pay.
"""

from __future__ import annotations

import errno
import ipaddress

from engine.errors import MiniboxError
from engine.network import netns


def _iproute():  # noqa: ANN202 -- pyroute2.IPRoute, imported lazily
    from pyroute2 import IPRoute

    return IPRoute()


def _index(ip, name: str) -> int | None:  # noqa: ANN001
    found = ip.link_lookup(ifname=name)
    return found[0] if found else None


@netns.outside_event_loop
def ensure_bridge(name: str, gateway: str, prefixlen: int) -> None:
    """Make the bridge with the gateway address and bring it up (nothing to do if it is there)."""
    from pyroute2.netlink.exceptions import NetlinkError

    with _iproute() as ip:
        index = _index(ip, name)
        if index is None:
            ip.link("add", ifname=name, kind="bridge")
            index = _index(ip, name)
        try:
            ip.addr("add", index=index, address=gateway, prefixlen=prefixlen)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
        ip.link("set", index=index, state="up")
    # Connections from the host to 127.0.0.1:PUBLISHED are DNAT'ed to a container: let packets
    # with a loopback source leave through the bridge (they are then masqueraded, see firewall.py).
    netns.write_sysctl(f"net.ipv4.conf.{name}.route_localnet", "1")


@netns.outside_event_loop
def delete_link(name: str) -> bool:
    """Delete a link (a bridge, or a veth and with it its peer); False if there was none."""
    from pyroute2.netlink.exceptions import NetlinkError

    with _iproute() as ip:
        index = _index(ip, name)
        if index is None:
            return False
        try:
            ip.link("del", index=index)
        except NetlinkError as e:
            # A veth whose peer's namespace just died is being removed by the kernel at this very
            # moment (network namespaces are torn down asynchronously): gone is what we wanted.
            if e.code != errno.ENODEV:
                raise
        return True


@netns.outside_event_loop
def link_names() -> list[str]:
    with _iproute() as ip:
        return [link.get("ifname") for link in ip.get_links()]


@netns.outside_event_loop
def plug_container(bridge: str, veth: str, pid: int, address: str, prefixlen: int, gateway: str) -> str:
    """Wire the container whose init is ``pid`` to ``bridge``; return eth0's MAC address.

    Called on the host side. The container's end is created directly in its namespace
    (``net_ns_pid``), so its name ``eth0`` never meets the host's own interfaces.
    """
    with _iproute() as ip:
        bridge_index = _index(ip, bridge)
        if bridge_index is None:
            raise MiniboxError(f"bridge {bridge} is missing", "run `minibox gc` (it recreates nothing), then "
                               "remove and recreate the network")  # fmt: skip
        ip.link("add", ifname=veth, kind="veth", peer={"ifname": "eth0", "net_ns_pid": pid})
        index = _index(ip, veth)
        ip.link("set", index=index, master=bridge_index, state="up")
    with netns.container_side(pid), _iproute() as ip:
        eth0 = _index(ip, "eth0")
        ip.addr("add", index=eth0, address=address, prefixlen=prefixlen)
        ip.link("set", index=eth0, state="up")
        ip.route("add", dst="0.0.0.0/0", gateway=gateway)
        return ip.get_links(eth0)[0].get("address")


@netns.outside_event_loop
def host_routes(ignore: set[str]) -> dict[str, ipaddress.IPv4Network]:
    """IPv4 routes of the host side (``dev`` -> destination), except through ``ignore``'d devices.

    A new network must not overlap them: the host could no longer reach that range.
    """
    routes: dict[str, ipaddress.IPv4Network] = {}
    with _iproute() as ip:
        names = {link["index"]: link.get("ifname") for link in ip.get_links()}
        for route in ip.get_routes(family=2, table=254):
            dst = route.get("dst")
            device = names.get(route.get("oif"), "?")
            if not dst or device in ignore or device == "lo":
                continue
            routes[f"the host's route via {device}"] = ipaddress.IPv4Network(f"{dst}/{route['dst_len']}", strict=False)
    return routes
