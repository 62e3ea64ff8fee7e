"""Container networking, a layer beside the runtime (as CNI is beside runc): bridges, veth, NAT.

A container made with its own network namespace has only ``lo``. Attaching it to a **network**
does what docker does for ``docker0``:

1. the network is a Linux bridge on the host side with the subnet's first address (the gateway);
   made once, by ``minibox network create`` or, for the default network ``bridge`` (device
   ``minibox0``), on first use. ``net.ipv4.ip_forward`` is turned on;
2. ``create`` leases the container an address (``ipam.py``, leases on disk) and writes its
   ``/etc/hosts`` (every container on the network by name) and ``/etc/resolv.conf``;
3. ``start``: as soon as the container's init exists, and before its command runs, the engine
   makes a veth pair, ``eth0`` inside with the address and a default route via the bridge, the
   other end plugged into the bridge (``links.py``);
4. NAT (``firewall.py``): masquerade for the subnet's traffic out, DNAT for ``-p`` ports;
5. when the container stops: veth deleted, lease freed, rules and other containers' hosts
   files rewritten.

Where the "host side" is: a network remembers the network namespace it was made in
(``MINIBOX_HOST_NETNS``, see ``netns.py``), and everything about it happens there.
"""

from __future__ import annotations

import ipaddress
import os
import time

from engine import state
from engine.errors import BadValue, MiniboxError
from engine.network import firewall, ipam, names, netns, ports, store
from engine.network.store import DEFAULT_NETWORK, NetworkNotFound
from engine.state import STOPPED, Lock, Paths, Record

__all__ = [
    "DEFAULT_NETWORK", "NetworkNotFound", "create", "remove", "list_networks", "inspect", "reserve",
    "attach", "release", "collect", "rules", "parse_publish", "MiniboxError",
]  # fmt: skip

DEFAULT_BRIDGE = "minibox0"
parse_publish = ports.parse


def _host_side(net: dict):  # noqa: ANN202 -- a context manager
    """Enter the network namespace the network's bridge and rules live in.

    A network made without MINIBOX_HOST_NETNS lives in the namespace minibox ran in then, known
    by its inode: a minibox running in another namespace (a shell in a practice namespace that
    forgot to set the variable) is stopped here rather than split the network in two.
    """
    name = net.get("host_netns", "")
    if name:
        path = os.path.join(netns.NETNS_DIR, name)
        if not os.path.exists(path):
            raise MiniboxError(
                f"network {net['name']!r} lives in network namespace {name!r}, which is gone",
                f"remove the network (`minibox network rm {net['name']}`) and make it again",
            )
        return netns.entered(path)
    if net.get("netns_inode") not in (None, netns.inode()):
        raise MiniboxError(
            f"network {net['name']!r} was made in another network namespace than the one minibox runs in now",
            "run minibox where it was made (in a practice namespace: `export MINIBOX_HOST_NETNS=NAME`)",
        )
    return netns.entered(netns.OWN_NETNS)


# --- networks ----------------------------------------------------------------------------------


