"""The container lifecycle: create, start, wait, stop, remove, and clean up after crashes.

This is the library's front door (``engine/__init__.py`` re-exports it): the ``minibox`` CLI, the
TUI, the notebooks and the labs all call these functions. A container goes through:

    create   record it (state ``created``), make its directories, write its init layer
    start    make its cgroup and launch its init in new namespaces (``process.launch``); state
             ``running``
    wait     its supervisor (``minibox run`` itself, or the shim of a ``-d`` container) waits for
             the exit code, then ``finalize``s: OOM check, cgroup removed; state ``stopped``
    remove   delete its directories (and, with ``--rm``, this happens right after finalize)

Every step undoes what it made if a later step fails, so an error never leaves a cgroup, a mount,
a process or a half-written record behind; ``gc`` repairs what a killed minibox could not.
"""

from __future__ import annotations

import _signal as signal  # `signal` without its enum classes: importing enum costs ~3 ms per run
import os
import time

from engine import cgroups, images, namespaces, process, state, syscalls, trace
from engine.errors import (
    BadValue,
    ImageNotFound,
    InvalidState,
    MiniboxError,
    NameInUse,
    NotRoot,
    NotRunning,
    Unsupported,
)
from engine.spec import DEFAULT_PATH, ContainerSpec
from engine.state import CREATED, RUNNING, STOPPED, Lock, Paths, Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: collections.abc costs ~1 ms to import
    from collections.abc import Callable


def _require_root() -> None:
    if os.geteuid() != 0:
        raise NotRoot()


# --- create ------------------------------------------------------------------------------------


def create(spec: ContainerSpec, paths: Paths | None = None, *, awaiting_start: bool = False) -> Record:
    """Check everything that can be checked, then make the container's record and directories
    (as ``docker create``; its cgroup is made by ``start``, as runc makes it, see _make_cgroup).

    ``awaiting_start``: ``minibox create``, whose container waits for a ``minibox start`` with
    nobody supervising it (``gc`` leaves it alone); otherwise this process supervises it.
    """
    _require_root()
    paths = paths or Paths()
    paths.ensure()
    namespaces.require_supported(spec.namespaces)
    image = images.get(paths, spec.image)
    trace.note(
        "image",
        f"{spec.image} is {image.id[:19]}…: {len(image.layers)} layer(s), config says "
        f"Cmd={image.settings.get('Cmd')} WorkingDir={image.settings.get('WorkingDir') or '/'}",
    )
    unpacked = images.unpack_layers(paths, image)  # the image's first container: pulled layers are still blobs
    if unpacked:
        trace.note("image", f"{unpacked} layer(s) unpacked from their blobs, each checked against its diff ID")
    command = spec.command or image.default_command
    if not command:
        raise BadValue("COMMAND", "", f"a command to run: image {spec.image!r} has no default")
    from engine.users import resolve

    resolve(image, spec.user)  # fail now on an unknown user, not inside the container
    container_id = os.urandom(32).hex()
    name = spec.name or f"box-{container_id[:8]}"
    if not _is_a_name(name):
        raise BadValue("--name", name, "ASCII letters and digits, then also '-', '_' or '.' (up to 128)")
    record = Record(paths, {
        "id": container_id, "name": name, "created": time.time(), "image": image.name, "image_id": image.id,
        "command": command, "spec": spec.to_dict(), "state": CREATED,
        "cgroup": {"version": cgroups.driver().version, "group": f"{state.prefix()}/{container_id}"},
        "rootfs": {"mode": spec.rootfs_mode, "diff_ids": image.config["rootfs"]["diff_ids"]},
    })  # fmt: skip
    # The creating process is the supervisor until a shim (``run -d``) takes over: a record
    # always names a live process responsible for it, or waits for `minibox start`, so ``gc``
    # never mistakes it for a leftover.
    if awaiting_start:
        record.data["awaiting_start"] = True
    else:
        _set_supervisor(record)
    with Lock(paths):  # directory and record appear together, as far as `gc` can tell (the cgroup
        # comes later, at start: a cgroup gc finds always has a record, saved first)
        if not os.path.exists(images.Store(paths).manifest_path(image.id)):  # an `rmi` got there first
            raise ImageNotFound(spec.image)
        for other in state.all_records(paths):
            if other.name == name:
                raise NameInUse(name, other.id)
        os.mkdir(record.dir(), mode=0o711)
        try:
            _prepare_filesystem(record, spec, image)
            trace.note("rootfs", f"containers/{record.id[:12]}…/: upper and work on disk; init layer (hostname, "
                                 "hosts) and the rootfs mount point under run/")  # fmt: skip
            _reserve_network(record, spec)
            record.save()
        except BaseException:
            _discard(record)
            raise
    return record


