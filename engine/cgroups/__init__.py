"""Control groups: limit and account a container's memory, CPU time and number of processes.

A cgroup is a directory in a special filesystem; writing a PID into its ``cgroup.procs`` moves
that process (and its future children) into it, and the files beside it set limits and report
usage. Linux has two versions, and machines run three layouts:

- **v2 / unified**: one tree at ``/sys/fs/cgroup`` (``cgroup2``), e.g. the Ubuntu 24.04 VM.
  Limits in ``memory.max``, ``cpu.max``, ``pids.max``.
- **v1 / legacy**: one tree per controller, ``/sys/fs/cgroup/memory``, ``/sys/fs/cgroup/cpu``...
  Limits in ``memory.limit_in_bytes``, ``cpu.cfs_quota_us``, ``pids.max``.
- **hybrid**: v1 controllers, plus an empty v2 tree at ``/sys/fs/cgroup/unified`` that systemd
  uses only to track services. minibox uses its v1 controllers.

As runc does, the layout is found with ``statfs(2)`` on ``/sys/fs/cgroup``: the cgroup2 magic
number means unified. Both drivers (``v1.py``, ``v2.py``) offer the same small protocol below, so
the rest of the engine never asks which version it is on.
"""

from __future__ import annotations

import os

from engine import syscalls
from engine.errors import KernelFeatureMissing, SyscallError
from engine.state import read_file, write_file

CGROUP_ROOT = "/sys/fs/cgroup"


class Limits:
    """The resource limits minibox sets: None means "no limit"."""

    __slots__ = ("memory", "cpus", "pids", "cpu_period", "memory_and_swap", "extra", "block_io")

    def __init__(
        self, memory: int | None = None, cpus: float | None = None, pids: int | None = None, cpu_period: int = 0,
        memory_and_swap: int | None = None,
    ) -> None:  # fmt: skip
        self.memory = memory  # bytes
        self.cpus = cpus  # CPUs' worth of time per period, 0.5 = half of one CPU
        self.pids = pids  # processes (and threads)
        self.cpu_period = cpu_period  # microseconds; 0: the default 100 ms (an OCI config may say)
        # memory + swap together, bytes (OCI's memory.swap, docker's --memory-swap); None: no swap
        # at all, as minibox's own containers have; -1: unlimited swap
        self.memory_and_swap = memory_and_swap
        # More knobs an OCI config may set, by their OCI names: reservation, swappiness,
        # disableOOMKiller, shares (each driver writes the files it has, or refuses).
        self.extra: dict[str, int | bool] = {}
        # Block I/O (an OCI config's blockIO): (what, "MAJOR:MINOR" or "" for every device, value),
        # what = weight (10-1000), read_bps, write_bps (bytes/s), read_iops or write_iops.
        self.block_io: list[tuple[str, str, int]] = []

    def __str__(self) -> str:
        parts = [f"memory={self.memory}" if self.memory else "", f"cpus={self.cpus}" if self.cpus else "",
                 f"pids={self.pids}" if self.pids else ""]  # fmt: skip
        return ", ".join(p for p in parts if p) or "none"

    def cfs_quota(self, period_us: int = 100_000) -> int:
        """CFS quota in microseconds per period for ``cpus`` (the kernel's own unit)."""
        return int((self.cpus or 0) * period_us)


class CgroupDriver:
    """The protocol both versions implement. ``group`` is a path like ``minibox/ID``."""

    version = ""

    def create(self, group: str, limits: Limits) -> None: ...
    def procs_files(self, group: str) -> list[str]: ...
    def self_join_files(self, group: str) -> list[str]: ...
    def processes(self, group: str) -> list[int]: ...
    def stats(self, group: str) -> dict[str, int | None]: ...
    def oom_kills(self, group: str) -> int: ...
    def directories(self, group: str) -> dict[str, str]: ...
    def exists(self, group: str) -> bool: ...
    def remove(self, group: str) -> None: ...
    def remove_if_empty(self, group: str) -> None: ...
    def children(self, parent: str) -> list[str]: ...

    def kill_all(self, group: str, signal: int = 9) -> None:
        """Signal every process in the group, again until none is left (they may fork meanwhile).

        Needed where no PID namespace's init takes the others down with it (``--pid host``).
        """
        import time

        for _ in range(100):
            pids = self.processes(group)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal)
                except ProcessLookupError:
                    pass
            if signal != 9:
                return
            time.sleep(0.01)


