"""ContainerSpec: what to run and how to isolate it, a small subset of the OCI runtime spec.

Nothing here touches the kernel. The spec is plain data that the CLI, the TUI, the notebooks and
the labs all build the same way, and that is saved in the container's ``state.json`` so
``minibox inspect`` can show exactly what was asked for. Parsing of user-typed values (``64m``,
``0.5`` CPUs, ``1000:1000``) lives here too, so every front end rejects bad input with the same
message.
"""

from __future__ import annotations

import os

from engine.errors import BadValue
from engine.namespaces import NAMES

# What docker isolates by default. user and time are opt-in (as in docker); net is a private
# namespace holding only `lo` until a network is attached.
DEFAULT_NAMESPACES = frozenset({"pid", "uts", "ipc", "net", "mnt", "cgroup"})
# Container root is host uid 100000 when a user namespace is asked for: "root inside,
# an unprivileged nobody outside". 65536 IDs, as /etc/subuid usually hands out.
DEFAULT_ID_MAP = ((0, 100000, 65536),)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOTFS_MODES = ("pivot_root", "chroot")


class ContainerSpec:
    """Everything needed to start one container. Built by front ends, stored in state.json."""

    __slots__ = (
        "image", "command", "name", "hostname", "env", "workdir", "user", "namespaces",
        "rootfs_mode", "memory", "cpus", "pids_limit", "tty", "interactive", "detach",
        "auto_remove", "uid_map", "gid_map", "monotonic_offset", "boottime_offset", "init", "capabilities",
        "network", "publish",
    )  # fmt: skip

    def __init__(
        self,
        image: str,
        command: list[str] | None = None,
        *,
        name: str = "",
        hostname: str = "",
        env: list[str] | None = None,
        workdir: str = "",
        user: str = "",
        namespaces: frozenset[str] | set[str] = DEFAULT_NAMESPACES,
        rootfs_mode: str = "pivot_root",
        memory: int | None = None,
        cpus: float | None = None,
        pids_limit: int | None = None,
        tty: bool = False,
        interactive: bool = False,
        detach: bool = False,
        auto_remove: bool = False,
        uid_map: tuple[tuple[int, int, int], ...] | list = DEFAULT_ID_MAP,
        gid_map: tuple[tuple[int, int, int], ...] | list = DEFAULT_ID_MAP,
        monotonic_offset: int = 0,
        boottime_offset: int = 0,
        init: bool = False,
        capabilities: list[str] | None | tuple = ("DEFAULT",),
        network: str = "",
        publish: list | tuple = (),
    ) -> None:
        self.image = image
        self.command = list(command or [])
        self.name = name
        self.hostname = hostname
        self.env = list(env or [])
        self.workdir = workdir  # "": the image's WorkingDir, else /
        self.user = user
        self.namespaces = frozenset(namespaces)
        self.rootfs_mode = rootfs_mode
        self.memory = memory
        self.cpus = cpus
        self.pids_limit = pids_limit
        self.tty = tty
        self.interactive = interactive
        self.detach = detach
        self.auto_remove = auto_remove
        self.uid_map = tuple(tuple(m) for m in uid_map)
        self.gid_map = tuple(tuple(m) for m in gid_map)
        self.monotonic_offset = monotonic_offset
        self.boottime_offset = boottime_offset
        self.init = init
        # The capabilities the container keeps (names); None keeps all (--privileged).
        if capabilities == ("DEFAULT",):
            from engine.capabilities import DEFAULT

            capabilities = list(DEFAULT)
        self.capabilities = None if capabilities is None else list(capabilities)
        # none: a private network namespace with only lo; host: the host's (no "net" namespace);
        # a network's name (the default one is "bridge"); container:REF: share that one's.
        self.network = network or ("none" if "net" in self.namespaces else "host")
        if self.network == "host":
            self.namespaces -= {"net"}
        elif "net" not in self.namespaces and not self.network.startswith("container:"):
            self.namespaces |= {"net"}
        if self.network.startswith("container:"):
            self.namespaces -= {"net"}
        self.publish = [tuple(p) for p in publish]
        self.validate()

    def validate(self) -> None:
        unknown = self.namespaces - set(NAMES)
        if unknown:
            raise BadValue("namespaces", ",".join(sorted(unknown)), f"names from: {', '.join(NAMES)}")
        if self.rootfs_mode not in ROOTFS_MODES:
            raise BadValue("rootfs mode", self.rootfs_mode, " or ".join(ROOTFS_MODES))
        if self.rootfs_mode == "pivot_root" and "mnt" not in self.namespaces:
            raise BadValue("--mount-ns", "host", "a private mount namespace with pivot_root (or use --chroot)")
        if self.workdir and not self.workdir.startswith("/"):
            raise BadValue("-w/--workdir", self.workdir, "an absolute path such as /tmp")
        if self.hostname and ("uts" not in self.namespaces):
            raise BadValue("-h/--hostname", self.hostname, "a private UTS namespace (drop --uts host)")
        if (self.monotonic_offset or self.boottime_offset) and "time" not in self.namespaces:
            raise BadValue("time offsets", self.monotonic_offset or self.boottime_offset, "--timens private")
        if self.publish and (self.network in ("none", "host") or self.network.startswith("container:")):
            raise BadValue("-p/--publish", ":".join(map(str, self.publish[0][:2])),
                           "a container on a network: add --net bridge (or another network's name)")  # fmt: skip
        if self.network.startswith("container:") and not self.network[10:]:
            raise BadValue("--net", self.network, "container:NAME, with the name or ID of a running container")
        for var in self.env:
            if "=" not in var or var.startswith("="):
                raise BadValue("-e/--env", var, "KEY=VALUE")

    def to_dict(self) -> dict:
        data = {field: getattr(self, field) for field in self.__slots__}
        data["namespaces"] = sorted(self.namespaces, key=NAMES.index)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ContainerSpec:
        fields = {k: v for k, v in data.items() if k in cls.__slots__}
        return cls(fields.pop("image"), **fields)