def _reserve_network(record: Record, spec: ContainerSpec) -> None:
    """What the container's network will be: an address on a network, or another's namespace."""
    if spec.network == "none":
        return
    if spec.network == "host":
        # netns.host_netns_name(), read here first: engine.network costs ~15 ms to import (and
        # weighs on every later fork of this process), and most --net host runs do not need it
        if os.environ.get("MINIBOX_HOST_NETNS"):  # the sandbox that plays the host (engine/network/netns.py)
            from engine.network import netns

            record.data["network"] = {"mode": "host", "netns": netns.host_netns_path()}
        return
    if spec.network.startswith("container:"):
        other = state.find(record.paths, spec.network.partition(":")[2])
        if other.state != RUNNING:
            raise NotRunning(other.name, other.state, "share its network namespace")
        record.data["network"] = {"mode": "container", "container": other.id, "name": other.name}
        import shutil

        for name in ("hosts", "resolv.conf"):  # one network namespace, one view of names
            theirs = os.path.join(other.data["rootfs"]["init"], "etc", name)
            if os.path.exists(theirs):
                shutil.copyfile(theirs, os.path.join(record.data["rootfs"]["init"], "etc", name))
        return
    from engine import network

    network.reserve(record, spec.network, spec.publish, spec.hostname or record.id[:12])


def _network_plan(record: Record, in_child: bool = False) -> dict:
    """The LaunchPlan fields for the container's network: a namespace to join, or a hook.

    ``in_child``: wire the network from a short-lived child process. The shim of a ``-d``
    container lives as long as the container: it should not keep pyroute2 (~20 MB) in memory.
    """
    attached = record.data.get("network") or {}
    mode = attached.get("mode")
    if mode == "host":
        return {"net_join": attached["netns"]}
    if mode == "container":
        other = state.find(record.paths, attached["container"])
        if other.state != RUNNING:
            raise NotRunning(other.name, other.state, "share its network namespace")
        return {"net_join": f"/proc/{other.pid}/ns/net"}
    if mode == "bridge":
        if in_child:
            return {"network_hook": lambda pid: _attach_in_child(record, pid)}
        from engine import network

        return {"network_hook": lambda pid: network.attach(record, pid)}
    return {}


def _attach_in_child(record: Record, pid: int) -> None:
    """network.attach in a forked child that exits afterwards; its error, if any, is raised here."""
    answer_r, answer_w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        try:
            os.close(answer_r)
            from engine import network

            os.write(answer_w, b"ok " + network.attach(record, pid).encode())
        except BaseException as e:  # noqa: BLE001 -- handed to the parent as one line
            os.write(answer_w, process._describe(e).encode())
        finally:
            os._exit(0)
    os.close(answer_w)
    with os.fdopen(answer_r, "rb") as f:
        answer = f.read().decode()
    os.waitpid(child, 0)
    if not answer.startswith("ok "):
        from engine.errors import rebuild

        raise rebuild(answer) if answer else MiniboxError("wiring the container's network failed", "run `minibox gc`")
    record.data["network"]["mac"] = answer[3:]


def _release_network(record: Record) -> None:
    if (record.data.get("network") or {}).get("mode") == "bridge":
        from engine import network

        network.release(record)


