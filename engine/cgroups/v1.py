"""cgroup v1 (legacy and hybrid layouts): one directory tree per controller.

A container gets a directory in each controller's tree it needs: ``memory/minibox/ID``,
``cpu/minibox/ID`` (with ``cpuacct`` for usage), ``pids/minibox/ID``. Its PID is written into
``cgroup.procs`` of each. The files the seed article shows live here: ``cpu.cfs_quota_us`` and
``cpu.cfs_period_us`` (CPU time allowed per period), ``memory.limit_in_bytes``, ``pids.max``.
"""

from __future__ import annotations

import os

from engine.cgroups import CgroupDriver, Limits, make_dir, read_int, read_keyed, remove_dir, rmdir_if_empty, write

# The controllers minibox uses, and which of their files it reads.
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
CFS_PERIOD_US = 100_000


def _mount_points(controllers: tuple[str, ...] = CONTROLLERS) -> dict[str, str]:
    """controller -> mount point, from /proc/self/mountinfo (co-mounted ones share a point)."""
    points: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            before, _, after = line.partition(" - ")
            fstype, _source, options = after.split()[:3]
            if fstype != "cgroup":
                continue
            mount_point = before.split()[4]
            for option in options.split(","):
                if option in controllers and option not in points:
                    points[option] = mount_point
    return points


