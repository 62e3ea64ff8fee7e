"""Capabilities: the pieces root's power is cut into, and the ones a container keeps.

Root's privileges are split into ~41 capabilities (``CAP_SYS_ADMIN`` for mount and sethostname,
``CAP_NET_ADMIN`` for network settings, ``CAP_SYS_MODULE`` for loading kernel modules...).
A process can only ever gain the capabilities in its **bounding set**, and the bounding set can
only shrink. So before ``execve``, the container's process drops from it everything outside the
list below (``prctl(PR_CAPBSET_DROP)``): its root then gets only those after ``execve``.

The list is docker's default without ``CAP_MKNOD``: docker can allow mknod because its devices
cgroup stops a container from opening the host's disks through a node it made; minibox has no
devices cgroup, so it keeps mknod away. ``--cap-add``/``--cap-drop`` change the list,
``--privileged`` keeps everything.
"""

from __future__ import annotations

from engine import syscalls
from engine.errors import BadValue
from engine.state import read_file

# Numbers from linux/capability.h.
CAPABILITIES = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
    "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
    "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}  # fmt: skip
DEFAULT = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP",
           "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")  # fmt: skip
PR_CAPBSET_DROP = 24


def normalize(name: str) -> str:
    cap = name.upper().removeprefix("CAP_")
    if cap != "ALL" and cap not in CAPABILITIES:
        raise BadValue("--cap-add/--cap-drop", name, "a capability such as SYS_ADMIN or NET_ADMIN (or ALL)")
    return cap


def resolve(add: list[str], drop: list[str], privileged: bool) -> list[str] | None:
    """The capability names a container keeps; None means all of them (``--privileged``)."""
    added, dropped = {normalize(c) for c in add}, {normalize(c) for c in drop}
    if privileged or ("ALL" in added and not dropped):
        return None
    keep = set(CAPABILITIES) if "ALL" in added else set(DEFAULT) | added
    keep = set() if "ALL" in dropped else keep - dropped
    return sorted(keep, key=CAPABILITIES.__getitem__)


_last_capability: int | None = None


def last_capability() -> int:
    """The highest capability number this kernel knows (read once per process).

    ``process.launch`` asks before forking, so a container's init inherits the answer instead of
    reading /proc again on every start.
    """
    global _last_capability
    if _last_capability is None:
        _last_capability = int(read_file("/proc/sys/kernel/cap_last_cap"))
    return _last_capability


def limit_bounding_set(keep: list[str]) -> None:
    """Drop every capability not in ``keep`` from this process's bounding set (before execve)."""
    wanted = {CAPABILITIES[name] for name in keep}
    for number in range(last_capability() + 1):
        if number not in wanted:
            syscalls.prctl(PR_CAPBSET_DROP, number)


def mask(names: list[str]) -> int:
    return sum(1 << CAPABILITIES[name] for name in names)


def set_process_sets(effective: list[str], permitted: list[str], inheritable: list[str], ambient: list[str]) -> None:
    """The OCI runtime's full control (engine/oci): the three sets with capset(2), then ambient.

    Ambient capabilities are the ones a non-root user keeps across ``execve``; the kernel accepts
    one only if it is in both the permitted and the inheritable set. One it refuses is left out,
    as runc does (``runc spec`` itself lists ambient capabilities without inheritable ones).
    """
    syscalls.capset(mask(effective), mask(permitted), mask(inheritable))
    for name in ambient:
        if name in permitted and name in inheritable:
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, CAPABILITIES[name])