def _limits(spec: ContainerSpec) -> cgroups.Limits:
    return cgroups.Limits(memory=spec.memory, cpus=spec.cpus, pids=spec.pids_limit)


def _prepare_filesystem(record: Record, spec: ContainerSpec, image: images.Image) -> None:
    """The overlay's directories, and the init layer: files every container gets its own copy of.

    Bottom to top: the image's layers (read-only, shared by every container of the image), the
    container's **init layer** (``init/``: its hostname, hosts and, on a network, resolv.conf, as docker's
    ``-init`` layer), then its writable **upper** layer, the only one it changes.
    """
    layers = image.layers
    if "user" in spec.namespaces:
        layers = images.shifted_layers(image, *_owner(spec))
    init = record.runtime_dir("init")
    record.data["rootfs"].update(
        layers=layers, init=init, lower=":".join([init, *reversed(layers)]),
        upper=record.dir("upper"), work=record.dir("work"), target=record.runtime_dir("rootfs"),
    )  # fmt: skip
    for directory in (record.dir("upper"), record.dir("work")):
        os.mkdir(directory, mode=0o755)
        if _owner(spec) != (0, 0):
            os.chown(directory, *_owner(spec))
    _make_runtime_directories(record, spec)


def _make_runtime_directories(record: Record, spec: ContainerSpec) -> None:
    """The init layer and the overlay's mount point, under run/ (see engine/state.py): made at
    create, and again by a start that finds them gone (a reboot empties the tmpfs under /run while
    a container made by ``minibox create`` waits)."""
    rootfs = record.data["rootfs"]
    init, owner = rootfs["init"], _owner(spec)
    try:
        os.mkdir(os.path.dirname(init), mode=0o711)
    except FileNotFoundError:  # after a reboot: no run/containers/ at all
        record.paths.ensure()
        os.mkdir(os.path.dirname(init), mode=0o711)
    except FileExistsError:
        pass
    for directory in (init, f"{init}/etc", rootfs["target"]):
        os.mkdir(directory, mode=0o755)
    hostname = spec.hostname or record.id[:12]
    files = {
        "etc/hostname": f"{hostname}\n",
        "etc/hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n",
    }
    for relative, text in files.items():
        state.write_file(os.path.join(init, relative), text.encode(), new=True)
    if owner != (0, 0):  # the container's root (an unprivileged ID outside) owns its init layer
        for path in (init, f"{init}/etc", *(os.path.join(init, relative) for relative in files)):
            os.lchown(path, *owner)


def _owner(spec: ContainerSpec) -> tuple[int, int]:
    """Who owns the container's own files on the host: root, or with a user namespace the host
    IDs its root maps to."""
    if "user" not in spec.namespaces:
        return 0, 0
    return _host_id(spec.uid_map), _host_id(spec.gid_map)


def _host_id(id_map: tuple[tuple[int, int, int], ...]) -> int:
    """The host ID that ID 0 inside maps to."""
    for inside, outside, count in id_map:
        if inside <= 0 < inside + count:
            return outside - inside
    raise BadValue("--uidmap/--gidmap", id_map, "a range that maps ID 0 (root inside the container)")


def _discard(record: Record) -> None:
    """Undo create() and a failed start: the cgroup, the network lease and the directories."""
    _remove_cgroup(record)
    _unmount_host_side(record)
    _release_network(record)
    record.remove_directories()


def _make_cgroup(record: Record, spec: ContainerSpec) -> None:
    """The container's cgroup, with its limits. ``start`` calls it right after forking the init,
    which waits for it before joining (see process.LaunchPlan); so does runc."""
    group = record.data["cgroup"]["group"]
    try:
        cgroups.driver().create(group, _limits(spec))
    except OSError as e:
        raise MiniboxError(
            f"cannot create the container's cgroup: {e.strerror}", "check -m/--cpus/--pids-limit, then `minibox gc`"
        ) from None
    trace.note("cgroup", f"cgroup {cgroups.driver().version}: {group[:len(state.prefix()) + 13]}… made, "
                         f"limits: {_limits(spec)}, while the init wakes up; it joins it next")  # fmt: skip


