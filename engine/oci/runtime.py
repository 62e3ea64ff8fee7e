"""The OCI runtime operations: create, start, state, kill, delete (what runc, crun and youki do).

A container manager (podman, or containerd through its shim) prepares a *bundle* -- a directory
with ``config.json`` and the root filesystem -- and calls the runtime:

    create --bundle DIR ID   namespaces, cgroup and mounts exist; the command waits, not run yet
    start ID                 the command runs (its ``execve`` happens now)
    state ID                 JSON: created / running / stopped, and the init's host PID
    kill ID SIGNAL           a signal to the init (``--all``: to every process in its cgroup)
    delete ID                the cgroup and the runtime's record go away

The runtime does not stay around: ``create`` returns once the init waits, and the manager's own
process (conmon for podman), a child subreaper, adopts the init and collects its exit status.
The runtime keeps one directory per container under its root (``--root``, default
``/run/minibox-runc``): ``state.json`` and ``exec.fifo``, the fifo the init blocks on until
``start`` reads it. Everything else -- the two forks, namespaces, cgroups, mounts, capabilities
-- is the engine code that ``minibox run`` uses too: one engine, two front doors.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

from engine import process, state
from engine.errors import BadValue, MiniboxError
from engine.oci.config import UnsupportedField, load

DEFAULT_ROOT = "/run/minibox-runc"
HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
OCI_VERSION = "1.0.2"
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,1023}")
# OCI namespace type -> minibox's name for it (engine/namespaces.py)
NAMESPACE_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
                   "cgroup": "cgroup", "time": "time"}  # fmt: skip
# The devices every container may use, whatever config.json's device rules say (as runc allows).
DEFAULT_DEVICE_RULES = ["c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm",
                        "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"]  # fmt: skip


class OciStateError(MiniboxError):
    """An operation refused in the container's current state (runc's wording where it has one)."""

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what, fix)
        self.exit_code = 1


class Container:
    """One container as the runtime records it: ``ROOT/ID/state.json`` and ``ROOT/ID/exec.fifo``."""

    def __init__(self, root: str, container_id: str) -> None:
        if not ID_PATTERN.fullmatch(container_id):
            raise BadValue("container id", container_id, "letters, digits and _ . + - (up to 1024)")
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.fifo = os.path.join(self.dir, "exec.fifo")
        self.data: dict = {}

    def exists(self) -> bool:
        return os.path.exists(os.path.join(self.dir, "state.json"))

    def is_ours(self) -> bool:
        """A state.json minibox-runc wrote (a --root shared with another runtime holds others)."""
        return self.exists() and {"bundle", "cgroup", "pid"} <= set(self.load().data)

    def load(self) -> Container:
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            raise OciStateError(f"container {self.id} does not exist", "see `minibox-runc list`") from None
        return self

    def save(self) -> None:
        state.write_json_atomic(os.path.join(self.dir, "state.json"), self.data)

    def alive(self) -> bool:
        pid = self.data.get("pid") or 0
        return bool(pid) and state.process_alive(pid, self.data.get("pid_start_time"))

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        return "paused" if _frozen(self) else "running"

    def report(self) -> dict:
        """The state the runtime spec defines (``runc state`` prints the same fields)."""
        status = self.status()
        return {
            "ociVersion": OCI_VERSION, "id": self.id, "pid": self.data["pid"] if status != "stopped" else 0,
            "status": status, "bundle": self.data["bundle"], "rootfs": self.data["rootfs"],
            "created": self.data["created"], "owner": "", "annotations": self.data.get("annotations") or {},
        }  # fmt: skip


def _cgroups(config: dict, container_id: str) -> tuple[object, str, object, list[tuple[bool, str]]]:
    """(driver, group, limits, device rules) from linux.cgroupsPath and linux.resources."""
    from engine import cgroups

    linux = config.get("linux") or {}
    path = linux.get("cgroupsPath") or f"{state.prefix()}-runc/{container_id}"
    if ":" in path:
        raise UnsupportedField("linux.cgroupsPath", f"{path!r} is systemd's slice:prefix:name form "
                               "(run podman with --cgroup-manager cgroupfs)")  # fmt: skip
    group = path.strip("/")
    if not group or ".." in group.split("/"):
        raise BadValue("config.json linux.cgroupsPath", path, "a path below the cgroup root")
    resources = linux.get("resources") or {}
    memory, cpu, pids = (resources.get(k) or {} for k in ("memory", "cpu", "pids"))
    swap = memory.get("swap")  # memory + swap, as docker's --memory-swap (podman: twice the memory)
    if swap is not None and swap != -1 and swap < (memory.get("limit") or 0):
        raise BadValue("config.json linux.resources.memory.swap", swap, "at least memory.limit (it counts both)")
    quota, period = cpu.get("quota"), cpu.get("period") or 0
    limits = cgroups.Limits(
        memory=memory.get("limit") or None,
        cpus=quota / (period or 100_000) if quota and quota > 0 else None,
        pids=pids.get("limit") if (pids.get("limit") or 0) > 0 else None,
        cpu_period=period,
        memory_and_swap=swap if memory.get("limit") else None,
    )
    more = {"reservation": memory.get("reservation"), "swappiness": memory.get("swappiness"),
            "disableOOMKiller": memory.get("disableOOMKiller"), "kernel": memory.get("kernel"),
            "kernelTCP": memory.get("kernelTCP"), "shares": cpu.get("shares"), "cpus": cpu.get("cpus"),
            "mems": cpu.get("mems"), "realtimeRuntime": cpu.get("realtimeRuntime"),
            "realtimePeriod": cpu.get("realtimePeriod")}  # fmt: skip
    limits.extra = {name: value for name, value in more.items() if value is not None and value is not False}
    limits.block_io = _block_io(resources.get("blockIO") or {})
    rules: list[tuple[bool, str]] = []
    for index, rule in enumerate(resources.get("devices") or []):
        kind = rule.get("type") or "a"
        major, minor = rule.get("major"), rule.get("minor")
        where = f"{'*' if major in (None, -1) else major}:{'*' if minor in (None, -1) else minor}"
        access = rule.get("access") or "rwm"
        if kind not in "abc" or not re.fullmatch(r"[rwm]{1,3}", access):
            raise BadValue(f"config.json linux.resources.devices[{index}]", rule, "type a, b or c; access of r, w, m")
        rules.append((bool(rule.get("allow")), "a" if kind == "a" else f"{kind} {where} {access}"))
    driver = cgroups.driver()
    for index, device in enumerate(linux.get("devices") or []):  # a listed device is one it may use
        if rules and device.get("type") in ("c", "b", "u"):
            kind = "b" if device["type"] == "b" else "c"
            rules.append((True, f"{kind} {device.get('major', 0)}:{device.get('minor', 0)} rwm"))
        elif not device.get("path"):
            raise BadValue(f"config.json linux.devices[{index}].path", "", "the device's path in the container")
    # v1: the container gets a group in every controller's hierarchy, as runc does, limited or not
    # (else its blkio or cpuset accounting would stay in its manager's group: conmon's, say), and
    # freezer makes `pause` (podman pause) possible
    extra = ("freezer", "devices", "cpuset", "blkio", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc")
    if driver.version == "v1":
        from engine.cgroups.v1 import CONTROLLERS, CgroupV1

        driver = CgroupV1(CONTROLLERS + extra)
    if rules:
        rules += [(True, r) for r in DEFAULT_DEVICE_RULES]
    return driver, group, limits, rules


def _block_io(block_io: dict) -> list[tuple[str, str, int]]:
    """linux.resources.blockIO as (what, "MAJOR:MINOR" or "", value) settings (see cgroups.Limits)."""
    field = "config.json linux.resources.blockIO"
    if block_io.get("leafWeight") or any(d.get("leafWeight") for d in block_io.get("weightDevice") or []):
        raise UnsupportedField(
            "linux.resources.blockIO.leafWeight", "only the CFQ I/O scheduler had it (gone in Linux 5.0)"
        )
    settings = []
    weights = [("", block_io["weight"])] if block_io.get("weight") else []
    weights += [
        (f"{d['major']}:{d['minor']}", d["weight"]) for d in block_io.get("weightDevice") or [] if d.get("weight")
    ]
    for device, weight in weights:
        if not 10 <= weight <= 1000:
            raise BadValue(f"{field} weight", weight, "a weight from 10 to 1000")
        settings.append(("weight", device, weight))
    for kind, what in (("ReadBps", "read_bps"), ("WriteBps", "write_bps"), ("ReadIOPS", "read_iops"),
                       ("WriteIOPS", "write_iops")):  # fmt: skip
        for index, rule in enumerate(block_io.get(f"throttle{kind}Device") or []):
            if "major" not in rule or "minor" not in rule or (rule.get("rate") or 0) < 0:
                raise BadValue(f"{field}.throttle{kind}Device[{index}]", rule, "major, minor and a rate of 0 or more")
            settings.append((what, f"{rule['major']}:{rule['minor']}", rule.get("rate") or 0))
    return settings


def _capabilities(config: dict) -> tuple[list[str] | None, tuple | None]:
    from engine.capabilities import CAPABILITIES

    caps = config["process"].get("capabilities")
    if caps is None:
        return None, None  # no "capabilities": the process keeps what it has (as runc)
    sets = {}
    for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        names = []
        for cap in caps.get(name) or []:
            short = cap.upper().removeprefix("CAP_")
            if short not in CAPABILITIES:
                raise BadValue(f"config.json process.capabilities.{name}", cap, "a capability such as CAP_CHOWN")
            names.append(short)
        sets[name] = names
    return sets["bounding"], (sets["effective"], sets["permitted"], sets["inheritable"], sets["ambient"])


def _rlimits(config: dict) -> list[tuple[int, int, int]]:
    import resource

    limits = []
    for index, rlimit in enumerate(config["process"].get("rlimits") or []):
        number = getattr(resource, rlimit.get("type") or "", None)
        if not isinstance(number, int) or not rlimit["type"].startswith("RLIMIT_"):
            raise BadValue(f"config.json process.rlimits[{index}].type", rlimit.get("type"), "RLIMIT_NOFILE or another")
        soft, hard = rlimit.get("soft"), rlimit.get("hard")
        if soft is None or hard is None or soft > hard:
            raise BadValue(f"config.json process.rlimits[{index}]", rlimit, "a soft and a hard limit, soft <= hard")
        limits.append((number, soft, hard))
    return limits


def plan_for(config: dict, container: Container, driver: object, group: str) -> process.LaunchPlan:
    """config.json -> the LaunchPlan the engine's process code runs (everything checked first)."""
    from engine.rootfs.oci import OciRootfsPlan

    linux = config.get("linux") or {}
    proc = config["process"]
    private, paths = set(), {}
    for index, ns in enumerate(linux.get("namespaces") or []):
        name = NAMESPACE_NAMES.get(ns.get("type"))
        if name is None:
            raise BadValue(f"config.json linux.namespaces[{index}].type", ns.get("type"), ", ".join(NAMESPACE_NAMES))
        if ns.get("path"):
            paths[name] = ns["path"]
        else:
            private.add(name)
    if "mnt" not in private:
        raise UnsupportedField("linux.namespaces", "minibox needs a new mount namespace (type mount, no path)")
    hostname = config.get("hostname") or ""
    if (hostname or config.get("domainname")) and "uts" not in private and "uts" not in paths:
        raise BadValue("config.json hostname", hostname, "a private uts namespace to set it in")
    user = proc.get("user") or {}
    cwd = proc.get("cwd") or "/"
    if not cwd.startswith("/"):
        raise BadValue("config.json process.cwd", cwd, "an absolute path")
    offsets = linux.get("timeOffsets") or {}
    bounding, sets = _capabilities(config)
    seccomp = None
    if linux.get("seccomp"):
        from engine.seccomp import Filter

        seccomp = Filter(linux["seccomp"], bool(proc.get("noNewPrivileges")))
    return process.LaunchPlan(
        argv=proc["args"], env=proc.get("env") or [], uid=user.get("uid", 0), gid=user.get("gid", 0),
        groups=user.get("additionalGids") or [], umask=user.get("umask"), workdir=cwd,
        hostname=hostname, domainname=config.get("domainname") or "", namespaces=private, ns_paths=paths,
        uid_map=[(m["containerID"], m["hostID"], m["size"]) for m in linux.get("uidMappings") or []],
        gid_map=[(m["containerID"], m["hostID"], m["size"]) for m in linux.get("gidMappings") or []],
        monotonic_offset=(offsets.get("monotonic") or {}).get("secs", 0),
        boottime_offset=(offsets.get("boottime") or {}).get("secs", 0),
        tty=bool(proc.get("terminal")), console_size=_console_size(proc), found_in="the bundle",
        cgroup_join=driver.self_join_files(group), capabilities=bounding, capability_sets=sets,
        rlimits=_rlimits(config), no_new_privileges=bool(proc.get("noNewPrivileges")),
        oom_score_adj=proc.get("oomScoreAdj"), seccomp=seccomp,
        rootfs=OciRootfsPlan(
            root=config["root"]["path"], readonly=bool(config["root"].get("readonly")),
            mounts=config.get("mounts") or [], devices=linux.get("devices") or [],
            masked=linux.get("maskedPaths") or [], readonly_paths=linux.get("readonlyPaths") or [],
            sysctl=linux.get("sysctl") or {}, propagation=linux.get("rootfsPropagation") or "",
            user_ns="user" in private or "user" in paths, cgroup_version=driver.version,
            cgroup_mounts=getattr(driver, "mounts", None), cgroup_ns="cgroup" in private or "cgroup" in paths,
            own_namespaces=private | set(paths),
        ),
    )  # fmt: skip


