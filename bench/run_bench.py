"""minibox's start-up time against reference tools, measured side by side in one run.

    make bench              (or: .venv/bin/python bench/run_bench.py [--runs N])

Compares, as medians over interleaved rounds (each round runs every tool once, so drift in the
machine's load touches all of them alike):

- ``minibox run --rm busybox true`` (the CLI, a fresh Python process each time)
- ``runc run`` of the same busybox rootfs with the same namespaces (pid, net, ipc, uts, mnt, cgroup)
- ``crun run`` of the same bundle, on a pure cgroup v2 machine only (crun refuses v1 and hybrid
  layouts): ``tests/vm/run-in-cgroup2-vm.sh .venv/bin/python bench/run_bench.py`` runs the whole
  bench in the pure v2 VM
- ``unshare --fork --pid --mount --uts --ipc chroot ROOTFS true`` (namespaces and nothing else)
- the library's ``engine.run`` called from a warm Python process (a Python program using
  the library; the issue's target assumed the TUI and notebooks start containers this way, but
  they run the lab's ``minibox`` commands in a shell: the CLI row above), against the
  ``unshare`` figure: with minibox's default namespaces (also net and cgroup), with the four
  ``unshare`` makes (pid, mnt, uts, ipc), like for like, and with the TUI's library (textual)
  loaded in the process too. Each runs in a worker process of its own
  (``in_process_worker.py``) that imported only ``engine`` (and textual for the third): a
  process's weight (its modules, its memory) is paid again on every fork it makes
- 100 containers one after another: the last ten against the first ten, and what was left over

The command-line rows run round-robin (each round runs every tool once), so a machine that
slows down for a minute slows all of them alike. The in-process rows run as a warm process runs
them, back to back, in blocks of ten beside a block of ten ``unshare`` runs, the blocks taking
turns: a block does not pay for the background cleanup of another tool's namespaces (the kernel
frees a network namespace in a worker thread after an RCU grace period), and drift still touches
every row alike.

Everything lives under a state root and a cgroup prefix of its own (``minibox-bench-XXXX``),
removed at the end. Its ``run`` directory is a tmpfs, as ``/run`` is on a standard machine (systemd
mounts it so; this development VM's ``/run`` is on its disk), and runc keeps its state there too
(``runc --root``): both engines' runtime state in memory, minibox's layers and records on disk.
Results are printed as a table of ratios; copy them into bench/README.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
RUN_ID = os.urandom(3).hex()
ROOT = f"/tmp/minibox-bench-{RUN_ID}"
PREFIX = f"minibox-bench-{RUN_ID}"
os.environ.update(MINIBOX_ROOT=ROOT, MINIBOX_PREFIX=PREFIX)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # users' installs cache bytecode; so does the bench
MINIBOX = os.path.join(os.path.dirname(sys.executable), "minibox")


UNSHARE = "unshare --fork --pid --mount --uts --ipc chroot"
UNSHARE_IN_BLOCKS = "unshare ... chroot ... true"
CRUN = "crun run (the same bundle as runc)"
IN_PROCESS = "engine.run: warm process, default namespaces"
IN_PROCESS_LIKE_UNSHARE = "engine.run: warm process, unshare's namespaces"
IN_PROCESS_TUI = "engine.run: the same, textual loaded too"
WORKERS = {  # in-process rows: bench/in_process_worker.py arguments
    IN_PROCESS_LIKE_UNSHARE: ["--namespaces", "unshare"],
    IN_PROCESS: ["--namespaces", "default"],
    IN_PROCESS_TUI: ["--namespaces", "default", "--preload", "textual.app"],
}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"bench: {' '.join(command)} failed: {result.stderr.decode().strip()}")
    return elapsed


def start_worker(arguments: list[str]) -> subprocess.Popen:
    """A warm process of its own for in-process rows (see bench/in_process_worker.py), ready."""
    worker = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "in_process_worker.py"), *arguments],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if worker.stdout.readline().strip() != "ready":
        raise SystemExit(f"bench: the in-process worker ({' '.join(arguments)}) did not start")
    return worker


def runc_bundle(rootfs: str) -> str:
    bundle = os.path.join(ROOT, "runc-bundle")
    os.makedirs(bundle)
    shutil.copytree(rootfs, os.path.join(bundle, "rootfs"), symlinks=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["process"].update(terminal=False, args=["true"])
    namespaces = config["linux"]["namespaces"]
    if not any(ns["type"] == "cgroup" for ns in namespaces):
        namespaces.append({"type": "cgroup"})  # minibox makes a cgroup namespace by default too
    config["linux"]["cgroupsPath"] = f"/{PREFIX}/runc"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=40, help="rounds for the side-by-side comparison")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (sudo make bench)")
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", os.path.join(os.path.dirname(HERE), "engine")], check=True
    )
    import engine
    from engine import images
    from engine.state import Paths

    os.makedirs(Paths().run)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=711,size=256m", f"{PREFIX}-run", Paths().run], check=True)
    try:
        rootfs = images.get(Paths(), "busybox").layers[-1]  # the built-in image is one layer
        tools = {
            "minibox run --rm busybox true": [MINIBOX, "run", "--rm", "busybox", "true"],
            UNSHARE: [
                "unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "chroot", rootfs, "true"
            ],
        }  # fmt: skip
        if shutil.which("runc"):
            bundle = runc_bundle(rootfs)
            runc_root = os.path.join(Paths().run, "runc")
            tools["runc run (same rootfs, same namespaces)"] = [
                "runc", "--root", runc_root, "run", "--bundle", bundle, f"mbx-{RUN_ID}"
            ]  # fmt: skip
            from engine import cgroups

            if shutil.which("crun") and cgroups.detect_layout() == "unified":  # crun refuses v1/hybrid
                tools[CRUN] = ["crun", "--root", os.path.join(Paths().run, "crun"), "run", "--bundle", bundle,
                               f"mbx-c-{RUN_ID}"]  # fmt: skip
        samples: dict[str, list[float]] = {name: [] for name in [*tools, UNSHARE_IN_BLOCKS, *WORKERS]}
        # The bench's own setup (the image, runc's copy of the rootfs) leaves dirty data: written out
        # now, not by the flusher in the middle of the timings (a metadata change waits for it).
        os.sync()
        for _ in range(2):  # warm-up: page cache, first cgroup directories
            for command in tools.values():
                timed(command)
        for _ in range(args.runs):  # a round: every tool once
            for name, command in tools.items():
                samples[name].append(timed(command))
        workers: dict[str, subprocess.Popen] = {}
        try:
            for name, arguments in WORKERS.items():
                workers[name] = start_worker(arguments)
            os.sync()
            for _ in range(max(1, args.runs // 4)):  # blocks of ten, taking turns
                for _ in range(10):
                    samples[UNSHARE_IN_BLOCKS].append(timed(tools[UNSHARE]))
                for name, worker in workers.items():
                    worker.stdin.write("10\n")
                    worker.stdin.flush()
                    block = [float(t) for t in worker.stdout.readline().split()]
                    if len(block) != 10:  # it died (its error went to stderr, above)
                        raise SystemExit(f"bench: the in-process worker for {name!r} failed")
                    samples[name] += block
        finally:
            for worker in workers.values():
                worker.stdin.close()  # end of input: the worker returns
                worker.wait()

        sequence = [timed(tools["minibox run --rm busybox true"]) for _ in range(100)]
        trash = Paths().trash  # --rm containers that wrote nothing: deleted by the next start (or gc)
        awaiting = len(os.listdir(trash)) if os.path.isdir(trash) else 0
        left = len(os.listdir(Paths().containers)) + len(os.listdir(Paths().runtime)) + len(engine.gc())
        left += len(os.listdir(trash)) if os.path.isdir(trash) else 0  # gc empties it
    finally:
        subprocess.run([MINIBOX, "gc"], capture_output=True)
        subprocess.run(["umount", Paths().run])
        shutil.rmtree(ROOT, ignore_errors=True)
        # runc leaves its cgroup parent (cgroupsPath's directory) in every hierarchy it used
        for parent in glob.glob(f"/sys/fs/cgroup/*/{PREFIX}") + glob.glob(f"/sys/fs/cgroup/{PREFIX}"):
            os.rmdir(parent)

    medians = {name: median_ms(s) for name, s in samples.items()}
    runc = medians.get("runc run (same rootfs, same namespaces)")
    cli = medians["minibox run --rm busybox true"]
    print(f"\n{'what (round-robin)':<48}{'median ms':>10}")
    for name in tools:
        print(f"{name:<48}{medians[name]:>10.1f}")
    print(f"{'(blocks of ten, back to back)':<48}")
    for name in (UNSHARE_IN_BLOCKS, *WORKERS):
        print(f"{name:<48}{medians[name]:>10.1f}")
    unshare = medians[UNSHARE_IN_BLOCKS]
    print("\nratios (target in brackets)")
    if runc:
        print(f"  minibox CLI / runc                              {cli / runc:5.2f}x  [<= 1.0]")
    if CRUN in medians:
        print(f"  minibox CLI / crun                              {cli / medians[CRUN]:5.2f}x  (no target)")
    for name, label in ((IN_PROCESS_LIKE_UNSHARE, "in-process, unshare's namespaces"),
                        (IN_PROCESS, "in-process, default namespaces"),
                        (IN_PROCESS_TUI, "in-process, textual loaded")):  # fmt: skip
        print(f"  {label + ' / unshare':<46}{medians[name] / unshare:5.2f}x  [<= 2.0]")
    first, last = statistics.mean(sequence[:10]), statistics.mean(sequence[-10:])
    print(
        f"  100 in a row: last ten / first ten              {last / first:5.2f}x  [<= 1.2]   leftovers: {left}  [0]"
        f"  (in trash/ for the next start: {awaiting})"
    )
    print(f"\n{args.runs} rounds, {os.cpu_count()} CPUs, kernel {os.uname().release}, Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