def _remove_cgroup(record: Record) -> None:
    """Remove the container's cgroup, killing anything still in it (``minibox``'s own group, the
    parent of every container's, stays, as docker's does; ``minibox gc`` removes it)."""
    group = record.data["cgroup"]["group"]
    drv = cgroups.driver()
    if drv.exists(group):
        drv.kill_all(group)
        drv.remove(group)


def _unmount_host_side(record: Record) -> None:
    """Without a mount namespace (``--mntns host --chroot``) the rootfs was mounted on the host."""
    if "mnt" in record.data["spec"]["namespaces"]:  # mounted in the container's own: gone with it
        return
    target = record.data["rootfs"].get("target")
    if target and os.path.ismount(target):
        syscalls.umount2(target, syscalls.MNT_DETACH)  # detaches every mount below it as well


# --- start -------------------------------------------------------------------------------------


def start(
    record: Record, stdio: tuple[int, int, int] | None = None, *, network_in_child: bool = False
) -> tuple[int, int | None]:
    """Launch the container's init. Returns (host PID of init, pty master fd if ``tty``)."""
    record.guard("start", "create a new container with `minibox run`")
    spec = ContainerSpec.from_dict(record.data["spec"])
    image = images.get(record.paths, record.data.get("image_id") or record.data["image"])
    from engine.rootfs import RootfsPlan
    from engine.users import resolve

    layout = cgroups.driver()
    rootfs = record.data["rootfs"]
    if not os.path.isdir(rootfs["init"]):  # made by `minibox create`, then the machine rebooted: /run is
        _make_runtime_directories(record, spec)  # empty (as docker, it still starts; an --rm one is forgotten)
    uid, gid, groups = resolve(image, spec.user)
    plan = process.LaunchPlan(
        argv=record.data["command"],
        env=_environment(image, spec.env),
        uid=uid,
        gid=gid,
        groups=groups,
        workdir=spec.workdir or image.settings.get("WorkingDir") or "/",
        hostname=(spec.hostname or record.id[:12]) if "uts" in spec.namespaces else "",
        namespaces=spec.namespaces,
        uid_map=spec.uid_map,
        gid_map=spec.gid_map,
        monotonic_offset=spec.monotonic_offset,
        boottime_offset=spec.boottime_offset,
        init=spec.init,
        capabilities=spec.capabilities,
        tty=spec.tty,
        found_in=f"image {record.data['image']!r}",
        cgroup_join=layout.self_join_files(record.data["cgroup"]["group"]),
        make_cgroup=lambda: _make_cgroup(record, spec),
        # earlier --rm containers' empty layers; what fails stays for the next start, or gc to report
        meanwhile=lambda: state.empty_trash(record.paths),
        stdio=stdio,
        rootfs=RootfsPlan(
            lower=rootfs["lower"], upper=rootfs["upper"], work=rootfs["work"], target=rootfs["target"],
            mode=spec.rootfs_mode, private_mounts="mnt" in spec.namespaces, user_ns="user" in spec.namespaces,
            pid_ns="pid" in spec.namespaces, net_ns="net" in spec.namespaces,
            cgroup_version=layout.version, cgroup_mounts=getattr(layout, "mounts", None),
            volatile=spec.auto_remove,
        ),
        **_network_plan(record, network_in_child),
        trace=trace.enabled(),
    )  # fmt: skip
    pid, master = launch_with_console(plan)
    # A "created" record is changed only by the process starting it (this one, its supervisor)
    # or, if that process died, by gc/rm: no need to reload it before writing.
    record.data.update(state=RUNNING, pid=pid, pid_start_time=state.process_start_time(pid), started_at=time.time())
    record.save()
    return pid, master


def launch_with_console(plan: process.LaunchPlan) -> tuple[int, int | None]:
    """process.launch, plus receiving the pty master over a socket pair when ``plan.tty``."""
    if not plan.tty:
        return process.launch(plan), None
    import socket

    from engine.console import receive_fd  # imported before forking: see process.py on user namespaces

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    plan.console_socket = theirs.fileno()
    try:
        pid = process.launch(plan)
        theirs.close()
        return pid, receive_fd(ours.fileno())
    finally:
        ours.close()
        theirs.close()


