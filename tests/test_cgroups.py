"""cgroup limits on the real kernel: memory (OOM kill reported), CPU quota (throttling), pids."""

from __future__ import annotations

import os

from conftest import inspect, minibox, wait_for

from engine import cgroups

MEMORY_HOG = 'x=a; while true; do x="$x$x"; done'


def test_layout_is_detected_from_the_filesystem_types():
    layout = cgroups.detect_layout()
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        assert layout == "unified" and cgroups.driver().version == "v2"
    else:
        assert layout in ("hybrid", "legacy") and cgroups.driver().version == "v1"
        assert (layout == "hybrid") == os.path.exists("/sys/fs/cgroup/unified/cgroup.procs")


def test_memory_limit_is_visible_inside_and_oom_kill_is_reported(name):
    inside = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    out = minibox("run", "--rm", "-m", "32m", "busybox", "sh", "-c", inside, check=True).stdout
    assert out.strip() == str(32 * 1024 * 1024)  # the container sees its own limit
    result = minibox("run", "--name", name, "-m", "16m", "busybox", "sh", "-c", MEMORY_HOG)
    assert result.returncode == 137  # SIGKILL from the OOM killer
    state = inspect(name)["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137


def test_a_container_within_its_memory_limit_is_not_reported_oom(name):
    minibox("run", "-d", "--name", name, "-m", "64m", "busybox", "sleep", "60", check=True)
    minibox("kill", name, check=True)
    assert wait_for(lambda: inspect(name)["State"]["ExitCode"] is not None)
    state = inspect(name)["State"]
    assert state["ExitCode"] == 137 and state["OOMKilled"] is False  # killed, but not by the OOM killer


def test_cpu_quota_throttles(name):
    minibox("run", "-d", "--name", name, "--cpus", "0.2", "busybox", "sh", "-c", "while true; do :; done", check=True)
    stats = inspect(name)["Cgroup"]["Stats"]
    assert stats["cpu_quota_us"] == 20000 and stats["cpu_period_us"] == 100000
    assert wait_for(lambda: (inspect(name)["Cgroup"]["Stats"]["cpu_throttled_periods"] or 0) >= 3, timeout=5)
    first = inspect(name)["Cgroup"]["Stats"]["cpu_throttled_periods"]
    assert wait_for(lambda: inspect(name)["Cgroup"]["Stats"]["cpu_throttled_periods"] > first, timeout=5)
    # and the quota holds: at most ~20% of one CPU over the container's life so far
    stats = inspect(name)["Cgroup"]["Stats"]
    assert stats["cpu_usage_ns"] <= 0.2 * 1.5 * stats["cpu_periods"] * 100_000 * 1000


def test_without_a_quota_nothing_is_throttled(name):
    minibox("run", "-d", "--name", name, "busybox", "sh", "-c", "while true; do :; done", check=True)
    assert wait_for(lambda: (inspect(name)["Cgroup"]["Stats"]["cpu_usage_ns"] or 0) > 100_000_000, timeout=5)
    assert not inspect(name)["Cgroup"]["Stats"]["cpu_throttled_periods"]


def test_pids_limit_stops_a_fork_bomb(name):
    bomb = "sleep 1; bomb() { bomb | bomb & }; bomb; sleep 30"
    minibox("run", "-d", "--name", name, "--pids-limit", "40", "busybox", "sh", "-c", bomb, check=True)
    assert inspect(name)["Cgroup"]["Stats"]["pids_limit"] == 40  # checked before the bomb goes off
    assert wait_for(lambda: inspect(name)["Cgroup"]["Stats"]["pids_current"] >= 38, timeout=10)
    assert inspect(name)["Cgroup"]["Stats"]["pids_current"] <= 40
    assert "can't fork" in minibox("logs", name).stdout
    minibox("rm", "-f", name, check=True)


def test_the_cgroup_is_removed_when_the_container_exits(name):
    minibox("run", "-d", "--name", name, "-m", "32m", "busybox", "sleep", "60", check=True)
    directories = inspect(name)["Cgroup"]["Directories"]
    assert all(os.path.isdir(d) for d in directories.values())
    minibox("stop", "-t", "1", name, check=True)
    assert not any(os.path.exists(d) for d in directories.values())


def test_rm_removes_child_groups_made_inside_the_container_group(name):
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    directories = inspect(name)["Cgroup"]["Directories"]
    for directory in set(directories.values()):  # as a container with CAP_SYS_ADMIN could
        os.makedirs(os.path.join(directory, "made-inside", "deeper"))
    minibox("rm", "-f", name, check=True)
    assert not any(os.path.exists(d) for d in directories.values())