# --- parsing of values users type ----------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_memory(text: str) -> int:
    """``64m`` -> 67108864. Units b, k, m, g (powers of 1024, as docker's ``-m``)."""
    raw = text.strip().lower().removesuffix("ib").removesuffix("b") if text else ""
    unit = raw[-1:] if raw[-1:] in _UNITS else ""
    number = raw[: len(raw) - len(unit)]
    try:
        value = int(float(number) * _UNITS[unit])
    except ValueError:
        raise BadValue("-m/--memory", text, "a size such as 64m, 512k or 1g") from None
    if value < 4 * 1024 * 1024:
        raise BadValue("-m/--memory", text, "at least 4m (smaller limits leave no room to start)")
    return value


def parse_cpus(text: str) -> float:
    """``0.5`` -> half of one CPU's time (cfs quota 50000 of period 100000)."""
    try:
        value = float(text)
    except ValueError:
        raise BadValue("--cpus", text, "a number of CPUs such as 0.5 or 2") from None
    available = os.cpu_count() or 1
    if not 0.01 <= value <= available:
        raise BadValue("--cpus", text, f"a number of CPUs between 0.01 and {available} (this machine has {available})")
    return value


def parse_pids_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadValue("--pids-limit", text, "a whole number of processes such as 64") from None
    if value < 1:
        raise BadValue("--pids-limit", text, "at least 1")
    return value


def parse_id_map(text: str, option: str) -> tuple[tuple[int, int, int], ...]:
    """``0:100000:65536[,...]`` -> ((inside, outside, count), ...) as in /proc/PID/uid_map."""
    maps = []
    for part in text.split(","):
        try:
            inside, outside, count = (int(x) for x in part.split(":"))
        except ValueError:
            raise BadValue(option, text, "INSIDE:OUTSIDE:COUNT, e.g. 0:100000:65536") from None
        if count < 1 or inside < 0 or outside < 0:
            raise BadValue(option, text, "non-negative IDs and a count of at least 1")
        maps.append((inside, outside, count))
    for i, (a_in, a_out, a_count) in enumerate(maps):  # the kernel refuses overlapping ranges
        for b_in, b_out, b_count in maps[i + 1 :]:
            if a_in < b_in + b_count and b_in < a_in + a_count or a_out < b_out + b_count and b_out < a_out + a_count:
                raise BadValue(option, text, "ranges that do not overlap, inside or outside")
    return tuple(maps)