def _console_size(proc: dict) -> tuple[int, int] | None:
    size = proc.get("consoleSize")
    return (size.get("height", 0), size.get("width", 0)) if size else None


def create(root: str, container_id: str, bundle: str, pid_file: str = "", console_socket: str = "") -> Container:
    """Make the container; its init waits on the start fifo. Nothing is left behind on failure."""
    container = Container(root, container_id)
    bundle = os.path.abspath(bundle)
    config = load(bundle)
    if config["process"].get("terminal") and not console_socket:
        raise BadValue("--console-socket", "", "a socket path: config.json asks for a terminal (process.terminal)")
    os.makedirs(root, mode=0o711, exist_ok=True)
    with state.Lock(root):
        if os.path.exists(container.dir):
            raise OciStateError(f"container with id exists: {container_id}", "pick another id, or `delete` it")
        os.makedirs(container.dir, mode=0o711)
    driver = group = None
    sock = None
    fifo_fd = -1
    try:
        driver, group, limits, rules = _cgroups(config, container_id)
        plan = plan_for(config, container, driver, group)
        os.mkfifo(container.fifo)
        os.chmod(container.fifo, 0o622)  # not through mkfifo (the umask): the init may be another user by then
        plan.start_fifo = fifo_fd = os.open(container.fifo, os.O_PATH | os.O_CLOEXEC)
        driver.create(group, limits)
        if rules:
            driver.set_device_rules(group, rules)
        if console_socket:
            import engine.console  # noqa: F401 -- the init needs it, and cannot import once inside the root

            sock = _connect(console_socket)
            plan.console_socket = sock.fileno()
        container.data = {
            "id": container_id, "pid": 0, "bundle": bundle, "rootfs": config["root"]["path"],
            "created": _rfc3339(time.time()), "cgroup": group,
            "cgroup_controllers": list(getattr(driver, "mounts", {})),
            "annotations": config.get("annotations") or {}, "hooks": config.get("hooks") or {},
        }  # fmt: skip
        if any(config.get("hooks") or {}):
            plan.hooks = {
                "runtime": lambda pid: _runtime_hooks(container, pid),
                "create_container": config["hooks"].get("createContainer") or [],
                "start_container": config["hooks"].get("startContainer") or [],
            }
        pid = process.launch(plan)
        container.data.update(pid=pid, pid_start_time=state.process_start_time(pid))
        container.save()
        if pid_file:
            _write_atomically(pid_file, str(pid))
    except BaseException:
        if driver is not None and group is not None and driver.exists(group):
            driver.kill_all(group)
            _remove_cgroup(root, driver, group)
        state.remove_tree(container.dir)
        raise
    finally:
        if sock is not None:
            sock.close()
        if fifo_fd >= 0:
            os.close(fifo_fd)
    return container