def _environment(image: images.Image, extra: list[str]) -> list[str]:
    env = {"PATH": DEFAULT_PATH, "HOME": "/root"}
    for var in image.env + extra:
        key, _, value = var.partition("=")
        env[key] = value
    if "TERM" not in env:
        env["TERM"] = os.environ.get("TERM", "xterm")
    return [f"{k}={v}" for k, v in env.items()]


# --- run: create + start + wait ----------------------------------------------------------------


NAME_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def _is_a_name(name: str) -> bool:
    """docker's rule for names, [A-Za-z0-9][A-Za-z0-9_.-]{0,127}, without importing ``re`` for it."""
    return 0 < len(name) <= 128 and name[0] not in "_.-" and set(name) <= NAME_CHARACTERS


def run(spec: ContainerSpec, paths: Paths | None = None, stdio: tuple[int, int, int] | None = None) -> int:
    """Run a container in the foreground, as ``minibox run`` without ``-d``; return its exit code."""
    if spec.detach:
        raise Unsupported("run() waits for the container", "call run_detached() for -d")
    record = create(spec, paths)
    return _run_in_foreground(record, stdio, spec.interactive, if_start_fails=_discard)


def run_created(ref: str, interactive: bool = False, paths: Paths | None = None) -> int:
    """``minibox start -a``: start a container ``minibox create`` made, in the foreground; return
    its exit code. If its start fails (say its command is not in the image) it stays created."""
    record = _claim_for_start(ref, paths)
    if record.state == RUNNING:
        raise InvalidState(record.name, RUNNING, "attach to it", f"see its output with `minibox logs -f {record.name}`")
    _set_supervisor(record)
    record.save()
    # as docker: input reaches only a container made with -i (its stdin kept open)
    interactive = interactive and bool(record.data["spec"].get("interactive"))
    return _run_in_foreground(record, None, interactive, if_start_fails=back_to_created)


_START_FIX = "minibox starts a container once: `minibox run` a new one (or `minibox create` then `start`)"


def _claim_for_start(ref: str, paths: Paths | None) -> Record:
    """Take a container ``minibox create`` made for starting, under the state lock: two
    ``minibox start`` at once never both start it (the second sees it claimed, by a live process).
    A running one is returned as it is. It waits for a start (``awaiting_start``) until its
    supervisor takes over (``_set_supervisor``): a start killed before that leaves it startable."""
    record = get(ref, paths)
    with Lock(record.paths):
        fresh = state.load(record.paths, record.id)
        if fresh is None:  # removed meanwhile
            from engine.errors import ContainerNotFound

            raise ContainerNotFound(ref)
        record = fresh
        if record.state == RUNNING:  # as docker: starting a running container changes nothing
            return record
        record.guard("start", _START_FIX)
        claim = record.data.get("starting") or [None, None]
        if not record.data.get("awaiting_start") or state.process_alive(*claim):
            raise InvalidState(record.name, "being started", "start it", "see `minibox ps -a`")
        record.data["starting"] = [os.getpid(), state.own_start_time()]
        record.save()
    return record


def back_to_created(record: Record) -> None:
    """A start failed before the command ran: the container waits for `minibox start` again
    (with ``--rm``, as docker, it is removed instead)."""
    if record.data["spec"].get("auto_remove"):
        _discard(record)
        return
    _unmount_host_side(record)  # --mntns host: the failed start's mounts were the host's
    _remove_cgroup(record)  # a created container has none (start makes it)
    with Lock(record.paths):
        fresh = state.load(record.paths, record.id)
        if fresh is None or fresh.state != CREATED:  # removed, or started after all (its shim died late)
            return
        fresh.data["awaiting_start"] = True
        for field in ("supervisor_pid", "supervisor_start_time", "starting"):
            fresh.data.pop(field, None)
        fresh.save()


