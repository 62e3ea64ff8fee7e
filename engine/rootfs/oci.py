"""The root filesystem of an OCI bundle: a prepared directory plus the mounts its config.json lists.

``minibox run`` builds its root from image layers with a fixed set of mounts (``__init__.py``); a
container manager such as podman prepares the root directory itself and lists every mount in
``config.json`` (``/proc``, ``/dev``, ``/etc/hosts`` bound from its own files...). This module
performs that list in order, the way runc does, inside the container's new mount namespace:

1. mount propagation for the whole tree (``rootfsPropagation``, private by default);
2. the root directory bound onto itself (``pivot_root`` needs a mount point);
3. each mount: options like ``nosuid,ro,mode=755`` split into mount(2) flags and filesystem data;
   a bind mount needing flags is remounted, since a bind ignores them on first mount; every
   destination is resolved inside the root, so a symlink planted in an image cannot send a
   mount outside it;
4. the device nodes every container gets, plus ``linux.devices``; ``linux.sysctl``;
5. ``maskedPaths`` and ``readonlyPaths``; ``pivot_root``; ``root.readonly``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from engine import syscalls
from engine.errors import BadValue, MiniboxError
from engine.rootfs import devices, mounts
from engine.syscalls import MS_BIND, MS_PRIVATE, MS_RDONLY, MS_REC, MS_REMOUNT, MS_SLAVE

MS_SHARED, MS_UNBINDABLE = 1 << 20, 1 << 17
# option -> (flag, True to set it / False to clear it), as mount(8) and runc read them
FLAG_OPTIONS = {
    "ro": (MS_RDONLY, True), "rw": (MS_RDONLY, False), "nosuid": (2, True), "suid": (2, False),
    "nodev": (4, True), "dev": (4, False), "noexec": (8, True), "exec": (8, False),
    "sync": (16, True), "async": (16, False), "mand": (64, True), "nomand": (64, False),
    "dirsync": (128, True), "noatime": (1024, True), "atime": (1024, False),
    "nodiratime": (2048, True), "diratime": (2048, False), "relatime": (1 << 21, True),
    "norelatime": (1 << 21, False), "strictatime": (1 << 24, True), "nostrictatime": (1 << 24, False),
    "bind": (MS_BIND, True), "rbind": (MS_BIND | MS_REC, True), "remount": (MS_REMOUNT, True),
}  # fmt: skip
PROPAGATION_OPTIONS = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC, "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}  # fmt: skip


class OciRootfsPlan:
    """What the init needs to build an OCI bundle's root (from config.json, by the parent)."""

    __slots__ = ("root", "readonly", "mounts", "devices", "masked", "readonly_paths", "sysctl", "propagation",
                 "user_ns", "cgroup_version", "cgroup_mounts", "cgroup_ns", "own_namespaces")  # fmt: skip

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """``["nosuid", "ro", "mode=755"]`` -> (mount flags, propagation flags, "mode=755")."""
    flags, propagation, data = 0, 0, []
    for option in options:
        if option in FLAG_OPTIONS:
            flag, on = FLAG_OPTIONS[option]
            flags = flags | flag if on else flags & ~flag
        elif option in PROPAGATION_OPTIONS:
            propagation |= PROPAGATION_OPTIONS[option]
        else:
            data.append(option)  # for the filesystem itself: mode=, size=, newinstance...
    return flags, propagation, ",".join(data)