def process_like_the_init(root: str, container_id: str, argv: list[str], env: list[str], cwd: str, tty: bool) -> dict:
    """``exec ID COMMAND`` without --process: the container's own process settings (user,
    capabilities, no_new_privs, rlimits, environment), with this command, as runc does."""
    container = Container(root, container_id).load()
    proc = dict(load(container.data["bundle"])["process"])
    if not argv:
        raise BadValue("COMMAND", "", "a command to run in the container")
    proc.update(args=argv, env=[*(proc.get("env") or []), *env], cwd=cwd, terminal=tty)
    proc.pop("consoleSize", None)
    return proc


def exec_process(root: str, container_id: str, proc: dict, detach: bool = False, pid_file: str = "",
                 console_socket: str = "") -> int:  # fmt: skip
    """Run one more process in a running container (``runc exec``; ``podman exec`` calls it).

    The same ``setns(2)`` into each of the init's namespaces and the same cgroups as ``minibox
    exec``; the container's seccomp filter (from its bundle) applies to it too. Returns its PID
    with ``detach`` (the manager waits for it), otherwise its exit status.
    """
    from engine import cgroups
    from engine.oci.config import SCHEMA, check

    container = Container(root, container_id).load()
    if container.status() != "running":
        raise OciStateError(f"cannot exec in a container that is {container.status()}", "start it first")
    check(proc, SCHEMA["process"], "process")
    if not proc.get("args"):
        raise BadValue("process.args", [], "the command to run")
    if proc.get("terminal") and not console_socket:
        raise BadValue("--console-socket", "", "a socket path: the process asks for a terminal")
    bundle_config = load(container.data["bundle"])
    config = {**bundle_config, "process": proc}
    bounding, sets = _capabilities(config)
    user = proc.get("user") or {}
    seccomp = None
    if (bundle_config.get("linux") or {}).get("seccomp"):
        from engine.seccomp import Filter

        seccomp = Filter(bundle_config["linux"]["seccomp"], bool(proc.get("noNewPrivileges")))
    plan = process.LaunchPlan(
        argv=proc["args"], env=proc.get("env") or [], uid=user.get("uid", 0), gid=user.get("gid", 0),
        groups=user.get("additionalGids") or [], umask=user.get("umask"), workdir=proc.get("cwd") or "/",
        tty=bool(proc.get("terminal")), console_size=_console_size(proc), found_in="the container",
        join_pid=container.data["pid"], cgroup_join=cgroups.membership_files(container.data["pid"]),
        capabilities=bounding, capability_sets=sets, rlimits=_rlimits(config),
        no_new_privileges=bool(proc.get("noNewPrivileges")), seccomp=seccomp, namespaces=set(),
    )  # fmt: skip
    sock = None
    try:
        if console_socket:
            import engine.console  # noqa: F401 -- the init needs it, and cannot import once inside the root

            sock = _connect(console_socket)
            plan.console_socket = sock.fileno()
        pid = process.launch(plan)
    finally:
        if sock is not None:
            sock.close()
    if pid_file:
        _write_atomically(pid_file, str(pid))
    if detach:
        return pid
    return process.wait_exit_code(pid)