def _run_in_foreground(
    record: Record, stdio: tuple[int, int, int] | None, interactive: bool, if_start_fails: Callable[[Record], None]
) -> int:
    """Start the container, pass signals on to it, wait for its exit code and record it."""
    null = -1
    if stdio is None and not interactive:  # as docker: without -i the container reads nothing
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        stdio = (null, 1, 2)
    try:
        pid, master = start(record, stdio)
    except BaseException:
        if_start_fails(record)
        raise
    finally:
        if null >= 0:
            os.close(null)
    code = None
    try:
        with _forward_signals(pid):
            if master is not None:
                from engine.console import proxy

                try:
                    proxy(master, 0 if interactive else -1, 1)
                finally:
                    os.close(master)
            code = process.wait_exit_code(pid)
    finally:
        if code is None:  # something failed while the container ran: do not leave it unwatched
            code = kill_and_wait(pid)
        finalize(record, code)
    return code


def kill_and_wait(pid: int) -> int:
    """SIGKILL our child ``pid`` (a container's init or an exec'd process) and collect its exit."""
    process.signal_if_alive(pid, signal.SIGKILL)
    return process.wait_exit_code(pid)


def _set_supervisor(record: Record) -> None:
    """Name this process as the one that waits for the container and records its exit."""
    record.data.pop("awaiting_start", None)
    record.data.pop("starting", None)
    record.data["supervisor_pid"] = os.getpid()
    record.data["supervisor_start_time"] = state.own_start_time()


