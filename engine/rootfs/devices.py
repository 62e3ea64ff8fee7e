"""A minimal /dev: the device nodes every program expects, and nothing that reaches the hardware.

The host's /dev holds disks and consoles; a container gets a fresh tmpfs with only:
null, zero, full, random, urandom, tty (character devices, made with ``mknod(2)``, or bind-mounted
from the host inside a user namespace where mknod is not allowed), a private ``devpts`` instance
for terminals (``/dev/pts``, ``/dev/ptmx``), ``/dev/shm`` for POSIX shared memory and
``/dev/mqueue`` for POSIX message queues (both belong to the container's IPC namespace).
"""

from __future__ import annotations

import os
import stat

from engine import syscalls
from engine.syscalls import MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_STRICTATIME

# name, major, minor: the numbers the kernel gives these devices everywhere (devices.txt).
CHAR_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"))  # fmt: skip


def populate(root: str, can_mknod: bool) -> None:
    dev = os.path.join(root, "dev")
    try:
        os.mkdir(dev)
    except FileExistsError:
        pass
    syscalls.mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    make_nodes(dev, can_mknod)
    make_links(dev)
    os.mkdir(os.path.join(dev, "pts"))
    # newinstance: this container's terminals are numbered from 0, and invisible to the host's.
    syscalls.mount("devpts", os.path.join(dev, "pts"), "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620")  # fmt: skip
    os.mkdir(os.path.join(dev, "shm"))
    syscalls.mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    os.mkdir(os.path.join(dev, "mqueue"))
    syscalls.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def make_nodes(dev: str, can_mknod: bool) -> None:
    """null, zero, full, random, urandom, tty: made, or bound from the host's in a user namespace."""
    umask = os.umask(0)  # mknod's mode is filtered by the umask: 0o666 as written, no chmod after
    try:
        for name, major, minor in CHAR_DEVICES:
            path = os.path.join(dev, name)
            if can_mknod:
                try:
                    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
                except FileExistsError:  # an OCI root without a tmpfs on /dev may hold a file there
                    os.unlink(path)
                    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
            else:
                if os.path.lexists(path):
                    os.unlink(path)
                open(path, "w").close()  # an empty file to bind the host's node onto
                syscalls.mount(f"/dev/{name}", path, None, syscalls.MS_BIND)
    finally:
        os.umask(umask)


def make_links(dev: str) -> None:
    """/dev/fd, stdin, stdout, stderr into /proc/self; ptmx into the devpts instance."""
    for name, target in LINKS:
        try:
            os.symlink(target, os.path.join(dev, name))
        except FileExistsError:  # an OCI root's /dev may have it already
            pass