def create(name: str, subnet: str | None = None, paths: Paths | None = None, *, bridge: str = "") -> dict:
    """``minibox network create``: a bridge with a subnet; refused if either is taken."""
    paths = paths or Paths()
    store.check_name(name)
    home = netns.current_home()
    where = netns.host_netns_path()  # fails now if MINIBOX_HOST_NETNS names nothing
    with Lock(paths):
        if store.load(paths, home, name):
            raise MiniboxError(f"network {name!r} already exists", "use it, or choose another name")
        siblings = store.all_networks(paths, home)
        if siblings:
            _host_side(siblings[0])  # refuses if they live in another namespace than we run in now
        network_id = os.urandom(32).hex()
        device = bridge or f"mbbr-{network_id[:10]}"
        from engine.network import links

        with netns.entered(where):
            taken = {f"network {n['name']}": ipaddress.IPv4Network(n["subnet"]) for n in siblings}
            taken.update(links.host_routes({n["bridge"] for n in siblings}))
            if subnet:
                chosen = ipam.parse_subnet(subnet)
                clash = ipam.overlapping(chosen, taken)
                if clash:
                    raise BadValue("--subnet", subnet, f"a range that does not overlap {clash} ({taken[clash]})")
            else:
                chosen = ipam.choose_subnet(taken)
            if device in links.link_names():
                raise MiniboxError(f"a link named {device} already exists", "remove it, or run `minibox gc`")
            net = {
                "name": name, "id": network_id, "bridge": device, "subnet": str(chosen),
                "gateway": str(ipam.gateway(chosen)), "host_netns": home, "netns_inode": netns.inode(where),
                "created": time.time(),
                "leases": {}, "last": None,
            }  # fmt: skip
            try:
                links.ensure_bridge(device, net["gateway"], chosen.prefixlen)
                if not siblings:
                    _forwarding_on(paths, home)
                store.save(paths, net)
                _apply_firewall(paths, home)
            except BaseException:
                links.delete_link(device)
                if os.path.exists(store.record_path(paths, home, name)):
                    store.delete(paths, home, name)
                if not siblings:
                    _forwarding_restore(paths, home)
                raise
    return net


def ensure_default(paths: Paths) -> dict:
    """The default network ``bridge`` (device ``minibox0``), made on first use."""
    with Lock(paths):
        net = store.load(paths, netns.current_home(), DEFAULT_NETWORK)
        if net is None:
            net = create(DEFAULT_NETWORK, None, paths, bridge=DEFAULT_BRIDGE)
    return net


def remove(name: str, paths: Paths | None = None) -> None:
    """``minibox network rm``: refused while a container holds an address on it."""
    paths = paths or Paths()
    with Lock(paths):
        net = store.get(paths, netns.current_home(), name)
        users = sorted(lease["name"] for lease in net["leases"].values())
        if users:
            raise MiniboxError(
                f"network {name!r} is in use by {', '.join(users)}",
                f"remove those containers first (`minibox rm -f {' '.join(users)}`)",
            )
        home = net.get("host_netns", "")
        with _host_side(net):
            from engine.network import links

            links.delete_link(net["bridge"])
            store.delete(paths, home, name)
            _apply_firewall(paths, home)
            if not store.all_networks(paths, home):
                _forwarding_restore(paths, home)


def list_networks(paths: Paths | None = None, every_host_side: bool = False) -> list[dict]:
    """The networks of the current host side (``MINIBOX_HOST_NETNS``, or the machine's own);
    with ``every_host_side``, those of the practice namespaces and the machine too, this side's first."""
    paths = paths or Paths()
    here = netns.host_netns_name()
    sides = [here] + ([home for home in store.homes(paths) if home != here] if every_host_side else [])
    return [net for side in sides for net in store.all_networks(paths, side)]


def inspect(name: str, paths: Paths | None = None) -> dict:
    net = store.get(paths or Paths(), netns.host_netns_name(), name)
    return {**net, "containers": {lease["name"]: address for address, lease in net["leases"].items()}}


# --- ip_forward --------------------------------------------------------------------------------


def _saved_forwarding(paths: Paths, home: str) -> str:
    return os.path.join(store.directory(paths, home), ".ip_forward")


def _forwarding_on(paths: Paths, home: str) -> None:
    """Turn routing between interfaces on, remembering the old value (first network only)."""
    os.makedirs(store.directory(paths, home), mode=0o711, exist_ok=True)
    saved = _saved_forwarding(paths, home)
    if not os.path.exists(saved):
        with open(saved, "w") as f:
            f.write(netns.read_sysctl("net.ipv4.ip_forward"))
    netns.write_sysctl("net.ipv4.ip_forward", "1")


def _forwarding_restore(paths: Paths, home: str) -> None:
    saved = _saved_forwarding(paths, home)
    try:
        with open(saved) as f:
            old = f.read().strip()
    except FileNotFoundError:
        return
    netns.write_sysctl("net.ipv4.ip_forward", old or "0")
    os.unlink(saved)


