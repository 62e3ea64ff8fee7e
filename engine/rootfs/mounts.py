"""mount(2) calls that build a container's filesystem tree: propagation, overlay, proc, sys, cgroup."""

from __future__ import annotations

import os
import stat

from engine import syscalls
from engine.errors import KernelFeatureMissing, MiniboxError, SyscallError
from engine.syscalls import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT

EPERM, ENODEV, EINVAL = 1, 19, 22


def mount_point_of(path: str) -> str:
    """The mount point of the filesystem ``path`` is on (the longest one above it in mountinfo)."""
    path = os.path.realpath(path)
    best = "/"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best = point
    return best


def make_private(path: str) -> None:
    """Stop mount events crossing between this namespace and the host's, for every mount below."""
    syscalls.mount(None, path, None, MS_REC | MS_PRIVATE)


def mount_overlay(lower: str, upper: str, work: str, target: str, volatile: bool = False) -> None:
    """Union of the read-only image (lower) and the container's writable layer (upper).

    ``volatile`` (an ``--rm`` container, whose layer is thrown away when it exits): overlayfs
    skips every sync of the upper layer, and above all the ``syncfs(2)`` of the whole host
    filesystem under it that unmounting it otherwise does when the container's last process
    exits (every dirty file of the machine written out, for a layer nobody will read again).
    podman and CRI-O mount such containers the same way. overlayfs then marks the work directory
    and refuses to mount that layer ever again (its contents are not guaranteed after a crash):
    an ``--rm`` container's layer is never mounted twice.
    """
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    try:
        syscalls.mount("overlay", target, "overlay", 0, options + (",volatile" if volatile else ""))
    except SyscallError as e:
        if e.errno == ENODEV:
            raise KernelFeatureMissing("overlayfs", "CONFIG_OVERLAY_FS") from None
        if e.errno == EINVAL and volatile:  # a kernel older than 5.10 does not know the option
            mount_overlay(lower, upper, work, target)
            return
        raise


# statvfs(3) flag -> the mount(2) flag with the same meaning (most share the number, relatime not)
_KEPT_FLAGS = {
    2: syscalls.MS_NOSUID,
    4: syscalls.MS_NODEV,
    8: syscalls.MS_NOEXEC,
    1024: 1024,
    2048: 2048,
    4096: 1 << 21,
}


def bind(source: str, target: str, readonly: bool = False, recursive: bool = True) -> None:
    syscalls.mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        remount_readonly(target)


def remount_readonly(target: str) -> None:
    """Make the mount at ``target`` read-only (a bind mount ignores MS_RDONLY until a remount).

    The remount must repeat the flags the mount already has (nosuid, noexec...): in a user
    namespace they are locked, and leaving them out is refused (EPERM); elsewhere it would
    silently drop them.
    """
    current = os.statvfs(target).f_flag
    kept = sum(flag for st, flag in _KEPT_FLAGS.items() if current & st)
    syscalls.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def ordinary_directory(root: str, relative: str) -> str:
    """``root/relative``, made if missing; refused if the image made it a symbolic link.

    Before pivot_root a link in the image (``proc -> /elsewhere``) would be followed on the host's
    side, and /proc would end up where the masked paths do not cover it.
    """
    target = os.path.join(root, relative)
    try:
        if stat.S_ISLNK(os.lstat(target).st_mode):
            raise MiniboxError(f"/{relative} is a symbolic link in the container's root: /proc and /sys must be "
                               "ordinary directories", "fix the image (no link at /proc or /sys)")  # fmt: skip
    except FileNotFoundError:
        os.mkdir(target)
    return target


def mount_proc(root: str, new_pid_ns: bool) -> None:
    """A proc filesystem shows the PID namespace of whoever mounts it: here, the container's."""
    target = ordinary_directory(root, "proc")
    try:
        syscalls.mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SyscallError as e:
        # In a user namespace without its own PID namespace the kernel refuses a new proc
        # (it would show the host's processes with new powers): reuse the host's instead.
        if e.errno != EPERM or new_pid_ns:
            raise
        bind("/proc", target)


