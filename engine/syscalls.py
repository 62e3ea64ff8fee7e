"""The Linux system calls a container runtime needs, called through ctypes.

Python's ``os`` module covers fork, execve, setresuid, mknod and friends; what it lacks (on
Python 3.11) is the container half of the kernel's interface: ``unshare(2)``, ``setns(2)``,
``mount(2)``, ``umount2(2)``, ``pivot_root(2)``, ``sethostname(2)`` and ``prctl(2)``. Each wrapper
here is one call into libc, and turns a failure (-1 and ``errno``) into ``SyscallError`` naming the
call and its argument, so code above reads like the C it mirrors in runc or crun.
"""

from __future__ import annotations

import _signal  # (signal's Python half imports enum: 3 ms of every command)
import _thread
import ctypes
import os

from engine.errors import SyscallError

_libc = ctypes.CDLL(None, use_errno=True)
# The same libc, called holding the GIL (see fork_to_exec: the child must be born holding it).
_libc_holding_gil = ctypes.PyDLL(None, use_errno=True)

# --- clone(2)/unshare(2) flags, one per namespace (linux/sched.h) -------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# --- mount(2) flags (linux/mount.h) --------------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2  # umount2: lazy, detach now and clean up when no longer busy

# --- prctl(2) options (linux/prctl.h) ------------------------------------------------------------
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37

# --- openat2(2) resolve flags (linux/openat2.h) ---------------------------------------------------
RESOLVE_NO_MAGICLINKS = 0x02  # no /proc/PID/fd/N style links
RESOLVE_BENEATH = 0x08  # fail (EXDEV) if resolution would leave the starting directory

# pivot_root has no glibc wrapper: call it by number.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}.get(os.uname().machine, 155)

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the tables were unified)

_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(result: int, call: str, detail: str = "") -> None:
    if result == -1:
        raise SyscallError(call, ctypes.get_errno(), detail)


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (a new PID namespace applies to its children)."""
    _check(_libc.unshare(flags), "unshare", hex(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that ``fd`` (an open ``/proc/PID/ns/*`` file) refers to."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    """Attach a filesystem (or change a mount's flags or propagation) at ``target``."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), "mount", f"{fstype or source} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    """Make ``new_root`` the root of this mount namespace and move the old root to ``put_old``."""
    _check(_libc.syscall(_SYS_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root", new_root)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """open ``path`` relative to ``dir_fd``, the kernel checking every step against ``resolve``.

    Raises ``OSError`` with the errno (``EXDEV``: the path would lead out from under ``dir_fd``),
    so callers can tell the reasons apart. Needs Linux 5.6.
    """
    how = _OpenHow(flags, mode, resolve)
    fd = _libc.syscall(_SYS_OPENAT2, dir_fd, _b(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname", name)


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(_libc.prctl(option, arg2, arg3, 0, 0), "prctl", str(option))


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), "setdomainname", name)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (bit masks; version 3 of the interface: 64 bits each)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()  # two {effective, permitted, inheritable}: bits 0-31, then 32-63
    for half in (0, 1):
        data[half * 3 + 0] = (effective >> (32 * half)) & 0xFFFFFFFF
        data[half * 3 + 1] = (permitted >> (32 * half)) & 0xFFFFFFFF
        data[half * 3 + 2] = (inheritable >> (32 * half)) & 0xFFFFFFFF
    _check(_libc.capset(header, data), "capset")


def socket(family: int, kind: int) -> int:
    """socket(2) returning a bare file descriptor (cheaper than importing Python's socket module)."""
    fd = _libc.socket(family, kind | 0o2000000, 0)  # SOCK_CLOEXEC
    _check(fd, "socket")
    return fd


def fork_to_exec() -> int:
    """fork(2) for a container's init: a child that sets the container up, then execs (or, for
    ``--init`` and OCI ``create``, stays a one-thread Python process until it does).

    ``os.fork()`` also runs CPython's fork bookkeeping and every imported module's at-fork
    handlers (threading's, random's reseeding, logging's locks) in both processes: measured here
    (bench/fork_bench.py) 0.2 ms before the child runs its first line in a process that imported
    the engine, 0.6 ms in one that imported textual too. Those handlers repair what other threads
    leave behind, so libc's fork is used only when this process has one thread, the main one.
    With another thread, even one started from C, a child forked while it wanted the GIL drops
    the GIL at its first switch and waits, forever, for that thread (which it lacks) to take it:
    seen. Called through ``PyDLL``, libc's fork runs holding the GIL: the child is born holding it.

    Signals are blocked around the fork, as ``os.fork`` clears those caught but not yet handled:
    a signal that came just before would otherwise run the caller's Python handler in the child
    too. Blocking them first runs such handlers in the caller (``pthread_sigmask`` does).
    """
    global _one_thread_for_sure
    if not (_one_thread_for_sure or _alone_in_this_process()):
        pid = os.fork()
    else:
        previous = _signal.pthread_sigmask(_signal.SIG_BLOCK, [])  # (read only: a handler run by the
        try:  # blocking call below may raise, and the mask must come back all the same)
            _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
            pid = _libc_holding_gil.fork()
            _check(pid, "fork")
        finally:
            _signal.pthread_sigmask(_signal.SIG_SETMASK, previous)  # in both processes
    if pid == 0:  # a forked child has one thread, the one that forked (its /proc/self may be the
        _one_thread_for_sure = True  # container's soon, where it is not listed; it starts no thread)
    return pid


_one_thread_for_sure = False


def _alone_in_this_process() -> bool:
    """One thread in the kernel's own list (Python's count misses threads started from C), and
    it is the main one (whose thread ID is the PID)."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:  # no /proc to ask: the safe way
        return False
    return len(tasks) == 1 and _thread.get_native_id() == os.getpid()


def get_child_subreaper() -> int:
    """1 if this process adopts its descendants' orphans (PR_SET_CHILD_SUBREAPER), else 0."""
    value = ctypes.c_int(0)
    _check(_libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.addressof(value), 0, 0, 0), "prctl", "PR_GET_CHILD_SUBREAPER")
    return value.value


def set_process_name(name: str) -> None:
    """Set the name ``ps -o comm`` shows (at most 15 bytes), e.g. for the supervisor."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, ctypes.cast(buf, ctypes.c_void_p).value or 0, 0, 0, 0), "prctl", "PR_SET_NAME")


class _Statfs(ctypes.Structure):
    # Only f_type (the first field) is read; the buffer is sized generously for the rest.
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 120)]


def filesystem_type(path: str) -> int:
    """statfs(2)'s f_type: the magic number of the filesystem mounted at ``path``."""
    buf = _Statfs()
    _check(_libc.statfs(os.fsencode(path), ctypes.byref(buf)), "statfs", path)
    return buf.f_type & 0xFFFFFFFF


CGROUP2_SUPER_MAGIC = 0x63677270
TMPFS_MAGIC = 0x01021994
