"""cgroup v2 (the unified layout): one tree, each group a single directory.

A container's group is ``/sys/fs/cgroup/minibox/ID``. Controllers must be switched on for a
group's children by writing ``+memory +cpu +pids`` to the parent's ``cgroup.subtree_control``,
from the root down. Limits: ``memory.max`` (and ``memory.swap.max`` 0, so the limit is not
dodged by swapping), ``cpu.max`` ("QUOTA PERIOD" in microseconds), ``pids.max``. Device rules (the OCI runtime's) are
not files but an eBPF program attached to the group (``engine/cgroups/device_filter.py``).
"""

from __future__ import annotations

import os

from engine.cgroups import CgroupDriver, Limits, make_dir, read, read_int, read_keyed, remove_dir, rmdir_if_empty, write
from engine.errors import KernelFeatureMissing

CONTROLLERS = ("memory", "cpu", "pids")
CPU_PERIOD_US = 100_000


class CgroupV2(CgroupDriver):
    version = "v2"

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, group: str) -> str:
        return os.path.join(self.root, group)

    def directories(self, group: str) -> dict[str, str]:
        return {"unified": self.path(group)}

    def _enable_controllers(self, group: str, controllers: tuple[str, ...] = CONTROLLERS) -> None:
        """Turn on memory, cpu and pids (and cpuset if asked) for the children of every ancestor of ``group``."""
        available = (read(os.path.join(self.root, "cgroup.controllers")) or "").split()
        missing = [c for c in controllers if c not in available]
        if missing:
            raise KernelFeatureMissing(f"the cgroup v2 controller(s) {', '.join(missing)}")
        parent = self.root
        for part in os.path.dirname(group).split("/"):
            enabled = (read(os.path.join(parent, "cgroup.subtree_control")) or "").split()
            wanted = " ".join(f"+{c}" for c in controllers if c not in enabled)
            if wanted:
                write(os.path.join(parent, "cgroup.subtree_control"), wanted)
            parent = os.path.join(parent, part)
            make_dir(parent)
        enabled = (read(os.path.join(parent, "cgroup.subtree_control")) or "").split()
        wanted = " ".join(f"+{c}" for c in controllers if c not in enabled)
        if wanted:
            write(os.path.join(parent, "cgroup.subtree_control"), wanted)

    def create(self, group: str, limits: Limits) -> None:
        for attempt in range(3):
            try:
                self._create(group, limits)
                return
            except FileNotFoundError:  # `minibox gc` removed the empty parent (``minibox``) meanwhile
                if attempt == 2:
                    raise

    def _create(self, group: str, limits: Limits) -> None:
        cpuset = ("cpuset",) if "cpus" in limits.extra or "mems" in limits.extra else ()
        io = ("io",) if limits.block_io else ()
        self._enable_controllers(group, CONTROLLERS + cpuset + io)
        path = self.path(group)
        try:  # not make_dir: a parent gone meanwhile must be made again with its controllers (see create)
            os.mkdir(path)
        except FileExistsError:
            pass
        if limits.memory:
            write(f"{path}/memory.max", limits.memory)
            if os.path.exists(f"{path}/memory.swap.max"):
                swap = limits.memory_and_swap
                write(f"{path}/memory.swap.max", "max" if swap == -1 else max(0, (swap or 0) - limits.memory))
        if limits.cpus:
            period = limits.cpu_period or CPU_PERIOD_US
            write(f"{path}/cpu.max", f"{limits.cfs_quota(period)} {period}")
        if limits.pids:
            write(f"{path}/pids.max", limits.pids)
        for name, value in limits.extra.items():
            if name == "reservation":
                write(f"{path}/memory.low", value)
            elif name == "shares":  # cpu.shares 2..262144 -> cpu.weight 1..10000, as runc converts
                write(f"{path}/cpu.weight", 1 + ((int(value) - 2) * 9999) // 262142)
            elif name in ("cpus", "mems"):
                write(f"{path}/cpuset.{name}", value)
            else:
                from engine.errors import Unsupported

                raise Unsupported(f"cgroup v2 has no {name} setting", "leave it out of the container's resources")
        if limits.block_io:
            self._set_block_io(path, limits.block_io)

    @staticmethod
    def _set_block_io(path: str, settings: list[tuple[str, str, int]]) -> None:
        """The io controller: a weight (``io.bfq.weight`` under BFQ, else ``io.weight``) and limits
        per device in ``io.max`` ("8:0 rbps=1048576")."""
        keys = {"read_bps": "rbps", "write_bps": "wbps", "read_iops": "riops", "write_iops": "wiops"}
        for what, device, value in settings:
            if what != "weight":  # 0: no limit (as v1 takes it)
                write(f"{path}/io.max", f"{device} {keys[what]}={value or 'max'}")
            elif os.path.exists(f"{path}/io.bfq.weight"):  # BFQ takes v1's 1-1000 as it is
                write(f"{path}/io.bfq.weight", f"{device} {value}" if device else value)
            elif not os.path.exists(f"{path}/io.weight"):
                raise KernelFeatureMissing(
                    "block I/O weights (io.weight or the BFQ scheduler)", "leave out blockIO weights"
                )
            else:  # io.weight is 1-10000: v1's 10-1000 mapped onto it, as runc does
                weight = 1 + (value - 10) * 9999 // 990
                write(f"{path}/io.weight", f"{device} {weight}" if device else f"default {weight}")

    def set_device_rules(self, group: str, rules: list[tuple[bool, str]]) -> None:
        """Which device nodes the group may use: v2 has no files for it, but an eBPF program."""
        from engine.cgroups.device_filter import attach

        attach(self.path(group), rules)

    def procs_files(self, group: str) -> list[str]:
        return [os.path.join(self.path(group), "cgroup.procs")]

    def self_join_files(self, group: str) -> list[str]:
        """Writing "0" to ``cgroup.procs`` moves the writing process (v2 has no per-thread shortcut)."""
        return self.procs_files(group)

    def processes(self, group: str) -> list[int]:
        try:
            with open(self.procs_files(group)[0]) as f:
                return sorted(int(p) for p in f.read().split())
        except FileNotFoundError:
            return []

    def stats(self, group: str) -> dict[str, int | None]:
        path = self.path(group)
        cpu_stat = read_keyed(f"{path}/cpu.stat")
        quota, _, period = (read(f"{path}/cpu.max") or "max 100000").partition(" ")
        usage_us = cpu_stat.get("usage_usec")
        throttled_us = cpu_stat.get("throttled_usec")
        return {
            "memory_usage": read_int(f"{path}/memory.current"),
            "memory_peak": read_int(f"{path}/memory.peak"),  # Linux 5.19+
            "memory_limit": read_int(f"{path}/memory.max"),
            "oom_kills": read_keyed(f"{path}/memory.events").get("oom_kill"),
            "cpu_usage_ns": usage_us * 1000 if usage_us is not None else None,
            "cpu_quota_us": int(quota) if quota.isdigit() else None,
            "cpu_period_us": int(period) if period.isdigit() else None,
            "cpu_periods": cpu_stat.get("nr_periods"),
            "cpu_throttled_periods": cpu_stat.get("nr_throttled"),
            "cpu_throttled_ns": throttled_us * 1000 if throttled_us is not None else None,
            "pids_current": read_int(f"{path}/pids.current"),
            "pids_limit": read_int(f"{path}/pids.max"),
        }

    def oom_kills(self, group: str) -> int:
        return read_keyed(f"{self.path(group)}/memory.events").get("oom_kill", 0)

    def exists(self, group: str) -> bool:
        return os.path.isdir(self.path(group))

    def kill_all(self, group: str, signal: int = 9) -> None:
        kill_file = os.path.join(self.path(group), "cgroup.kill")  # Linux 5.14+: one write
        if signal == 9 and os.path.exists(kill_file):
            write(kill_file, 1)
        else:
            super().kill_all(group, signal)

    def remove(self, group: str) -> None:
        remove_dir(self.path(group))

    def remove_if_empty(self, group: str) -> None:
        rmdir_if_empty(self.path(group))

    def children(self, parent: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self.path(parent)) if e.is_dir())
        except FileNotFoundError:
            return []