class _forward_signals:
    """While a foreground container runs, pass SIGINT/SIGTERM/SIGHUP on to its init.

    A PID 1 ignores signals it has no handler for, so Ctrl-C may do nothing (as with docker):
    the third Ctrl-C kills the container instead of leaving the learner stuck.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.interrupts = 0
        self.saved: dict[int, object] = {}

    def _handle(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGINT:
            self.interrupts += 1
        sig = signal.SIGKILL if self.interrupts >= 3 else signum
        if sig == signal.SIGKILL:
            os.write(2, b"\nminibox: third Ctrl-C, killing the container\n")
        process.signal_if_alive(self.pid, sig)

    def __enter__(self) -> _forward_signals:
        try:
            for sig in self.SIGNALS:
                self.saved[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread (a TUI worker): signals stay with the app
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)


def run_detached(spec: ContainerSpec, paths: Paths | None = None) -> Record:
    """``minibox run -d``: start the container under a shim process that outlives this one.

    The shim (like containerd-shim or conmon) holds the container's output file and terminal,
    waits for its exit code, records it and cleans up. It is a grandchild that this process
    does not wait for (the double fork), so it is adopted by the system's init.
    """
    return _start_under_shim(create(spec, paths), if_start_fails=_discard)


def start_created(ref: str, paths: Paths | None = None) -> Record:
    """``minibox start``: start a container ``minibox create`` made, under a shim, as ``run -d``
    does. If its start fails (say its command is not in the image) it stays created."""
    record = _claim_for_start(ref, paths)
    if record.state == RUNNING:
        return record
    return _start_under_shim(record, if_start_fails=back_to_created)


def _start_under_shim(record: Record, if_start_fails: Callable[[Record], None]) -> Record:
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    first = os.fork()
    if first == 0:
        try:
            os.close(ready_r)
            if os.fork() == 0:
                from engine.supervisor import supervise

                supervise(record, ready_w, if_start_fails)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.waitpid(first, 0)
    with os.fdopen(ready_r, "rb") as ready:
        answer = ready.read().decode()
    if answer.startswith("error "):
        from engine.errors import rebuild

        raise rebuild(answer[6:])
    if answer != "ok":
        if_start_fails(record)
        raise MiniboxError("the container's supervisor died while starting it", "run `minibox gc` and try again")
    return state.load(record.paths, record.id) or record


# --- after the container's init exits ----------------------------------------------------------


def finalize(record: Record, exit_code: int | None) -> None:
    """Record the exit, note an OOM kill, kill leftovers, remove the cgroup; ``--rm``: remove all."""
    drv = cgroups.driver()
    group = record.data["cgroup"]["group"]
    oom_killed = False
    if drv.exists(group):
        oom_killed = bool(drv.oom_kills(group))
        if "pid" not in record.data["spec"]["namespaces"]:
            # With a PID namespace the kernel has already killed (and waited for) every other
            # process when its init exits. With --pid host nothing else kills them.
            drv.kill_all(group)
            _wait_until(lambda: not drv.processes(group), 5.0)
        drv.remove(group)
    _unmount_host_side(record)
    _release_network(record)
    with Lock(record.paths):
        if record.data["spec"].get("auto_remove"):
            record.remove_directories(defer_empty_layer=True)  # --rm: no point recording an exit nobody reads
            return
        fresh = state.load(record.paths, record.id)
        if fresh is None:  # removed meanwhile (`rm -f`)
            return
        if fresh.data["state"] != STOPPED or exit_code is not None:
            fresh.mark(STOPPED, exit_code=exit_code, oom_killed=oom_killed or fresh.data.get("oom_killed", False))
        record.data = fresh.data


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# --- operations on existing containers ---------------------------------------------------------


def get(ref: str, paths: Paths | None = None) -> Record:
    return state.find(paths or Paths(), ref)


def kill(ref: str, sig: int = signal.SIGKILL, paths: Paths | None = None) -> Record:
    record = get(ref, paths)
    if record.state != RUNNING:
        raise NotRunning(record.name, record.state, "send it a signal")
    process.signal_if_alive(record.pid, sig)
    return record


def stop(
    ref: str,
    timeout: float = 10.0,
    paths: Paths | None = None,
    still_running: Callable[[Record, float], None] | None = None,
) -> Record:
    """SIGTERM, then SIGKILL after ``timeout`` seconds, then wait until the exit is recorded.

    ``still_running(record, seconds_left)`` is told once if the container is still there a
    second after SIGTERM (a PID 1 with no handler for it ignores it): a long wait is explained.
    """
    _require_root()
    record = get(ref, paths)
    record.guard("stop", "")
    if record.state == RUNNING:
        alive = lambda: state.process_alive(record.pid, record.data.get("pid_start_time"))  # noqa: E731
        process.signal_if_alive(record.pid, signal.SIGTERM)
        patience = 1.0 if still_running and timeout > 1.0 else timeout
        exited = _wait_until(lambda: not alive(), patience)
        if not exited and patience < timeout:
            try:
                still_running(record, timeout - patience)
            except Exception:  # noqa: BLE001 -- (say, stderr closed) the stop itself must go on
                pass
            exited = _wait_until(lambda: not alive(), timeout - patience)
        if not exited:
            process.signal_if_alive(record.pid, signal.SIGKILL)
            _wait_until(lambda: not alive(), 10.0)
    _await_supervisor(record)
    return record


def _await_supervisor(record: Record) -> None:
    """Let the supervisor record the exit code; if it is gone (killed), finalize here instead."""
    sup = record.data.get("supervisor_pid")
    if sup and sup != os.getpid():
        _wait_until(lambda: not state.process_alive(sup, record.data.get("supervisor_start_time")), 10.0)
    fresh = state.load(record.paths, record.id)
    if fresh and fresh.data["state"] != STOPPED and fresh.state == STOPPED:
        finalize(fresh, None)


def remove(ref: str, force: bool = False, paths: Paths | None = None) -> str:
    _require_root()
    record = get(ref, paths)
    if record.state == RUNNING:
        if not force:
            record.guard("remove", f"stop it first (`minibox stop {record.name}`) or use `minibox rm -f`")
        process.signal_if_alive(record.pid, signal.SIGKILL)
        _wait_until(lambda: not state.process_alive(record.pid, record.data.get("pid_start_time")), 10.0)
    _await_supervisor(record)
    _discard(record)
    return record.name


def exec_in(
    ref: str,
    argv: list[str],
    *,
    env: list[str] | None = None,
    workdir: str = "",
    user: str = "",
    tty: bool = False,
    interactive: bool = False,
    paths: Paths | None = None,
    stdio: tuple[int, int, int] | None = None,
) -> int:
    """``minibox exec``: run ``argv`` inside a running container's namespaces and cgroup."""
    _require_root()
    record = get(ref, paths)
    if record.state != RUNNING:
        raise NotRunning(record.name, record.state)
    if not argv:
        raise BadValue("COMMAND", "", "a command to run in the container, e.g. `sh`")
    spec = ContainerSpec.from_dict(record.data["spec"])
    image = images.get(record.paths, record.data.get("image_id") or record.data["image"])
    from engine.users import resolve

    uid, gid, groups = resolve(image, user or spec.user)
    plan = process.LaunchPlan(
        argv=argv, env=_environment(image, spec.env + list(env or [])), uid=uid, gid=gid, groups=groups,
        workdir=workdir or spec.workdir or image.settings.get("WorkingDir") or "/",
        namespaces=spec.namespaces, tty=tty, found_in=f"container {record.name!r}",
        capabilities=spec.capabilities,
        cgroup_join=cgroups.membership_files(record.pid), join_pid=record.pid,
        stdio=stdio,
    )  # fmt: skip
    pid, master = launch_with_console(plan)
    code = None
    try:
        with _forward_signals(pid):
            if master is not None:
                from engine.console import proxy

                try:
                    proxy(master, 0 if interactive else -1, 1)
                finally:
                    os.close(master)
            code = process.wait_exit_code(pid)
    finally:
        if code is None:
            code = kill_and_wait(pid)
    return code