def _hook_state(container: Container, pid: int, status: str) -> dict:
    return {"ociVersion": OCI_VERSION, "id": container.id, "status": status, "pid": pid,
            "bundle": container.data["bundle"], "annotations": container.data.get("annotations") or {}}  # fmt: skip


def _runtime_hooks(container: Container, pid: int) -> bytes:
    """prestart and createRuntime (in create, while the init waits before pivot_root)."""
    from engine.oci import hooks

    hook_state = _hook_state(container, pid, "created")
    for kind in ("prestart", "createRuntime"):
        hooks.run(container.data["hooks"].get(kind) or [], hook_state, kind)
    return json.dumps(hook_state).encode()


def _run_reporting_failures(container: Container, kind: str, pid: int, status: str) -> None:
    """poststart and poststop: each hook runs; a failing one is a warning, as the spec says."""
    from engine.oci import hooks

    for hook in container.data.get("hooks", {}).get(kind) or []:
        try:
            hooks.run([hook], _hook_state(container, pid, status), kind)
        except hooks.HookFailed as e:
            _warn(e.what)


def _warn(message: str) -> None:
    import sys

    print(f"minibox-runc: warning: {message}", file=sys.stderr)


def start(root: str, container_id: str) -> None:
    """Let the created container's command run: read the fifo its init is blocked writing to."""
    container = Container(root, container_id).load()
    status = container.status()
    if status != "created":
        raise OciStateError(f"cannot start a container that is {status}", "create a new one")
    fd = os.open(container.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if os.read(fd, 1):
                    break
            except BlockingIOError:
                pass
            if not container.alive():
                raise OciStateError("the container's init died before it could start", "see its log; `delete` it")
            if time.monotonic() > deadline:
                raise OciStateError("the container's init did not answer on its start fifo", "`delete --force` it")
            time.sleep(0.001)
    finally:
        os.close(fd)
    os.unlink(container.fifo)
    # a failure here is reported, not fatal (the command runs already); the other hooks still run
    _run_reporting_failures(container, "poststart", container.data["pid"], "running")


def _freezer_file(container: Container) -> tuple[str, str, str]:
    """(file, frozen value, thawed value) of the container's freezer: v1 freezer.state, v2 cgroup.freeze."""
    driver = _driver_for(container)
    group = container.data["cgroup"]
    if driver.version == "v2":
        return os.path.join(driver.path(group), "cgroup.freeze"), "1", "0"
    return os.path.join(driver.directories(group).get("freezer", "/nonexistent"), "freezer.state"), "FROZEN", "THAWED"


def _frozen(container: Container) -> bool:
    path, frozen, _ = _freezer_file(container)
    try:
        with open(path) as f:
            return f.read().strip() == frozen
    except OSError:
        return False


def pause(root: str, container_id: str, resume: bool = False) -> None:
    """Freeze every process of the container (``runc pause``), or thaw them (``resume``)."""
    container = Container(root, container_id).load()
    status = container.status()
    if status != ("paused" if resume else "running"):
        raise OciStateError(f"cannot {'resume' if resume else 'pause'} a container that is {status}",
                            "see `minibox-runc state`")  # fmt: skip
    path, frozen, thawed = _freezer_file(container)
    if not os.path.exists(path):
        raise OciStateError("this container has no freezer cgroup (made by an older minibox-runc)", "recreate it")
    with open(path, "w") as f:
        f.write(thawed if resume else frozen)
    deadline = time.monotonic() + 5
    while _frozen(container) == resume and time.monotonic() < deadline:  # v1 goes through FREEZING
        time.sleep(0.005)


def state_of(root: str, container_id: str) -> dict:
    return Container(root, container_id).load().report()


def kill(root: str, container_id: str, signal_name: str, every_process: bool = False) -> None:
    container = Container(root, container_id).load()
    number = parse_signal(signal_name)
    if container.status() == "stopped":
        raise OciStateError("container not running", "nothing to signal")
    if every_process:
        driver = _driver_for(container)
        for pid in driver.processes(container.data["cgroup"]):
            process.signal_if_alive(pid, number)
    else:
        process.signal_if_alive(container.data["pid"], number)


def delete(root: str, container_id: str, force: bool = False) -> None:
    container = Container(root, container_id)
    if not container.exists():
        if force:
            return  # runc too: deleting what is not there, with --force, is not an error
        container.load()
    container.load()
    status = container.status()
    driver = _driver_for(container)
    group = container.data["cgroup"]
    if status != "stopped":
        if not force:
            raise OciStateError(f"cannot delete container {container_id} that is not stopped: {status}",
                                "stop it first, or use --force")  # fmt: skip
        if status == "paused":  # a frozen process cannot die: thaw first (it is killed at once)
            path, _, thawed = _freezer_file(container)
            with open(path, "w") as f:
                f.write(thawed)
        if driver.exists(group):
            driver.kill_all(group)
        process.signal_if_alive(container.data["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while driver.exists(group) and driver.processes(group) and time.monotonic() < deadline:
        time.sleep(0.005)  # a killed process leaves its cgroup only when it is fully gone
    _remove_cgroup(root, driver, group)
    state.remove_tree(container.dir)
    _run_reporting_failures(container, "poststop", 0, "stopped")  # the container is gone already


def _remove_cgroup(root: str, driver: object, group: str) -> None:
    if driver.exists(group):
        driver.remove(group)
    parent = os.path.dirname(group)
    if parent == f"{state.prefix()}-runc":  # the default place (no cgroupsPath): leave nothing behind
        with state.Lock(root):
            driver.remove_if_empty(parent)


def list_containers(root: str) -> list[dict]:
    if not os.path.isdir(root):
        return []
    found = []
    for name in sorted(os.listdir(root)):
        try:
            container = Container(root, name)
        except BadValue:
            continue  # not a container's directory (the lock file, say)
        if container.is_ours():
            found.append(container.report())
    return found


def features() -> dict:
    """What this runtime supports (``runc features``; the runtime spec's features document)."""
    from engine.capabilities import CAPABILITIES
    from engine.rootfs.oci import FLAG_OPTIONS, PROPAGATION_OPTIONS
    from engine.seccomp import ACTIONS, OPERATORS

    return {
        "ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION, "hooks": HOOKS,
        "mountOptions": sorted([*FLAG_OPTIONS, *PROPAGATION_OPTIONS]),
        "linux": {
            "namespaces": sorted(NAMESPACE_NAMES), "capabilities": [f"CAP_{c}" for c in CAPABILITIES],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": True, "actions": sorted(ACTIONS), "operators": sorted(OPERATORS)},
            "apparmor": {"enabled": False}, "selinux": {"enabled": False},
        },
        "annotations": {"org.opencontainers.runtime.name": "minibox"},
    }  # fmt: skip


def parse_signal(name: str) -> int:
    """``KILL``, ``SIGKILL``, ``9`` -> 9."""
    text = str(name).strip().upper()
    if text.isdigit():
        number = int(text)
    else:
        member = getattr(signal, text if text.startswith("SIG") else f"SIG{text}", None)
        number = int(member) if isinstance(member, signal.Signals) else -1
    if number not in {int(s) for s in signal.valid_signals()}:
        raise BadValue("signal", name, "a signal name or number such as TERM, SIGKILL or 9")
    return number


def _driver_for(container: Container) -> object:
    from engine import cgroups

    driver = cgroups.driver()
    if driver.version == "v1" and container.data.get("cgroup_controllers"):
        from engine.cgroups.v1 import CgroupV1

        driver = CgroupV1(tuple(container.data["cgroup_controllers"]))
    return driver


def _rfc3339(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1e9):09d}Z"


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)
    except OSError as e:
        raise MiniboxError(
            f"cannot write {path}: {e.strerror}", "give --pid-file a path in a directory that exists"
        ) from None


def _connect(path: str) -> object:
    """The manager's console socket (it receives the terminal's master side)."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise MiniboxError(f"cannot connect to the console socket {path}: {e.strerror}",
                           "give --console-socket the path of a listening Unix socket") from None  # fmt: skip
    return sock