def resolve_in_root(root: str, path: str) -> str:
    """``root`` + ``path`` with every symlink on the way resolved *inside* ``root`` (no escape).

    A container image may hold ``/etc -> /`` or ``../../..`` links; joining naively and letting
    the kernel follow them would put the mount on the host. Missing parts are kept as they are
    (they are created next, as directories or files).
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise MiniboxError(f"too many symbolic links under {path} in the container's root", "fix the image")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _make_target(target: str, like_file: bool) -> None:
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if like_file:
        open(target, "a").close()
    else:
        os.mkdir(target)


def mount_entry(root: str, entry: dict, plan: OciRootfsPlan) -> None:
    """One item of config.json's ``mounts``."""
    destination = entry.get("destination") or ""
    if not destination.startswith("/"):
        raise BadValue("config.json mounts[].destination", destination, "an absolute path in the container")
    kind = entry.get("type") or ""
    source = entry.get("source") or kind
    flags, propagation, data = parse_options(entry.get("options") or [])
    target = resolve_in_root(root, destination)
    if kind in ("proc", "sysfs") and target != os.path.join(root, os.path.normpath(destination).lstrip("/")):
        # A symlink on the way (an image's `proc -> /elsewhere`) would put /proc somewhere the
        # masked paths below do not cover: refused, as runc refuses it.
        raise MiniboxError(f"{kind} must be mounted on an ordinary directory, and {destination} is a symbolic link "
                           "in the container's root", "fix the image's root filesystem")  # fmt: skip
    if "tmpcopyup" in data.split(","):
        data = ",".join(d for d in data.split(",") if d != "tmpcopyup")
        _mount_tmpfs_copying_up(root, target, flags, data)
        if propagation:
            syscalls.mount(None, target, None, propagation)
        return
    if kind == "bind" or flags & MS_BIND:
        if not os.path.exists(source):
            raise MiniboxError(f"bind mount source {source} does not exist", "fix mounts[].source in config.json")
        _make_target(target, like_file=not os.path.isdir(source))
        syscalls.mount(source, target, None, MS_BIND | (flags & MS_REC))
        extra = flags & ~(MS_BIND | MS_REC)
        if extra:  # a bind mount takes its flags only on a remount
            syscalls.mount(None, target, None, MS_REMOUNT | MS_BIND | extra)
    elif kind == "cgroup":
        _make_target(target, like_file=False)
        mounts.mount_cgroups(target, plan.cgroup_version, plan.cgroup_mounts or {}, readonly=bool(flags & MS_RDONLY),
                             own_namespace=plan.cgroup_ns)  # fmt: skip
    else:
        _make_target(target, like_file=False)
        try:
            syscalls.mount(source, target, kind, flags, data or None)
        except MiniboxError as e:
            raise MiniboxError(
                f"cannot mount {kind} on {destination}: {e.what}", "fix mounts[] in config.json"
            ) from None
    if propagation:
        syscalls.mount(None, target, None, propagation)


def make_devices(root: str, listed: list[dict], can_mknod: bool) -> None:
    """The default device nodes (null, zero, tty...), /dev's links, and config.json's devices."""
    dev = resolve_in_root(root, "/dev")
    os.makedirs(dev, exist_ok=True)
    devices.make_nodes(dev, can_mknod)
    devices.make_links(dev)
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    for device in listed:
        # the directory resolved inside the root, the node itself not followed (/dev/ptmx is a link)
        path = os.path.join(resolve_in_root(root, os.path.dirname(device["path"])), os.path.basename(device["path"]))
        if device.get("type") not in kinds:
            raise BadValue("config.json linux.devices[].type", device.get("type"), "c, u, b or p")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        mode = device.get("fileMode", 0o666) & 0o7777
        os.mknod(path, kinds[device["type"]] | mode, os.makedev(device.get("major", 0), device.get("minor", 0)))
        os.chmod(path, mode)
        os.chown(path, device.get("uid", 0), device.get("gid", 0))


# sysctls that belong to a namespace (runc's list): the others are the whole machine's.
IPC_SYSCTLS = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
               "kernel.shmmni", "kernel.shm_rmid_forced"}  # fmt: skip


def namespace_of_sysctl(key: str) -> str | None:
    """The namespace a sysctl belongs to ("net", "ipc", "uts"), or None for a machine-wide one."""
    if key.startswith("net."):
        return "net"
    if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
        return "ipc"
    if key in ("kernel.hostname", "kernel.domainname"):
        return "uts"
    return None