def membership_files(pid: int) -> list[str]:
    """The files a process writes "0" to in order to join every cgroup ``pid`` is in.

    ``minibox exec`` uses it, as runc does, so an exec'd process ends up in exactly the container's
    groups in every hierarchy, including those minibox itself does not manage (v1's name=systemd,
    the hybrid layout's unified tree): otherwise ``/proc/self/cgroup`` inside would differ
    between the container's processes.
    """
    mounts: dict[str, str] = {}  # "memory" / "cpu,cpuacct" / "name=systemd" / "" (v2) -> mount point
    with open("/proc/cgroups") as f:  # the v1 controllers this kernel has (mount options also hold flags)
        known = {line.split()[0] for line in f if not line.startswith("#")}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fstype, _source, options = (after.split() + ["", "", ""])[:3]
            if fstype == "cgroup2":
                mounts.setdefault("", before.split()[4])
            elif fstype == "cgroup":
                names = sorted(o for o in options.split(",") if o in known or o.startswith("name="))
                mounts.setdefault(",".join(names), before.split()[4])
    files = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            point = mounts.get(",".join(sorted(controllers.split(","))) if controllers else "")
            if point is None:
                continue
            name = "tasks" if controllers else "cgroup.procs"  # see CgroupV1.self_join_files
            candidate = os.path.join(point, path.lstrip("/"), name)
            if os.path.exists(candidate):
                files.append(candidate)
    return files


def detect_layout() -> str:
    """'unified', 'hybrid' or 'legacy', by the filesystem types mounted under /sys/fs/cgroup."""
    try:
        root_type = syscalls.filesystem_type(CGROUP_ROOT)
    except SyscallError:
        raise KernelFeatureMissing("cgroups", f"nothing mounted at {CGROUP_ROOT}") from None
    if root_type == syscalls.CGROUP2_SUPER_MAGIC:
        return "unified"
    unified = os.path.join(CGROUP_ROOT, "unified")
    if os.path.isdir(unified) and syscalls.filesystem_type(unified) == syscalls.CGROUP2_SUPER_MAGIC:
        return "hybrid"
    return "legacy"


_driver: CgroupDriver | None = None


def driver() -> CgroupDriver:
    """The driver for this machine's layout (detected once per process)."""
    global _driver
    if _driver is None:
        if detect_layout() == "unified":
            from engine.cgroups.v2 import CgroupV2

            _driver = CgroupV2(CGROUP_ROOT)
        else:
            from engine.cgroups.v1 import CgroupV1

            _driver = CgroupV1()
    return _driver


def write(path: str, value: str | int) -> None:
    """Write one value to a cgroup file (the kernel parses it; errors come back as OSError)."""
    write_file(path, str(value).encode())


def read(path: str) -> str | None:
    try:
        return read_file(path).decode().strip()
    except OSError:
        return None


def read_int(path: str) -> int | None:
    text = read(path)
    if text is None or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def read_keyed(path: str) -> dict[str, int]:
    """Parse files of ``key value`` lines (cpu.stat, memory.events, memory.oom_control)."""
    out: dict[str, int] = {}
    for line in (read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def make_dir(path: str) -> None:
    """mkdir -p, tolerating a concurrent ``remove_if_empty`` of the parent (then make it again)."""
    try:
        os.mkdir(path)  # the usual case: the parent (``minibox``) is there, the group is new
        return
    except (FileNotFoundError, FileExistsError):
        pass
    for _ in range(3):
        try:
            os.makedirs(path, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    os.makedirs(path, exist_ok=True)


def rmdir_if_empty(path: str) -> None:
    """Remove a cgroup directory unless it still has children or processes (then leave it)."""
    try:
        os.rmdir(path)
    except OSError:
        pass


def remove_dir(path: str) -> None:
    """rmdir a cgroup and any child groups made inside it (deepest first), retrying briefly:
    exiting processes leave a group busy for a moment."""
    import time

    try:
        os.rmdir(path)  # the usual case: no child groups, no process left
        return
    except FileNotFoundError:
        return
    except OSError as e:
        if e.errno not in (16, 39):  # EBUSY (ENOTEMPTY): child groups, or processes on their way out
            raise
    for directory, _subdirs, _files in os.walk(path, topdown=False):
        if directory != path:
            remove_dir(directory)
    for attempt in range(200):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != 16 or attempt == 199:  # EBUSY
                raise
            time.sleep(0.005)