class CgroupV1(CgroupDriver):
    version = "v1"

    def __init__(self, controllers: tuple[str, ...] = CONTROLLERS) -> None:
        # The OCI runtime adds "devices" (device rules); `minibox run` needs only these four.
        self.mounts = _mount_points(controllers)
        missing = [c for c in ("memory", "cpu", "pids") if c not in self.mounts]
        if missing:
            from engine.errors import KernelFeatureMissing

            raise KernelFeatureMissing(f"the cgroup v1 controller(s) {', '.join(missing)}")

    def directories(self, group: str) -> dict[str, str]:
        """controller -> this group's directory in that controller's tree."""
        return {c: os.path.join(point, group) for c, point in self.mounts.items()}

    def _unique_dirs(self, group: str) -> list[str]:
        return list(dict.fromkeys(self.directories(group).values()))  # co-mounted: once

    def create(self, group: str, limits: Limits) -> None:
        for path in self._unique_dirs(group):
            make_dir(path)
        dirs = self.directories(group)
        if limits.memory:
            write(f"{dirs['memory']}/memory.limit_in_bytes", limits.memory)
            # With swap, a process over its limit would be swapped out instead of OOM-killed.
            # memsw (memory+swap) must be set after the memory limit and exists only with swap
            # accounting enabled.
            memsw = f"{dirs['memory']}/memory.memsw.limit_in_bytes"
            if os.path.exists(memsw):
                write(memsw, limits.memory_and_swap or limits.memory)
            elif limits.memory_and_swap:
                from engine.errors import KernelFeatureMissing

                raise KernelFeatureMissing(
                    "swap accounting (for a memory+swap limit)", "swapaccount=1 on the kernel command line"
                )
        if limits.cpus:
            period = limits.cpu_period or CFS_PERIOD_US
            write(f"{dirs['cpu']}/cpu.cfs_period_us", period)
            write(f"{dirs['cpu']}/cpu.cfs_quota_us", limits.cfs_quota(period))
        if limits.pids:
            write(f"{dirs['pids']}/pids.max", limits.pids)
        if "cpuset" in dirs:
            self._inherit_cpuset(group)
        files = {"reservation": ("memory", "memory.soft_limit_in_bytes"),
                 "swappiness": ("memory", "memory.swappiness"),
                 "disableOOMKiller": ("memory", "memory.oom_control"), "shares": ("cpu", "cpu.shares"),
                 # kernel memory: since Linux 5.16 the kernel accepts this file and enforces nothing
                 "kernel": ("memory", "memory.kmem.limit_in_bytes"),
                 "kernelTCP": ("memory", "memory.kmem.tcp.limit_in_bytes"),
                 "cpus": ("cpuset", "cpuset.cpus"), "mems": ("cpuset", "cpuset.mems"),
                 "realtimeRuntime": ("cpu", "cpu.rt_runtime_us"),
                 "realtimePeriod": ("cpu", "cpu.rt_period_us")}  # fmt: skip
        # the real-time period first: the kernel refuses a runtime longer than the current period
        for name in sorted(limits.extra, key=lambda n: n != "realtimePeriod"):
            controller, file_name = files[name]
            value = limits.extra[name]
            write(f"{dirs[controller]}/{file_name}", value if isinstance(value, str) else int(value))
        if limits.block_io:
            self._set_block_io(group, limits.block_io)

    def _set_block_io(self, group: str, settings: list[tuple[str, str, int]]) -> None:
        """The blkio controller: a weight (a share of the disk's time, under the BFQ scheduler),
        and limits in bytes or I/O operations per second, each for one device (``8:0``)."""
        path = self.directories(group)["blkio"]
        # "blkio.weight" was CFQ's file (gone since Linux 5.0); BFQ's has its own name
        weight = next(
            (f"{path}/{n}" for n in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(f"{path}/{n}")), ""
        )
        throttle = {"read_bps": "read_bps_device", "write_bps": "write_bps_device",
                    "read_iops": "read_iops_device", "write_iops": "write_iops_device"}  # fmt: skip
        for what, device, value in settings:
            if what == "weight":
                if not weight:
                    from engine.errors import KernelFeatureMissing

                    raise KernelFeatureMissing("block I/O weights (the BFQ I/O scheduler)", "leave out blockIO weights")
                write(f"{weight}_device" if device else weight, f"{device} {value}" if device else value)
            else:
                write(f"{path}/blkio.throttle.{throttle[what]}", f"{device} {value}")

    def _inherit_cpuset(self, group: str) -> None:
        """A new v1 cpuset group starts with no CPUs and no memory nodes, and takes no process
        until it has both: copy them down from its parent, level by level."""
        point = self.mounts["cpuset"]
        path = point
        for part in group.split("/"):
            parent, path = path, os.path.join(path, part)
            for name in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(path, name)) as f:
                    if f.read().strip():
                        continue
                with open(os.path.join(parent, name)) as f:
                    write(os.path.join(path, name), f.read().strip())

    def set_device_rules(self, group: str, rules: list[tuple[bool, str]]) -> None:
        """The devices controller: which device nodes the group may open (``c 1:3 rwm``...)."""
        path = self.directories(group)["devices"]
        for allow, rule in rules:
            write(f"{path}/devices.{'allow' if allow else 'deny'}", rule)

    def procs_files(self, group: str) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self._unique_dirs(group)]

    def self_join_files(self, group: str) -> list[str]:
        """Files where a single-threaded process writes "0" to move itself into the group.

        Writing "0" to ``tasks`` moves only the calling thread, so the kernel can skip the global
        lock that moving a whole process through ``cgroup.procs`` takes (that lock waits for an
        RCU grace period: 6-9 ms, most of a container's start-up). For a process with one
        thread, as a freshly forked init or intermediate is, moving the thread moves the process.
        """
        return [os.path.join(d, "tasks") for d in self._unique_dirs(group)]

    def processes(self, group: str) -> list[int]:
        pids: set[int] = set()
        for path in self.procs_files(group):
            try:
                with open(path) as f:
                    pids.update(int(p) for p in f.read().split())
            except FileNotFoundError:
                pass
        return sorted(pids)

    def stats(self, group: str) -> dict[str, int | None]:
        dirs = self.directories(group)
        mem, cpu, pids = dirs["memory"], dirs["cpu"], dirs["pids"]
        cpu_stat = read_keyed(f"{cpu}/cpu.stat")
        quota = read_int(f"{cpu}/cpu.cfs_quota_us")
        limit = read_int(f"{mem}/memory.limit_in_bytes")
        return {
            "memory_usage": read_int(f"{mem}/memory.usage_in_bytes"),
            "memory_peak": read_int(f"{mem}/memory.max_usage_in_bytes"),
            "memory_limit": limit if limit is not None and limit < 1 << 62 else None,
            "oom_kills": read_keyed(f"{mem}/memory.oom_control").get("oom_kill"),
            "cpu_usage_ns": read_int(f"{dirs.get('cpuacct', cpu)}/cpuacct.usage"),
            "cpu_quota_us": quota if quota is not None and quota > 0 else None,
            "cpu_period_us": read_int(f"{cpu}/cpu.cfs_period_us"),
            "cpu_periods": cpu_stat.get("nr_periods"),
            "cpu_throttled_periods": cpu_stat.get("nr_throttled"),
            "cpu_throttled_ns": cpu_stat.get("throttled_time"),
            "pids_current": read_int(f"{pids}/pids.current"),
            "pids_limit": read_int(f"{pids}/pids.max"),
        }

    def oom_kills(self, group: str) -> int:
        """How many processes the OOM killer killed in this group (Linux 4.13+)."""
        return read_keyed(f"{self.directories(group)['memory']}/memory.oom_control").get("oom_kill", 0)

    def exists(self, group: str) -> bool:
        return any(os.path.isdir(d) for d in self._unique_dirs(group))

    def remove(self, group: str) -> None:
        for path in self._unique_dirs(group):
            remove_dir(path)

    def remove_if_empty(self, group: str) -> None:
        for path in self._unique_dirs(group):
            rmdir_if_empty(path)

    def children(self, parent: str) -> list[str]:
        names: set[str] = set()
        for point in set(self.mounts.values()):
            try:
                names.update(e.name for e in os.scandir(os.path.join(point, parent)) if e.is_dir())
            except FileNotFoundError:
                pass
        return sorted(names)
