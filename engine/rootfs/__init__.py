"""The container's root filesystem: built from mounts, then made the root with pivot_root.

Runs inside the container's init, after ``unshare(CLONE_NEWNS)``, in this order (runc's too):

1. make every mount private, recursively, so nothing mounted here propagates back to the host
   (and pivot_root, which refuses shared mounts, can work) -- forgetting this is the classic bug of
   from-scratch engines: the container's /proc ends up mounted on the host;
2. mount the overlay: the image's files as the read-only lower layer, the container's own
   directory as the writable upper layer (copy-on-write); ``volatile`` for an ``--rm``
   container, whose layer goes when it exits (no syncs: see ``mounts.mount_overlay``);
3. mount the kernel's filesystems inside it: ``/proc`` (for the new PID namespace), ``/sys``
   (read-only), ``/sys/fs/cgroup`` (read-only; the cgroup namespace makes it start at the
   container's own group), a small ``/dev`` (see ``devices.py``); then hide or freeze the parts
   of /proc and /sys that reach the whole machine (``/proc/kcore``, ``/proc/sys``...);
4. switch root: ``pivot_root`` by default, which leaves the host's tree unreachable once unmounted;
   or plain ``chroot`` for the first lab, which only changes where ``/`` resolves for this process.
"""

from __future__ import annotations

import os
import sys

from engine import syscalls
from engine.rootfs import devices, mounts

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing, which `minibox run` avoids
if TYPE_CHECKING:  # for annotations only (collections.abc alone costs ~1 ms to import)
    from collections.abc import Callable

    from engine.rootfs.oci import OciRootfsPlan


class RootfsPlan:
    """What the init needs to build the root filesystem (computed by the parent)."""

    __slots__ = ("lower", "upper", "work", "target", "mode", "private_mounts", "user_ns",
                 "pid_ns", "net_ns", "cgroup_mounts", "cgroup_version", "volatile")  # fmt: skip

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


def setup(
    plan: RootfsPlan | OciRootfsPlan,
    note: Callable[[str, str], None] = lambda stage, text: None,
    before_pivot: Callable[[], None] | None = None,
) -> None:
    """Build the root filesystem; ``note`` is told each stage (``minibox run --trace``)."""
    oci_rootfs = sys.modules.get("engine.rootfs.oci")  # loaded by whoever made an OCI plan: not by `minibox run`
    if oci_rootfs and isinstance(plan, oci_rootfs.OciRootfsPlan):  # an OCI bundle's root and mounts (engine/oci)
        oci_rootfs.setup(plan, note, before_pivot)
        return
    if plan.private_mounts:
        mounts.make_private("/")
        note("mounts", "mount --make-rprivate /: nothing mounted here reaches the host")
    mounts.mount_overlay(plan.lower, plan.upper, plan.work, plan.target, volatile=bool(plan.volatile))
    lowers = plan.lower.split(":")
    volatile = ", volatile (--rm: the layer goes at exit, so no syncs)" if plan.volatile else ""
    note("rootfs", f"mount -t overlay: lowerdir = the init layer + {len(lowers) - 1} image layer(s), "
                   f"upperdir = the container's own, on its rootfs directory{volatile}")  # fmt: skip
    mounts.mount_proc(plan.target, new_pid_ns=plan.pid_ns)
    mounts.mount_sys(plan.target, own_net_ns=plan.net_ns)
    mounts.mount_cgroups(os.path.join(plan.target, "sys/fs/cgroup"), plan.cgroup_version, plan.cgroup_mounts or {})
    devices.populate(plan.target, can_mknod=not plan.user_ns)
    mounts.protect_kernel_files(plan.target)
    note("mounts", "/proc, /sys (read-only), /sys/fs/cgroup (read-only), a small /dev; kernel files masked")
    if plan.mode == "chroot":
        enter_with_chroot(plan.target)
        note("rootfs", "chroot: / is the overlay now (for this process only; the host's mounts remain)")
    else:
        enter_with_pivot_root(plan.target)
        note("rootfs", "pivot_root: the overlay is / and the host's root is unmounted")


def enter_with_pivot_root(new_root: str) -> None:
    """Make ``new_root`` this mount namespace's root; detach the old root entirely.

    ``pivot_root(".", ".")`` (the trick runc uses) stacks the old root on top of the new one at
    the same place, so no directory for it is needed; unmounting "." then removes the old root.
    """
    os.chdir(new_root)
    syscalls.pivot_root(".", ".")
    syscalls.umount2(".", syscalls.MNT_DETACH)
    os.chdir("/")


def enter_with_chroot(new_root: str) -> None:
    """Only change what "/" means for this process: the host's mounts are all still there."""
    os.chdir(new_root)
    os.chroot(".")
    os.chdir("/")
