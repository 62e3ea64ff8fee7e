"""Observers against the real kernel: they report what changed, and only that."""

from __future__ import annotations

import os
import subprocess

from conftest import inspect, minibox, wait_for

from engine.observe import diff_rows, snapshot, view


def test_a_new_uts_namespace_changes_exactly_one_inode():
    proc = subprocess.Popen(["unshare", "--uts", "sleep", "30"])
    try:
        assert wait_for(lambda: os.path.realpath(f"/proc/{proc.pid}/exe").endswith("sleep"))  # unshare has exec'd
        rows = diff_rows(view("namespaces", "self"), view("namespaces", proc.pid), key="type", compare="inode")
        assert [r["key"] for r in rows if r["status"] == "differs"] == ["uts"]
    finally:
        proc.kill()
        proc.wait()


def test_snapshot_of_host_and_container(name):
    minibox("run", "-d", "--name", name, "-m", "48m", "busybox", "sh", "-c", "sleep 60 & sleep 60", check=True)
    pid = inspect(name)["State"]["Pid"]
    both = snapshot(os.getpid(), pid)
    # namespaces: the container has its own of the six default types, shares user and time
    differs = {
        r["key"] for r in diff_rows(**both["namespaces"], key="type", compare="inode") if r["status"] == "differs"
    }
    assert differs == {"pid", "uts", "ipc", "net", "mnt", "cgroup"}
    # processes: seen from inside, PID 1 is the container's sh, which the host knows as `pid`
    inside = both["processes"]["container"]
    assert inside[0]["pid"] == 1 and inside[0]["host_pid"] == pid
    assert wait_for(lambda: len(view("processes", pid)) == 2)
    assert len(both["processes"]["host"]) > len(inside)
    # mounts: the container's root is the overlay, and nothing propagates back to the host
    container_mounts = both["mounts"]["container"]
    root = next(m for m in container_mounts if m["target"] == "/")
    assert root["fstype"] == "overlay"
    assert {m["propagation"] for m in container_mounts} == {"private"}
    # cgroups: the limit file under this machine's name for it
    files = {r["file"]: r["value"] for r in both["cgroups"]["container"]}
    limit = files.get("memory.limit_in_bytes") or files.get("memory.max")
    assert limit == str(48 * 1024 * 1024)
    # network: only lo inside, more than that on the host
    links = [r["name"] for r in both["network"]["container"] if r["kind"] == "link"]
    assert links == ["lo"]
    assert len([r for r in both["network"]["host"] if r["kind"] == "link"]) >= 1
