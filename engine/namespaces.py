"""The eight Linux namespaces, in the order a runtime creates or joins them.

A namespace wraps one global resource so that the processes inside see their own copy:

- **user**: user and group IDs. Root inside can be an unprivileged user outside (``uid_map``).
  It comes first: joining it first gives the capabilities needed to join the others.
- **pid**: process IDs. The first process created inside is PID 1, the namespace's init: it
  reaps orphans, and when it dies the kernel kills everything else inside. ``unshare(CLONE_NEWPID)``
  does not move the caller, only its future children: hence the extra fork in every runtime.
- **uts**: the hostname (and NIS domain name).
- **ipc**: System V IPC objects (``ipcmk``/``ipcs``) and POSIX message queues.
- **net**: network devices, addresses, routes, firewall rules, ports. A new one has only ``lo``.
- **cgroup**: what ``/proc/self/cgroup`` shows: the container's cgroup looks like the root.
- **mnt**: the mount table. Mounts made inside (proc, the root filesystem) stay inside.
- **time**: offsets for the ``CLOCK_MONOTONIC`` and ``CLOCK_BOOTTIME`` clocks (uptime), set once
  before the first process enters, so a container can have its own "time since boot".

Each namespace shows up as a link ``/proc/PID/ns/NAME -> NAME:[INODE]``: two processes are in the
same namespace exactly when the inode numbers are equal (this is what ``ls -l /proc/$$/ns`` shows).
"""

from __future__ import annotations

import os

from engine import syscalls
from engine.errors import KernelFeatureMissing


class Namespace:
    """One namespace type. (A plain class: ``typing`` costs 3 ms of start-up on every ``run``.)"""

    __slots__ = ("name", "proc_name", "flag", "kernel_option")

    def __init__(self, name: str, proc_name: str, flag: int, kernel_option: str) -> None:
        self.name = name  # the name minibox and its CLI use
        self.proc_name = proc_name  # the file under /proc/PID/ns/
        self.flag = flag  # CLONE_NEW* for unshare(2)/setns(2)
        self.kernel_option = kernel_option  # what provides it, for error messages


NAMESPACES: tuple[Namespace, ...] = (
    Namespace("user", "user", syscalls.CLONE_NEWUSER, "CONFIG_USER_NS"),
    Namespace("pid", "pid", syscalls.CLONE_NEWPID, "CONFIG_PID_NS"),
    Namespace("uts", "uts", syscalls.CLONE_NEWUTS, "CONFIG_UTS_NS"),
    Namespace("ipc", "ipc", syscalls.CLONE_NEWIPC, "CONFIG_IPC_NS"),
    Namespace("net", "net", syscalls.CLONE_NEWNET, "CONFIG_NET_NS"),
    Namespace("cgroup", "cgroup", syscalls.CLONE_NEWCGROUP, "CONFIG_CGROUPS"),
    Namespace("mnt", "mnt", syscalls.CLONE_NEWNS, "mount namespaces"),
    Namespace("time", "time", syscalls.CLONE_NEWTIME, "CONFIG_TIME_NS, Linux 5.6+"),
)
BY_NAME = {ns.name: ns for ns in NAMESPACES}
NAMES: tuple[str, ...] = tuple(ns.name for ns in NAMESPACES)


def flags_for(names: set[str] | frozenset[str]) -> int:
    """The unshare(2) flags for a set of namespace names."""
    flags = 0
    for name in names:
        flags |= BY_NAME[name].flag
    return flags


_supported: set[str] = set()  # the kernel's namespace types do not change while we run: ask once


def require_supported(names: set[str] | frozenset[str]) -> None:
    """Fail early, with the kernel option's name, if this kernel lacks one of the namespaces."""
    for name in names - _supported:
        ns = BY_NAME[name]
        if not os.path.exists(f"/proc/self/ns/{ns.proc_name}"):
            raise KernelFeatureMissing(f"{name} namespaces", ns.kernel_option)
        _supported.add(name)


def inode(pid: int | str, name: str) -> int | None:
    """The inode number identifying the namespace ``name`` of process ``pid`` (None if gone)."""
    try:
        return os.stat(f"/proc/{pid}/ns/{BY_NAME[name].proc_name}").st_ino
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def inodes(pid: int | str) -> dict[str, int | None]:
    """All eight namespace inodes of a process, in the canonical order."""
    return {ns.name: inode(pid, ns.name) for ns in NAMESPACES}


# /proc/sys/user/max_*_namespaces: a limit of 0 switches a namespace type off on this machine.
_LIMIT_FILES = {"user": "user", "pid": "pid", "uts": "uts", "ipc": "ipc", "net": "net", "cgroup": "cgroup",
                "mnt": "mnt", "time": "time"}  # fmt: skip


def explain_unshare_failure(names: frozenset[str] | set[str], errno_: int) -> Exception:
    """Turn a failed unshare(2) into an error naming the namespace and the setting to change."""
    from engine.errors import SyscallError

    for name in sorted(names, key=lambda n: n != "user"):
        path = f"/proc/sys/user/max_{_LIMIT_FILES[name]}_namespaces"
        try:
            with open(path) as f:
                limit = int(f.read())
        except (OSError, ValueError):
            continue
        if limit == 0:
            return KernelFeatureMissing(
                f"{name} namespaces",
                f"switched off: {path} is 0; `sysctl user.max_{name}_namespaces=15000` turns them on",
            )
    if errno_ == 1 and "user" in names:  # EPERM: e.g. a security module forbids user namespaces
        return KernelFeatureMissing(
            "user namespaces", "unshare(CLONE_NEWUSER) was refused (EPERM) by a security policy"
        )
    return SyscallError("unshare", errno_, ",".join(sorted(names)))