# --- the firewall ------------------------------------------------------------------------------


def _published(paths: Paths, home: str, leaving: str = "") -> list[firewall.Published]:
    """Every published port on ``home``'s networks but ``leaving``'s (stopped containers have none)."""
    found = []
    for record in state.all_records(paths):
        attached = record.data.get("network") or {}
        if record.id == leaving or record.data["state"] == STOPPED:
            continue
        if attached.get("mode") == "bridge" and attached.get("host_netns", "") == home:
            for host_port, container_port, proto in attached.get("ports", []):
                found.append(firewall.Published(host_port, container_port, proto, attached["address"], record.name))
    return found


def _apply_firewall(paths: Paths, home: str, leaving: str = "") -> None:
    """Rewrite minibox's nft table of one host side (call it from inside that namespace)."""
    bridged = [firewall.Bridged(n["name"], n["bridge"], n["subnet"]) for n in store.all_networks(paths, home)]
    firewall.apply(bridged, _published(paths, home, leaving))


def rules(paths: Paths | None = None) -> dict[str, str]:
    """minibox's nft table as the kernel has it, and the same rules in iptables' words.

    One table holds the rules of every network of this host side."""
    paths = paths or Paths()
    home = netns.current_home()
    nets = store.all_networks(paths, home)
    if not nets:
        raise MiniboxError("there is no network here yet, so no rules",
                           "run a container with --net bridge, or `minibox network create NAME`")  # fmt: skip
    bridged = [firewall.Bridged(n["name"], n["bridge"], n["subnet"]) for n in nets]
    with _host_side(nets[0]):
        listing = firewall.listing()
    return {"nft": listing, "iptables": firewall.iptables_view(bridged, _published(paths, home))}


# --- a container's connection --------------------------------------------------------------------


def reserve(record: Record, network: str, publish: list, hostname: str) -> None:
    """At ``create`` (under the state lock): lease an address, check ports, write hosts files."""
    paths = record.paths
    home = netns.current_home()
    net = ensure_default(paths) if network == DEFAULT_NETWORK else store.get(paths, home, network)
    wanted = [tuple(p) for p in publish]
    ports.check_unique(wanted)
    with Lock(paths):
        net = store.get(paths, home, net["name"])
        if wanted:
            _check_ports_free(paths, net, wanted)
        subnet = ipaddress.IPv4Network(net["subnet"])
        address = ipam.allocate(subnet, set(net["leases"]), net.get("last"))
        net["leases"][str(address)] = {"container": record.id, "name": record.name}
        net["last"] = str(address)
        store.save(paths, net)
        record.data["network"] = {
            "mode": "bridge", "name": net["name"], "host_netns": home, "bridge": net["bridge"],
            "address": str(address), "prefixlen": subnet.prefixlen, "gateway": net["gateway"],
            "veth": f"mb-{record.id[:12]}", "ports": [list(p) for p in wanted],
        }  # fmt: skip
        _write_names(record, net, hostname)
        from engine import trace

        trace.note("network", f"{net['name']}: address {address} leased; /etc/hosts and resolv.conf in the init layer")


def _check_ports_free(paths: Paths, net: dict, wanted: list[tuple]) -> None:
    with _host_side(net):
        taken = {(p.host_port, p.proto): p.container for p in _published(paths, net["host_netns"])}
        for host_port, _, proto in wanted:
            if (host_port, proto) in taken:
                raise ports.PortInUse(host_port, proto, f"container {taken[(host_port, proto)]}")
            if ports.bound_on_host(host_port, proto):
                raise ports.PortInUse(host_port, proto, "a program on the host")


def _peers(paths: Paths, net: dict, leaving: str = "") -> list[Record]:
    """The containers holding a lease on ``net`` (their records only: not every container's)."""
    ids = {lease["container"] for lease in net["leases"].values()} - {leaving}
    return [r for r in (state.load(paths, i) for i in sorted(ids)) if r is not None]


