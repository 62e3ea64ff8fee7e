"""Each namespace isolates what it should, on the real kernel, and only when asked for."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from conftest import inspect, minibox, wait_for

from engine.namespaces import NAMES, inodes


def run(*args: str) -> str:
    result = minibox("run", "--rm", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_uts_hostname_is_the_containers_own():
    assert run("-h", "learner-box", "busybox", "hostname").strip() == "learner-box"
    assert socket.gethostname() != "learner-box"


def test_pid_namespace_makes_the_command_pid_1():
    out = run("busybox", "sh", "-c", "echo $$; ps -o pid,comm")
    lines = out.split("\n")
    assert lines[0] == "1"
    pids = [line.split()[0] for line in lines[2:] if line.strip()]
    assert "1" in pids and len(pids) <= 3  # sh and ps: the host's processes are invisible


def test_the_caller_gets_its_own_pid_namespace_back_for_later_children():
    """One fork: minibox unshares CLONE_NEWPID in its own process, forks the init, and must then
    point its pid_for_children home again, or whatever it forks next (the TUI's `ps`, a second
    container's init) would be born in the first container's namespace, or not at all."""
    import engine
    from engine.errors import CommandNotFound
    from engine.spec import DEFAULT_NAMESPACES

    def for_children() -> int:
        return os.stat("/proc/self/ns/pid_for_children").st_ino

    home = os.stat("/proc/self/ns/pid").st_ino
    assert engine.run(engine.ContainerSpec("busybox", ["true"], auto_remove=True)) == 0
    assert for_children() == home
    with pytest.raises(CommandNotFound):  # the init fails before exec: reaped, and we are home too
        engine.run(engine.ContainerSpec("busybox", ["no-such-command"], auto_remove=True))
    assert for_children() == home
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child of ours is left over, not even a zombie
    with_user = engine.ContainerSpec("busybox", ["true"], auto_remove=True, namespaces=DEFAULT_NAMESPACES | {"user"})
    assert engine.run(with_user) == 0 and for_children() == home  # the two-fork way (an intermediate)


@pytest.mark.parametrize("extra", [set(), {"user"}], ids=["one fork", "two forks"])
def test_a_cgroup_the_parent_cannot_make_fails_the_start_and_leaves_nothing(monkeypatch, extra):
    """The parent makes the cgroup while the init wakes up (process.LaunchPlan.make_cgroup): if
    that fails, the waiting child is gone too, and so is everything create() made."""
    import engine
    from engine import cgroups
    from engine.errors import MiniboxError
    from engine.spec import DEFAULT_NAMESPACES
    from engine.state import Paths

    def refuse(group: str, limits: object) -> None:
        os.makedirs(next(iter(cgroups.driver().directories(group).values())))  # half made, then:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cgroups.driver(), "create", refuse)

    def what_is_there() -> tuple:
        paths = Paths()
        paths.ensure()
        listed = [sorted(os.listdir(d)) for d in (paths.containers, paths.runtime, "/proc/self/fd")]
        return (*listed, minibox("ps", "-a", "-q").stdout)

    before = what_is_there()
    spec = engine.ContainerSpec("busybox", ["true"], auto_remove=True, namespaces=DEFAULT_NAMESPACES | extra)
    with pytest.raises(MiniboxError, match="cannot create the container's cgroup: Permission denied"):
        engine.run(spec)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # the child that waited for its cgroup was killed and reaped
    assert what_is_there() == before  # directories, records, and no descriptor of ours left open
    monkeypatch.undo()
    assert not cgroups.driver().children(os.environ["MINIBOX_PREFIX"])  # the half-made group is removed


def test_pid_host_shows_the_hosts_processes():
    out = run("--pid", "host", "busybox", "sh", "-c", "ps -o pid | wc -l")
    assert int(out) > 10


def test_mount_namespace_keeps_mounts_inside():
    out = run(
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /mnt/scratch && mount -t tmpfs none /mnt/scratch && grep scratch /proc/mounts",
    )
    assert "/mnt/scratch" in out
    with open("/proc/mounts") as f:
        assert "/mnt/scratch" not in f.read()


@pytest.mark.parametrize("mode", ["pivot_root", "chroot"])
def test_pivot_root_leaves_the_host_tree_behind_but_chroot_does_not(name, mode):
    extra = ["--chroot"] if mode == "chroot" else []
    minibox("run", "-d", "--name", name, *extra, "busybox", "sleep", "60", check=True)
    pid = inspect(name)["State"]["Pid"]
    # Enter only the container's mount namespace: its root is whatever that namespace's "/" is.
    host_dir_visible = subprocess.run(
        ["nsenter", f"--mount=/proc/{pid}/ns/mnt", "test", "-d", os.environ["MINIBOX_ROOT"]]
    )
    # With pivot_root the host's tree was unmounted from the namespace; chroot only moved "/" for
    # one process, so the whole host filesystem is still in its mount namespace.
    assert (host_dir_visible.returncode == 0) == (mode == "chroot")


def test_ipc_namespace_hides_message_queues_from_the_host(name):
    minibox("run", "-d", "--name", name, "busybox", "sh", "-c", "ipcmk -Q; sleep 60", check=True)
    assert wait_for(lambda: "0x" in minibox("exec", name, "ipcs", "-q").stdout)
    inside = minibox("exec", name, "ipcs", "-q").stdout
    key = next(word for word in inside.split() if word.startswith("0x"))
    with open("/proc/sysvipc/msg") as f:
        host_keys = {int(line.split()[0]) for line in f.readlines()[1:]}
    assert int(key, 16) not in host_keys
    # a second container has its own, empty IPC namespace
    assert "0x" not in run("busybox", "ipcs", "-q")


def test_net_namespace_has_only_loopback_and_it_is_up():
    out = run("busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    assert "UP" in out
    assert run("busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1").count("1 packets received") == 1


def test_user_namespace_root_inside_is_unprivileged_outside(name):
    minibox("run", "-d", "--name", name, "--userns", "private", "busybox", "sh", "-c", "sleep 60", check=True)
    assert minibox("exec", name, "id", "-u").stdout.strip() == "0"
    assert minibox("exec", name, "cat", "/proc/self/uid_map").stdout.split() == ["0", "100000", "65536"]
    pid = inspect(name)["State"]["Pid"]
    with open(f"/proc/{pid}/status") as f:
        uid_line = next(line for line in f if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["100000"] * 4
    # root inside may write its own files (the image copy is owned by the mapped root) ...
    assert minibox("exec", name, "sh", "-c", "echo x > /etc/motd && cat /etc/motd").stdout == "x\n"
    # ... but its CAP_CHOWN reaches only IDs in its map: uid 70000 does not exist for it, while
    # real root (no user namespace) may give a file to anyone
    chown = "touch /tmp/f && chown 70000 /tmp/f"
    assert "Invalid argument" in minibox("exec", name, "sh", "-c", chown).stderr
    assert run("busybox", "sh", "-c", chown) == ""


def test_cgroup_namespace_shows_the_container_group_as_root():
    out = run("busybox", "cat", "/proc/self/cgroup")
    assert all(line.endswith(":/") for line in out.split())
    out = run("--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup")
    assert os.environ["MINIBOX_PREFIX"] in out


def test_time_namespace_offsets_uptime():
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    inside = float(run("--boottime-offset", "864000", "busybox", "cat", "/proc/uptime").split()[0])
    assert inside >= host_uptime + 864000 - 5
    # With a user namespace too (it owns the time namespace): the offsets were written after the
    # switch to its root, when /proc/self was no longer ours to write ("a bug in minibox").
    with_userns = run("--userns", "private", "--boottime-offset", "864000", "busybox", "cat", "/proc/uptime")
    inside = float(with_userns.split()[0])
    assert inside >= host_uptime + 864000 - 5


@pytest.mark.parametrize("shared", ["pid", "uts", "ipc", "net", "cgroup", "mnt"])
def test_proc_ns_inodes_differ_from_the_host_exactly_as_asked(name, shared):
    option = {"net": "--net", "cgroup": "--cgroupns", "mnt": "--mntns"}.get(shared, f"--{shared}")
    extra = ["--chroot"] if shared == "mnt" else []
    minibox("run", "-d", "--name", name, option, "host", *extra, "busybox", "sleep", "60", check=True)
    pid = inspect(name)["State"]["Pid"]
    host, container = inodes("self"), inodes(pid)
    private = {"pid", "uts", "ipc", "net", "cgroup", "mnt"} - {shared}
    for ns in NAMES:
        assert (container[ns] != host[ns]) == (ns in private), ns
    reported = inspect(name)["Namespaces"]
    assert {ns for ns, info in reported.items() if not info["shared_with_host"]} == private
    # what a learner types: ls -l /proc/$$/ns inside shows the same inodes the host sees for PID
    listing = minibox("exec", name, "sh", "-c", "ls -l /proc/$$/ns").stdout
    assert f"uts:[{container['uts']}]" in listing


def test_user_namespace_sees_the_image_as_its_own_at_every_depth():
    out = run("--userns", "private", "busybox", "sh", "-c", "stat -c '%u %n' / /bin /usr/bin /usr/bin/ipcs /tmp")
    assert [line.split()[0] for line in out.splitlines()] == ["0"] * 5, out
    assert run("--userns", "private", "busybox", "sh", "-c", "touch /tmp/x /usr/bin/y && echo ok").strip() == "ok"


def test_containers_keep_only_the_default_capabilities():
    from engine.capabilities import CAPABILITIES, DEFAULT

    expected = sum(1 << CAPABILITIES[c] for c in DEFAULT)
    bounding = run("busybox", "sh", "-c", "grep CapBnd /proc/self/status").split()[1]
    assert int(bounding, 16) == expected
    refused = minibox("run", "--rm", "busybox", "sh", "-c", "mkdir /m; mount -t tmpfs t /m; mknod /n c 1 3; hostname x")
    assert refused.stderr.count("Operation not permitted") == 2 and "mount: permission denied" in refused.stderr
    assert run("--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", "mkdir /m; mount -t tmpfs t /m && echo ok") == "ok\n"
    everything = run("--privileged", "busybox", "sh", "-c", "grep CapBnd /proc/self/status").split()[1]
    with open("/proc/self/status") as f:
        assert everything == next(line.split()[1] for line in f if line.startswith("CapBnd"))
    dropped = run("--cap-drop", "NET_RAW", "busybox", "sh", "-c", "grep CapBnd /proc/self/status").split()[1]
    assert int(dropped, 16) == expected & ~(1 << CAPABILITIES["NET_RAW"])