def logs_path(ref: str, paths: Paths | None = None) -> tuple[Record, str]:
    record = get(ref, paths)
    return record, record.dir("container.log")


def list_containers(paths: Paths | None = None, include_stopped: bool = False) -> list[Record]:
    records = state.all_records(paths or Paths())
    return [r for r in records if include_stopped or r.state == RUNNING]


def _rfc3339(when: float | None) -> str | None:
    """A record's time (seconds since the epoch) as docker's inspect writes times, in UTC."""
    if when is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{int(when % 1 * 1e9):09d}Z"


def inspect(ref: str, paths: Paths | None = None) -> dict:
    """Everything known about a container, as ``minibox inspect`` prints it (JSON-ready)."""
    record = get(ref, paths)
    data = record.data
    current = record.state
    running = current == RUNNING
    drv = cgroups.driver()
    group = data["cgroup"]["group"]
    host = namespaces.inodes("self")
    ns_info = {}
    if running:
        for name, inode in namespaces.inodes(record.pid).items():
            ns_info[name] = {"inode": inode, "shared_with_host": inode == host[name]}
    return {
        "Id": data["id"],
        "Name": data["name"],
        "Created": _rfc3339(data["created"]),
        "Image": data["image"],
        "Command": data["command"],
        "State": {
            "Status": current,
            "Running": running,
            "Pid": record.pid if running else 0,
            "ExitCode": data.get("exit_code"),
            "OOMKilled": data.get("oom_killed", False),
            "StartedAt": _rfc3339(data.get("started_at")),
            "FinishedAt": _rfc3339(data.get("finished_at")),
        },
        "Namespaces": ns_info,
        "Cgroup": {
            "Version": data["cgroup"]["version"],
            "Group": group,
            "Directories": drv.directories(group) if hasattr(drv, "directories") else {},
            "Limits": {
                "Memory": data["spec"].get("memory"),
                "Cpus": data["spec"].get("cpus"),
                "PidsLimit": data["spec"].get("pids_limit"),
            },
            "Stats": drv.stats(group) if drv.exists(group) else {},
        },
        "NetworkSettings": data.get("network") or {"mode": data["spec"].get("network") or "none"},
        "Rootfs": data["rootfs"],
        "Config": data["spec"],
        "Paths": {"State": record.record_file(), "Log": record.dir("container.log")},
    }
