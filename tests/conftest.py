"""Test set-up: real kernel, a private state root and name prefix per run, and a leak check.

Every test run gets ``MINIBOX_ROOT=/tmp/minibox-test-XXXX`` and ``MINIBOX_PREFIX=minibox-tXXXX``
(inherited by every ``minibox`` the tests start). When the session ends, a fixture looks at the
kernel's own lists for anything carrying this run's names: mounts, cgroup directories, processes,
network links, nft tables and namespaces. Anything found fails the run (and is then removed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN_ID = os.urandom(3).hex()
ROOT = f"/tmp/minibox-test-{RUN_ID}"
PREFIX = f"minibox-t{RUN_ID}"
os.environ["MINIBOX_ROOT"] = ROOT
os.environ["MINIBOX_PREFIX"] = PREFIX
MINIBOX = [sys.executable, "-m", "engine.cli"]


def pytest_configure(config: pytest.Config) -> None:
    if os.geteuid() != 0:
        raise pytest.UsageError("the tests use real namespaces, mounts and cgroups: run them as root (make test)")


def minibox(
    *args: str, check: bool = False, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run the real ``minibox`` command line; returns the completed process (text mode)."""
    result = subprocess.run([*MINIBOX, *args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"minibox {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def start_detached(name: str, *args: str) -> None:
    """``minibox run -d --name NAME ARGS...``, which must succeed."""
    minibox("run", "-d", "--name", name, *args, check=True)


def inspect(name: str) -> dict:
    return json.loads(minibox("inspect", name, check=True).stdout)[0]


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A unique container name for one test; the container is removed afterwards, even on failure."""
    container = f"t-{request.node.name[:30].replace('[', '-').replace(']', '')}-{os.urandom(2).hex()}"
    container = "".join(c if c.isalnum() or c in "-_." else "-" for c in container)
    yield container
    removed = minibox("rm", "-f", container)
    assert removed.returncode == 0 or "no such container" in removed.stderr, removed.stderr


# --- leak check -------------------------------------------------------------------------------


def _engine_links() -> set[str]:
    """Links in this machine's own network namespace that look like minibox's."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    return {n for n in names if n.startswith(("mb-", "mbbr-", "minibox"))}


LINKS_BEFORE = _engine_links()  # the tests make theirs in sandboxes: none may appear out here


def _engine_cgroups() -> set[str]:
    """cgroup directories named like minibox's, at the top of each hierarchy."""
    bases = [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]  # v2: the top; v1: each tree
    return {str(p) for base in bases for p in base.glob("minibox*")}


CGROUPS_BEFORE = _engine_cgroups()  # a test that ran minibox without this run's prefix shows up as a new one


def leftovers() -> list[str]:
    """What this run made that is still on the machine (the kernel's own lists, not the engine's)."""
    found = []
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if ROOT in line.split()[4] or PREFIX in line]
    for base in [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]:  # v2: the top; v1: each tree
        found += [f"cgroup {p}" for p in base.glob(f"{PREFIX}/*/")]  # a container's (minibox's own stays)
    found += [f"cgroup {p} (not this run's prefix)" for p in _engine_cgroups() - CGROUPS_BEFORE if PREFIX not in p]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cgroups = (proc / "cgroup").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if PREFIX in cgroups or ROOT in cmdline:
            found.append(f"process {proc.name}: {cmdline[:80]}")
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines() if PREFIX in line]
    found += [f"link {n} (in the machine's own network namespace)" for n in _engine_links() - LINKS_BEFORE]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [f"nft {line}" for line in tables.splitlines() if PREFIX in line]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [f"netns {line.split()[0]}" for line in netns.splitlines() if PREFIX in line]
    return found


@pytest.fixture(scope="session", autouse=True)
def machine_left_clean():
    """Fail the run if anything this run made is still on the machine at the end."""
    yield
    # Containers a test left (its own cleanup failed) count as leaks: list them before removing.
    left = [f"container {n}" for n in minibox("ps", "-a", "-q").stdout.split()]
    wait_for(lambda: not leftovers(), timeout=15)
    left += leftovers()
    for ref in minibox("ps", "-a", "-q").stdout.split():
        minibox("rm", "-f", ref)
    for directory in (Path(ROOT, "lib", "containers"), Path(ROOT, "run", "containers")):  # no container left:
        left += [f"directory {d}" for d in directory.glob("*")]  # each of their directories must be gone too
    minibox("gc")
    left += [f"trash {d} (after minibox gc)" for d in Path(ROOT, "lib", "trash").glob("*")]  # gc empties it
    for base in [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()]:  # gc removes minibox's own group
        left += [f"cgroup {p} (after minibox gc)" for p in base.glob(PREFIX)]
    shutil.rmtree(ROOT, ignore_errors=True)
    if left:
        pytest.fail("this test run left things on the machine:\n  " + "\n  ".join(left), pytrace=False)
