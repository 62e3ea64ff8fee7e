"""Container network set-up: pyroute2 (the engine) against a script of `ip` commands, and scale.

    make bench              (or: .venv/bin/python bench/net_bench.py [--runs N] [--containers N])

Everything happens in a practice network made for the run (``engine.network.sandbox``): no
packet and no link touches this machine's own network namespace.

- **one container's wiring**, interleaved round by round: the engine's ``links.plug_container``
  (netlink from a warm process: veth pair with its far end created in the container's namespace,
  plugged into the bridge, address, up, default route) against the same steps as a shell script
  of ``ip``/``nsenter`` commands, each round on a fresh process with its own network namespace;
- **N containers on one bridge** with ``minibox run -d --net bridge``: the mean start of the
  last ten against the first ten (should stay flat), then everything removed and counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RUN_ID = os.urandom(3).hex()
ROOT = f"/tmp/minibox-bench-{RUN_ID}"
PREFIX = f"minibox-bench-{RUN_ID}"
HOST_NS = f"mb-bench-{RUN_ID}"
os.environ.update(MINIBOX_ROOT=ROOT, MINIBOX_PREFIX=PREFIX, MINIBOX_HOST_NETNS=HOST_NS)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
MINIBOX = os.path.join(os.path.dirname(sys.executable), "minibox")

IP_SCRIPT = """
ip link add {veth} type veth peer name eth0 netns {pid}
ip link set {veth} master {bridge} up
nsenter -t {pid} -n ip addr add {address}/24 dev eth0
nsenter -t {pid} -n ip link set eth0 up
nsenter -t {pid} -n ip route add default via {gateway}
"""


def wiring(runs: int) -> tuple[list[float], list[float]]:
    from engine.network import links, netns

    bridge, gateway = "mb-benchbr0", "10.250.0.1"
    with netns.entered(f"/run/netns/{HOST_NS}"):
        links.ensure_bridge(bridge, gateway, 24)
        engine_times, script_times = [], []
        for i in range(runs):
            for kind in ("engine", "script"):
                target = subprocess.Popen(["unshare", "--net", "sleep", "60"])
                time.sleep(0.02)  # let unshare exec into sleep: its namespace is then the new one
                veth, address = f"mb-b{kind[0]}{i}", f"10.250.0.{2 + 2 * i + (kind == 'script')}"
                start = time.perf_counter()
                if kind == "engine":
                    links.plug_container(bridge, veth, target.pid, address, 24, gateway)
                    engine_times.append(time.perf_counter() - start)
                else:
                    steps = dict(veth=veth, pid=target.pid, bridge=bridge, address=address, gateway=gateway)
                    subprocess.run(["sh", "-e", "-c", IP_SCRIPT.format(**steps)], check=True)
                    script_times.append(time.perf_counter() - start)
                inside = ["nsenter", "-t", str(target.pid), "-n", "ip", "route"]
                route = subprocess.run(inside, capture_output=True, text=True)
                assert f"default via {gateway} dev eth0" in route.stdout, route.stdout  # both did the job
                target.kill()
                target.wait()
                links.delete_link(veth)
        links.delete_link(bridge)
    return engine_times, script_times


def many_containers(count: int) -> tuple[list[float], dict]:
    names = [f"bench-{i}" for i in range(count)]
    times = []
    for name in names:
        start = time.perf_counter()
        subprocess.run([MINIBOX, "run", "-d", "--name", name, "--net", "bridge", "busybox", "sleep", "600"],
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        times.append(time.perf_counter() - start)
    subprocess.run([MINIBOX, "rm", "-f", *names], check=True, stdout=subprocess.DEVNULL)
    inspected = subprocess.run([MINIBOX, "network", "inspect", "bridge"], capture_output=True, text=True)
    net = json.loads(inspected.stdout)[0]
    subprocess.run([MINIBOX, "network", "rm", "bridge"], check=True, stdout=subprocess.DEVNULL)
    links = subprocess.run(["ip", "-n", HOST_NS, "-o", "link"], capture_output=True, text=True).stdout
    rules = subprocess.run(["ip", "netns", "exec", HOST_NS, "nft", "list", "tables"], capture_output=True, text=True)
    names_left = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    left = {
        "links": [n for n in names_left if n.startswith(("mb-", "minibox")) and n != "mb-uplink"],
        "leases": len(net["leases"]),
        "nft tables": rules.stdout.split(),
    }
    return times, left


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds of the wiring comparison")
    parser.add_argument("--containers", type=int, default=50, help="containers on one bridge")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (make bench)")
    from engine.network import sandbox

    sandbox.up(HOST_NS)
    try:
        engine_times, script_times = wiring(args.runs)
        times, left = many_containers(args.containers)
    finally:
        subprocess.run([MINIBOX, "rm", "-f", *[f"bench-{i}" for i in range(args.containers)]], capture_output=True)
        sandbox.down(HOST_NS)
        subprocess.run(["rm", "-rf", ROOT])
    imports = [subprocess.run([sys.executable, "-X", "importtime", "-c", "import pyroute2"], capture_output=True,
                              text=True).stderr.splitlines()[-1].split("|")[1].strip() for _ in range(3)]  # fmt: skip
    engine_ms = statistics.median(engine_times) * 1000
    script_ms = statistics.median(script_times) * 1000
    first, last = statistics.mean(times[:10]), statistics.mean(times[-10:])
    print(f"{'what':<58}{'median ms':>10}")
    print(f"{'wiring one container: engine (pyroute2, warm process)':<58}{engine_ms:>10.2f}")
    print(f"{'wiring one container: shell script of ip/nsenter':<58}{script_ms:>10.2f}")
    print(f"{'import pyroute2 (paid once per process)':<58}{min(int(i) for i in imports) / 1000:>10.1f}")
    print(f"{f'minibox run -d --net bridge, first ten of {args.containers}':<58}{first * 1000:>10.1f}")
    print(f"{f'minibox run -d --net bridge, last ten of {args.containers}':<58}{last * 1000:>10.1f}")
    print("\nratios (target in brackets)")
    print(f"  engine wiring / ip script              {engine_ms / script_ms:.2f}x  [<= 0.5]")
    print(f"  last ten / first ten                   {last / first:.2f}x  [<= 1.2]")
    print(f"  left after rm + network rm             {left}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
