"""Networking on the real kernel: bridges, veth pairs, IPAM, NAT and published ports.

Everything happens inside a practice network this module makes (``engine.network.sandbox``): a
namespace playing the host (``MINIBOX_HOST_NETNS``) and one playing the internet, with a web
server on 198.51.100.1. No packet is sent in this machine's own network namespace.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading

import pytest
from conftest import MINIBOX, PREFIX, inspect, minibox, start_detached, wait_for

from engine.network import sandbox

HOST_NS = f"{PREFIX}-host"
INET_NS = sandbox.internet_name(HOST_NS)


def in_ns(namespace: str, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True, timeout=timeout)


def links(namespace: str = HOST_NS) -> set[str]:
    out = in_ns(namespace, "ip", "-o", "link").stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def nft_table() -> str:
    return in_ns(HOST_NS, "nft", "list", "table", "ip", PREFIX).stdout


def network_json(name: str) -> dict:
    return json.loads(minibox("network", "inspect", name, check=True).stdout)[0]


@pytest.fixture(scope="module")
def practice_net(tmp_path_factory: pytest.TempPathFactory):
    """The sandbox, a web server in the "internet" that echoes the client's address, and cleanup."""
    sandbox.up(HOST_NS)
    old = os.environ.get("MINIBOX_HOST_NETNS")
    os.environ["MINIBOX_HOST_NETNS"] = HOST_NS
    site = tmp_path_factory.mktemp("site")
    (site / "cgi-bin").mkdir()
    script = site / "cgi-bin" / "whoami"
    script.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n")
    script.chmod(0o755)
    server = subprocess.Popen(["ip", "netns", "exec", INET_NS, "busybox", "httpd", "-f", "-p",
                               f"{sandbox.INTERNET_SERVER}:80", "-h", str(site)])  # fmt: skip
    try:
        yield
    finally:
        server.kill()
        server.wait()
        for ref in minibox("ps", "-a", "-q").stdout.split():
            minibox("rm", "-f", ref)
        for net in json.loads(minibox("network", "inspect", *_network_names()).stdout or "[]"):
            minibox("network", "rm", net["name"])
        left = links() - {"lo", "mb-uplink"}
        table = nft_table()
        forwarding = in_ns(HOST_NS, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()
        if old is None:
            del os.environ["MINIBOX_HOST_NETNS"]
        else:
            os.environ["MINIBOX_HOST_NETNS"] = old
        sandbox.down(HOST_NS)
        assert not left, f"links left in the sandbox: {left}"
        assert not table, f"nft table left: {table}"
        assert forwarding == "0", "ip_forward was not restored"


def _network_names() -> list[str]:
    """The networks of this host side (`network ls` lists every side's; the last column says which)."""
    here = os.environ.get("MINIBOX_HOST_NETNS") or "(host)"
    lines = minibox("network", "ls").stdout.splitlines()[1:]
    return [line.split()[0] for line in lines if line.split()[-1] == here] or ["-"]


# --- what works ----------------------------------------------------------------------------------


def test_container_gets_eth0_address_and_default_route(practice_net, name: str) -> None:
    start_detached(name, "--net", "bridge", "busybox", "sleep", "60")
    addr = minibox("exec", name, "ip", "-o", "-4", "addr", check=True).stdout
    route = minibox("exec", name, "ip", "route", check=True).stdout
    details = inspect(name)["NetworkSettings"]
    assert f"inet {details['address']}/16" in addr and "eth0" in addr
    assert f"default via {details['gateway']} dev eth0" in route
    net = network_json("bridge")
    assert net["bridge"] == "minibox0" and net["leases"][details["address"]]["name"] == name
    assert details["veth"] in links()  # the host end, plugged into the bridge
    master = in_ns(HOST_NS, "ip", "-o", "link", "show", details["veth"]).stdout
    assert "master minibox0" in master
    assert in_ns(HOST_NS, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"


def test_containers_reach_each_other_by_name(practice_net, name: str) -> None:
    minibox("network", "create", "--subnet", "10.77.0.0/24", "byname", check=True)
    other = f"{name}-b"
    try:
        start_detached(name, "--net", "byname", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
        start_detached(other, "--net", "byname", "busybox", "sleep", "60")
        fetched = minibox("exec", other, "wget", "-q", "-O-", f"http://{name}/hostname", check=True)
        assert fetched.stdout.strip() == inspect(name)["Id"][:12]
        # The first container's /etc/hosts was rewritten in place when the second one joined.
        hosts = minibox("exec", name, "cat", "/etc/hosts", check=True).stdout
        assert f"{inspect(other)['NetworkSettings']['address']}\t{other}" in hosts
        minibox("rm", "-f", other, check=True)
        assert other not in minibox("exec", name, "cat", "/etc/hosts", check=True).stdout
    finally:
        minibox("rm", "-f", name, other)
        minibox("network", "rm", "byname", check=True)


def test_networks_are_isolated_from_each_other(practice_net, name: str) -> None:
    minibox("network", "create", "--subnet", "10.78.0.0/24", "apart", check=True)
    other = f"{name}-b"
    try:
        start_detached(name, "--net", "apart", "busybox", "sleep", "60")
        start_detached(other, "--net", "bridge", "busybox", "sleep", "60")
        target = inspect(name)["NetworkSettings"]["address"]
        assert minibox("exec", other, "ping", "-c", "1", "-W", "1", target).returncode != 0
        assert minibox("exec", other, "ping", "-c", "1", "-W", "1", sandbox.HOST_UPLINK).returncode == 0
        # The rule that does it, in both words.
        assert 'oifname "' + network_json("apart")["bridge"] + '" drop' in nft_table()
        view = minibox("network", "rules", "--iptables", check=True).stdout
        assert f"-A FORWARD -i minibox0 -o {network_json('apart')['bridge']} -j DROP" in view
    finally:
        minibox("rm", "-f", name, other)
        minibox("network", "rm", "apart", check=True)


def test_outbound_traffic_is_masqueraded(practice_net, name: str) -> None:
    # The "internet" has no route to the container's subnet: only the host's address can work.
    result = minibox("run", "--rm", "--name", name, "--net", "bridge", "busybox", "wget", "-q", "-O-",
                     f"http://{sandbox.INTERNET_SERVER}/cgi-bin/whoami", check=True)  # fmt: skip
    assert result.stdout.strip() == sandbox.HOST_UPLINK
    assert "masquerade" in nft_table()


def test_published_port_reaches_the_container(practice_net, name: str) -> None:
    start_detached(name, "--net", "bridge", "-p", "8080:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    want = inspect(name)["Id"][:12]
    url = "/hostname"
    assert wait_for(
        lambda: (
            in_ns(INET_NS, "busybox", "wget", "-q", "-O-", f"http://{sandbox.HOST_UPLINK}:8080{url}").stdout.strip()
            == want
        )
    )
    for host_address in ("127.0.0.1", sandbox.HOST_UPLINK):  # connections from the host itself too
        assert in_ns(HOST_NS, "busybox", "wget", "-q", "-O-", f"http://{host_address}:8080{url}").stdout.strip() == want
    assert f"tcp dport 8080 dnat to {inspect(name)['NetworkSettings']['address']}:80" in nft_table()
    minibox("rm", "-f", name, check=True)
    assert "dport 8080" not in nft_table()
    gone = in_ns(INET_NS, "timeout", "5", "busybox", "wget", "-q", "-O-", f"http://{sandbox.HOST_UPLINK}:8080{url}")
    assert gone.returncode == 1 and "Connection refused" in gone.stderr  # (busybox wget -T segfaults)


def test_iptables_view_says_what_the_nft_table_does(practice_net, name: str) -> None:
    start_detached(name, "--net", "bridge", "-p", "8081:80", "busybox", "sleep", "60")
    minibox("network", "create", "second", check=True)  # so that there is an isolation rule
    try:
        view = minibox("network", "rules", "--iptables", check=True).stdout
        _compare_with_nft(view)
    finally:
        minibox("network", "rm", "second", check=True)


def _compare_with_nft(view: str) -> None:
    translated = subprocess.run(
        ["iptables-restore-translate", "-f", "/dev/stdin"], input=view, capture_output=True, text=True, check=True
    ).stdout
    table = nft_table()
    # "add rule ip nat CHAIN MATCHES... VERDICT"; our own chain is called "published" in nft.
    rules = [line.split(" ", 5)[5].replace("counter ", "").replace(f"jump {PREFIX.upper()}", "jump published")
             for line in translated.splitlines() if line.startswith("add rule")]  # fmt: skip
    assert any("dnat to" in rule for rule in rules) and any("masquerade" in rule for rule in rules)
    assert any(rule.endswith(" drop") for rule in rules)
    for rule in rules:
        # iptables-translate orders matches its own way: compare the words, not the order.
        assert any(set(rule.split()) == set(line.split()) for line in _nft_rule_lines(table)), (rule, table)
    assert "-j DNAT --to-destination" in view and "MASQUERADE" in view


def _nft_rule_lines(table: str) -> list[str]:
    text = re.sub(r'comment "[^"]*"', "", table)
    return text.replace("{", "\n").replace("}", "\n").replace(";", "\n").splitlines()


def test_addresses_are_never_handed_out_twice(practice_net) -> None:
    names = [f"ipam-{i}-{os.urandom(2).hex()}" for i in range(6)]
    try:
        threads = [threading.Thread(target=start_detached, args=(n, "--net", "bridge", "busybox", "sleep", "60"))
                   for n in names]  # fmt: skip
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        addresses = [inspect(n)["NetworkSettings"]["address"] for n in names]
        assert len(set(addresses)) == len(names)
        # A freed address is reused only after the others: the next one is new.
        minibox("rm", "-f", names[0], check=True)
        start_detached(names[0], "--net", "bridge", "busybox", "sleep", "60")
        assert inspect(names[0])["NetworkSettings"]["address"] not in addresses
    finally:
        minibox("rm", "-f", *names)
    assert network_json("bridge")["leases"] == {}


def test_gc_frees_what_a_killed_container_held(practice_net, name: str) -> None:
    start_detached(name, "--net", "bridge", "-p", "8082:80", "busybox", "sleep", "60")
    details = inspect(name)
    supervisor = json.load(open(os.path.join(details["Paths"]["State"])))["supervisor_pid"]
    os.kill(supervisor, 9)  # the shim dies: nobody will finalize the container
    os.kill(details["State"]["Pid"], 9)
    assert wait_for(lambda: details["NetworkSettings"]["veth"] not in links())
    assert "dport 8082" in nft_table()  # still there: nobody cleaned up yet
    out = minibox("gc", check=True).stdout
    assert "marked stopped" in out
    assert details["NetworkSettings"]["address"] not in network_json("bridge")["leases"]
    assert "dport 8082" not in nft_table()


def test_net_container_shares_the_namespace(practice_net, name: str) -> None:
    start_detached(name, "--net", "bridge", "busybox", "sleep", "60")
    address = inspect(name)["NetworkSettings"]["address"]
    shared = minibox("run", "--rm", "--net", f"container:{name}", "busybox", "ip", "-o", "-4", "addr", check=True)
    assert address in shared.stdout
    hosts = minibox("run", "--rm", "--net", f"container:{name}", "busybox", "cat", "/etc/hosts", check=True)
    assert f"{address}\t" in hosts.stdout and name in hosts.stdout  # its names too


def test_net_host_means_the_sandbox_host(practice_net) -> None:
    out = minibox("run", "--rm", "--net", "host", "busybox", "ip", "-o", "link", check=True).stdout
    assert "mb-uplink" in out


# --- bad input: a one-line error, nothing half made ------------------------------------------------


def _state() -> tuple:
    return links(), nft_table(), minibox("network", "ls").stdout, minibox("ps", "-a", "-q").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["network", "create", "--subnet", "10.1.2.3", "bad"], "expected"),
        (["network", "create", "--subnet", "not-a-net", "bad"], "CIDR"),
        (["network", "create", "--subnet", "10.9.0.1/24", "bad"], "the network's own address, i.e. 10.9.0.0/24"),
        (["network", "create", "--subnet", "10.9.0.0/30", "bad"], "/8 to /29"),
        (["network", "create", "--subnet", "172.29.128.0/24", "bad"], "does not overlap network bridge"),
        (["network", "create", "--subnet", "192.0.2.0/28", "bad"], "route via mb-uplink"),
        (["network", "create", "--subnet", "0.0.0.0/8", "bad"], "not 0/8"),
        (["network", "create", "--subnet", "240.1.0.0/16", "bad"], "reserved 240/4"),
        (["network", "create", "host"], "network name"),
        (["network", "create", "bridge"], "already exists"),
        (["network", "rm", "nope"], "network 'nope' not found"),
        (["run", "--rm", "--net", "nope", "busybox", "true"], "network 'nope' not found"),
        (["run", "--rm", "--net", "bridge", "-p", "70000:80", "busybox", "true"], "ports from 1 to 65535"),
        (["run", "--rm", "--net", "bridge", "-p", "0:80", "busybox", "true"], "ports from 1 to 65535"),
        (["run", "--rm", "--net", "bridge", "-p", "80", "busybox", "true"], "HOSTPORT:CONTAINERPORT"),
        (["run", "--rm", "--net", "bridge", "-p", "80:80/sctp", "busybox", "true"], "HOSTPORT:CONTAINERPORT"),
        (["run", "--rm", "-p", "8080:80", "busybox", "true"], "add --net bridge"),
        (["run", "--rm", "--net", "bridge", "-p", "90:80", "-p", "90:81", "busybox", "true"], "each host port once"),
        (["run", "--rm", "--net", "container:nope", "busybox", "true"], "no such container"),
    ],
)
def test_bad_input_is_refused_cleanly(practice_net, args: list[str], message: str) -> None:
    minibox("network", "create", "bridge")  # may exist already: that is what one case needs
    minibox("run", "--rm", "--net", "bridge", "busybox", "true", check=True)  # the default network exists
    before = _state()
    result = minibox(*args)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert _state() == before


def test_port_already_published_is_refused(practice_net, name: str) -> None:
    start_detached(name, "--net", "bridge", "-p", "8090:80", "busybox", "sleep", "60")
    before = _state()
    result = minibox("run", "--rm", "--net", "bridge", "-p", "8090:81", "busybox", "true")
    assert result.returncode != 0 and f"already in use by container {name}" in result.stderr
    assert _state() == before


def test_port_bound_by_a_host_program_is_refused(practice_net) -> None:
    listener = subprocess.Popen(["ip", "netns", "exec", HOST_NS, "busybox", "nc", "-l", "-p", "8095"])
    try:
        assert wait_for(lambda: ":8095" in in_ns(HOST_NS, "ss", "-ltn").stdout)
        result = minibox("run", "--rm", "--net", "bridge", "-p", "8095:80", "busybox", "true")
        assert result.returncode != 0 and "already in use by a program on the host" in result.stderr
    finally:
        listener.kill()
        listener.wait()


def test_network_in_use_is_not_removed(practice_net, name: str) -> None:
    minibox("network", "create", "busy", check=True)
    try:
        start_detached(name, "--net", "busy", "busybox", "sleep", "60")
        result = minibox("network", "rm", "busy")
        assert result.returncode != 0 and f"in use by {name}" in result.stderr
        assert network_json("busy")["bridge"] in links()
    finally:
        minibox("rm", "-f", name)
        minibox("network", "rm", "busy", check=True)
    assert "busy" not in minibox("network", "ls").stdout


def test_netlink_calls_work_inside_a_running_event_loop(practice_net) -> None:
    """A Textual app's main thread and a Jupyter kernel run asyncio loops; pyroute2 must still work."""
    import asyncio

    from engine.observe import view

    async def look() -> list[dict]:
        return view("network", f"/run/netns/{HOST_NS}")

    rows = asyncio.run(look())
    assert {"mb-uplink", "lo"} <= {r["name"] for r in rows if r["kind"] == "link"}


def test_a_shell_inside_a_sandbox_must_say_so(practice_net) -> None:
    """In a practice namespace without MINIBOX_HOST_NETNS, minibox would split a network in two."""
    env = {k: v for k, v in os.environ.items() if k != "MINIBOX_HOST_NETNS"}
    result = subprocess.run(["nsenter", f"--net=/run/netns/{HOST_NS}", *__import__("conftest").MINIBOX,
                             "network", "create", "split"], capture_output=True, text=True, env=env)  # fmt: skip
    assert result.returncode != 0
    assert f"export MINIBOX_HOST_NETNS={HOST_NS}" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "split" not in minibox("network", "ls").stdout


def test_network_ls_shows_every_host_side_and_a_wrong_side_is_named(practice_net) -> None:
    """Made in the practice namespace, a network is listed from the machine's side too (with where
    it lives), and using it from there names the namespace to use."""
    minibox("network", "create", "sides", check=True)
    machine = {k: v for k, v in os.environ.items() if k != "MINIBOX_HOST_NETNS"}
    try:
        listed = subprocess.run([*MINIBOX, "network", "ls"], capture_output=True, text=True, env=machine).stdout
        assert any(line.split()[0] == "sides" and line.split()[-1] == HOST_NS for line in listed.splitlines())
        wrong = subprocess.run([*MINIBOX, "network", "inspect", "sides"], capture_output=True, text=True, env=machine)
        assert wrong.returncode != 0 and f"MINIBOX_HOST_NETNS={HOST_NS}" in wrong.stderr, wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1
    finally:
        minibox("network", "rm", "sides", check=True)


def test_a_network_is_used_only_from_the_namespace_it_was_made_in(tmp_path) -> None:
    """Two throwaway namespaces (unshare --net) stand for "where it was made" and "somewhere else"."""
    env = {k: v for k, v in os.environ.items() if k != "MINIBOX_HOST_NETNS"}
    env["MINIBOX_ROOT"] = str(tmp_path / "root")  # a state root of its own: its "" networks are only these
    made = subprocess.run(["unshare", "--net", *__import__("conftest").MINIBOX, "network", "create", "here"],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    elsewhere = subprocess.run(["unshare", "--net", *__import__("conftest").MINIBOX, "network", "rm", "here"],
                               capture_output=True, text=True, env=env)  # fmt: skip
    assert elsewhere.returncode != 0 and "made in another network namespace" in elsewhere.stderr
    assert len(elsewhere.stderr.strip().splitlines()) == 1