# What runc's default spec hides or freezes in /proc and /sys: kernel memory, keys, timers and
# machine-wide knobs that a container's root (real root without a user namespace!) could use to
# read secrets or change the host, e.g. `echo 1 > /proc/sysrq-trigger`.
MASKED_PATHS = ("proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list",
                "proc/timer_stats", "proc/sched_debug", "proc/scsi", "sys/firmware")  # fmt: skip
READONLY_PATHS = ("proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger")


def protect_kernel_files(
    root: str,
    masked: tuple[str, ...] | list[str] = MASKED_PATHS,
    readonly: tuple[str, ...] | list[str] = READONLY_PATHS,
) -> None:
    """Mask (cover with an empty file or directory) and make read-only the paths listed (above)."""
    for relative in masked:  # one stat(2) each: most of them do not exist on a given kernel
        path = os.path.join(root, relative)
        kind = _file_type(path)
        if kind == stat.S_IFDIR:
            syscalls.mount("tmpfs", path, "tmpfs", MS_RDONLY, "size=0")
        elif kind is not None:
            bind("/dev/null", path, recursive=False)
    for relative in readonly:
        path = os.path.join(root, relative)
        if _file_type(path) is not None:
            bind(path, path, readonly=True)


def _file_type(path: str) -> int | None:
    """stat.S_IFDIR, S_IFREG... of ``path`` (links followed), or None if there is nothing there."""
    try:
        return stat.S_IFMT(os.stat(path).st_mode)
    except OSError:  # missing, or not reachable (a file on the way, a loop of links): nothing to mask
        return None


def mount_sys(root: str, own_net_ns: bool) -> None:
    """sysfs, read-only: containers may look at devices and network interfaces, not change them."""
    target = ordinary_directory(root, "sys")
    try:
        syscalls.mount("sysfs", target, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SyscallError as e:
        if e.errno != EPERM or own_net_ns:  # sysfs needs a net namespace owned by our user ns
            raise
        bind("/sys", target, readonly=True)


def mount_cgroups(
    base: str, version: str, v1_mounts: dict[str, str], readonly: bool = True, own_namespace: bool = True
) -> None:
    """cgroup filesystems at ``base`` (the container's /sys/fs/cgroup), so ``cat /sys/fs/cgroup/...``
    works inside the container. Read-only unless asked: a container must not change its limits.

    A fresh cgroup mount shows the tree from the root of the mounting process's cgroup namespace:
    in a container with its own, that is its own group. Without one (an OCI config may leave it
    out) it would be the host's whole tree, so, as runc does, the container's own group
    directories are bind-mounted instead.
    """
    flags = (MS_RDONLY if readonly else 0) | MS_NOSUID | MS_NODEV | MS_NOEXEC
    own = _own_cgroups() if not own_namespace else {}
    if version == "v2":
        if own:
            bind(os.path.join("/sys/fs/cgroup", own[""].lstrip("/")), base, readonly=readonly)
        else:
            syscalls.mount("cgroup2", base, "cgroup2", flags)
        return
    syscalls.mount("tmpfs", base, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k")
    for point in sorted(set(v1_mounts.values())):
        hierarchy = os.path.basename(point)  # e.g. "memory", "cpu,cpuacct"
        target = os.path.join(base, hierarchy)
        os.mkdir(target)
        controllers = ",".join(sorted(c for c, p in v1_mounts.items() if p == point))
        if own and controllers in own:
            bind(os.path.join(point, own[controllers].lstrip("/")), target, readonly=readonly)
        else:
            syscalls.mount("cgroup", target, "cgroup", flags, hierarchy)
    syscalls.mount(None, base, None, MS_REMOUNT | flags, "mode=755")


def _own_cgroups() -> dict[str, str]:
    """This process's group in each hierarchy: sorted controllers ("" for v2) -> path."""
    groups = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            groups[",".join(sorted(controllers.split(","))) if controllers else ""] = path
    return groups