def write_sysctls(root: str, settings: dict[str, str], own: set[str]) -> None:
    """``net.ipv4.ping_group_range`` -> ``/proc/sys/net/ipv4/ping_group_range`` (the container's own /proc).

    Only a sysctl of a namespace the container has of its own: written from here, any other
    would change the whole machine (``kernel.core_pattern``...).
    """
    for key, value in settings.items():
        namespace = namespace_of_sysctl(key)
        if namespace is None or namespace not in own or ".." in key.split("."):
            expected = "a sysctl of a namespace the container has its own of (net.*, kernel.shm*, fs.mqueue.*)"
            raise BadValue("config.json linux.sysctl", key, expected)
        path = os.path.join(root, "proc/sys", key.replace(".", "/"))
        if not os.path.exists(path):
            raise BadValue("config.json linux.sysctl", key, "a sysctl this kernel has")
        with open(path, "w") as f:
            f.write(value)


def _below_root(root: str, path: str) -> str:
    """A masked or read-only path, resolved inside the root, relative to it (never the root itself)."""
    relative = os.path.relpath(resolve_in_root(root, path), root)
    if relative == "." or relative.startswith(".."):
        raise BadValue("config.json linux.maskedPaths/readonlyPaths", path, "a path below the container's root")
    return relative


def _mount_tmpfs_copying_up(root: str, target: str, flags: int, data: str) -> None:
    """``tmpcopyup`` (runc's extension, podman's --read-only and --tmpfs use it): a fresh tmpfs
    that starts with what the directory held, so /tmp or /run keep their files."""
    import shutil
    import tempfile

    _make_target(target, like_file=False)
    staging = tempfile.mkdtemp(prefix="minibox-tmpcopyup-")
    try:
        syscalls.mount("tmpfs", staging, "tmpfs", flags, data or None)
        shutil.copytree(target, staging, symlinks=True, dirs_exist_ok=True)
        syscalls.mount(staging, target, None, syscalls.MS_MOVE)
    finally:
        os.rmdir(staging)


def setup(plan: OciRootfsPlan, note: Callable[[str, str], None], before_pivot: Callable[[], None] | None) -> None:
    """Build the bundle's root in the current (new) mount namespace, then pivot_root into it.

    ``before_pivot``: the hooks' moment (createRuntime and createContainer, engine/oci/hooks.py):
    the namespaces and mounts exist, the root is not switched yet.
    """
    propagation = PROPAGATION_OPTIONS.get(f"r{plan.propagation}" if plan.propagation else "rprivate")
    if propagation is None:
        raise BadValue("config.json linux.rootfsPropagation", plan.propagation, "private, slave, shared or unbindable")
    syscalls.mount(None, "/", None, propagation)
    root = plan.root
    # pivot_root refuses a new root whose parent mount is shared (rootfsPropagation "shared"
    # makes every mount shared): make just that one private first, as runc does.
    syscalls.mount(None, mounts.mount_point_of(os.path.dirname(root)), None, MS_PRIVATE)
    syscalls.mount(root, root, None, MS_BIND | MS_REC)  # pivot_root needs the new root to be a mount
    note("mounts", f"{plan.propagation or 'private'} propagation; {root} bound onto itself")
    for entry in plan.mounts:
        mount_entry(root, entry, plan)
    note("mounts", f"{len(plan.mounts)} mount(s) from config.json")
    make_devices(root, plan.devices, can_mknod=not plan.user_ns)
    if plan.sysctl:
        write_sysctls(root, plan.sysctl, plan.own_namespaces or set())
    mounts.protect_kernel_files(
        root,
        [_below_root(root, p) for p in plan.masked],
        [_below_root(root, p) for p in plan.readonly_paths],
    )
    if before_pivot:
        before_pivot()
    from engine.rootfs import enter_with_pivot_root

    enter_with_pivot_root(root)
    note("rootfs", "pivot_root into the bundle's root")
    if plan.readonly:
        mounts.remount_readonly("/")