def _write_names(record: Record, net: dict, hostname: str) -> None:
    """This container's hosts and resolv.conf; every peer's hosts gains this container."""
    mine = record.data["network"]
    members = _peers(record.paths, net, record.id)  # it is not saved yet: not among them
    peers = [(p.data["network"]["address"], p.name) for p in members]
    etc = _init_etc(record)
    with open(os.path.join(etc, "hosts"), "w") as f:
        f.write(names.hosts_text((mine["address"], record.name), hostname, peers))
    with open(os.path.join(etc, "resolv.conf"), "w") as f:
        f.write(names.resolv_conf_text())
    _rewrite_hosts(members + [record], skip=record.id)


def _rewrite_hosts(members: list[Record], skip: str = "") -> None:
    """Every member's /etc/hosts (but ``skip``'s), listing the other members."""
    for peer in members:
        if peer.id == skip:
            continue
        others = [(p.data["network"]["address"], p.name) for p in members if p.id != peer.id]
        hostname = peer.data["spec"].get("hostname") or peer.id[:12]
        own = (peer.data["network"]["address"], peer.name)
        names.write_in_place(os.path.join(_init_etc(peer), "hosts"), names.hosts_text(own, hostname, others))


def _init_etc(record: Record) -> str:
    """The container's etc/ in its init layer (under /run: see engine/state.py)."""
    return os.path.join(record.data["rootfs"]["init"], "etc")


def attach(record: Record, pid: int) -> str:
    """At ``start``, once the init exists and before its command runs: the veth pair, NAT rules.

    Returns eth0's MAC address (also put in the record's ``network``)."""
    from engine.network import links

    mine = record.data["network"]
    net = store.get(record.paths, mine["host_netns"], mine["name"])
    with _host_side(net):
        mine["mac"] = links.plug_container(
            net["bridge"], mine["veth"], pid, mine["address"], mine["prefixlen"], mine["gateway"]
        )
        from engine import trace

        trace.note("network", f"veth {mine['veth']} in {net['bridge']} <-> eth0 {mine['address']}/{mine['prefixlen']}"
                              f" inside, default via {mine['gateway']}")  # fmt: skip
        if mine["ports"]:
            with Lock(record.paths):
                _apply_firewall(record.paths, mine["host_netns"])
    return mine["mac"]


def release(record: Record) -> None:
    """When the container is finished (or its creation undone): veth, lease, rules, hosts files."""
    mine = record.data.get("network") or {}
    if mine.get("mode") != "bridge":
        return
    paths = record.paths
    with Lock(paths):
        net = store.load(paths, mine["host_netns"], mine["name"])
        if net is None:
            return
        lease = net["leases"].get(mine["address"])
        if not lease or lease["container"] != record.id:
            return  # released already (finalize, then rm)
        del net["leases"][mine["address"]]
        store.save(paths, net)
        with _host_side(net):
            from engine.network import links

            links.delete_link(mine["veth"])  # usually gone already: it dies with the container's namespace
            if mine.get("ports"):
                _apply_firewall(paths, mine["host_netns"], leaving=record.id)
        _rewrite_hosts(_peers(paths, net, leaving=record.id))


def collect(paths: Paths) -> list[str]:
    """``gc``: free leases whose container is gone or stopped (a crash between start and finalize)."""
    done = []
    records = {r.id: r for r in state.all_records(paths)}
    for net in [n for home in store.homes(paths) for n in store.all_networks(paths, home)]:
        for address, lease in list(net["leases"].items()):
            holder = records.get(lease["container"])
            if holder is None or holder.data["state"] == STOPPED:
                if holder is not None:
                    release(holder)
                else:
                    del net["leases"][address]
                    store.save(paths, net)
                done.append(f"network {net['name']}: address {address} of {lease['name']} freed")
    return done
