"""A practice network: one namespace playing "the host", another playing "the internet".

The network labs and the tests must never touch the real machine's uplink or firewall, and must
send traffic only inside namespaces they made. So they set ``MINIBOX_HOST_NETNS=NAME`` (see
``netns.py``) after ``up(NAME)`` has built this, with the same kernel objects a real host has:

    [ containers ]--veth--[ bridge ]  NAME (the "host")  mb-uplink ==veth== wan0  NAME-inet
                          10.x.0.1     192.0.2.2/24 -- default route --> 192.0.2.1/24
                                                                  lo: 198.51.100.1 (a "web site")

The "internet" knows only its link to the host (192.0.2.0/24): a container's own address is
unknown there, so a container reaches 198.51.100.1 only if the host masquerades its traffic,
exactly why docker needs its MASQUERADE rule. Addresses come from the documentation ranges
(RFC 5737), which belong to nobody. ``down(NAME)`` deletes both namespaces, and with them every
link, address, route and nft rule made inside.
"""

from __future__ import annotations

import os

from engine.network import netns

HOST_UPLINK, INTERNET_UPLINK, PREFIXLEN = "192.0.2.2", "192.0.2.1", 24
INTERNET_SERVER = "198.51.100.1"  # give it a server: `ip netns exec NAME-inet busybox httpd ...`


def internet_name(name: str) -> str:
    return f"{name}-inet"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(netns.NETNS_DIR, name))


@netns.outside_event_loop
def up(name: str) -> None:
    """Make the two namespaces, linked and addressed (nothing to do if they exist: quick, it
    imports nothing then, so a lab may call it before each command)."""
    inet = internet_name(name)
    if exists(name) and exists(inet):
        return
    from pyroute2 import IPRoute
    from pyroute2 import netns as pyroute2_netns

    down(name)
    try:
        pyroute2_netns.create(name)
        pyroute2_netns.create(inet)
        with netns.entered(os.path.join(netns.NETNS_DIR, inet)), IPRoute() as ip:
            lo = ip.link_lookup(ifname="lo")[0]
            ip.link("set", index=lo, state="up")
            ip.addr("add", index=lo, address=INTERNET_SERVER, prefixlen=32)
        with netns.entered(os.path.join(netns.NETNS_DIR, name)), IPRoute() as ip:
            ip.link("set", index=ip.link_lookup(ifname="lo")[0], state="up")
            ip.link("add", ifname="mb-uplink", kind="veth", peer={"ifname": "wan0", "net_ns_fd": inet})
            uplink = ip.link_lookup(ifname="mb-uplink")[0]
            ip.addr("add", index=uplink, address=HOST_UPLINK, prefixlen=PREFIXLEN)
            ip.link("set", index=uplink, state="up")
        with netns.entered(os.path.join(netns.NETNS_DIR, inet)), IPRoute() as ip:
            wan = ip.link_lookup(ifname="wan0")[0]
            ip.addr("add", index=wan, address=INTERNET_UPLINK, prefixlen=PREFIXLEN)
            ip.link("set", index=wan, state="up")
        with netns.entered(os.path.join(netns.NETNS_DIR, name)), IPRoute() as ip:
            ip.route("add", dst="0.0.0.0/0", gateway=INTERNET_UPLINK)
    except BaseException:
        down(name)
        raise


@netns.outside_event_loop
def down(name: str) -> None:
    from pyroute2 import netns as pyroute2_netns

    for each in (name, internet_name(name)):
        if exists(each):
            pyroute2_netns.remove(each)
