"""Creating a container's processes: parent -> (intermediate ->) init, with a report pipe.

A new PID namespace is entered only by the *children* of the process that calls
``unshare(CLONE_NEWPID)``: that call moves none of the caller's processes, it only sets where
its next child is born (``/proc/self/ns/pid_for_children``). So the init is always forked after
an unshare; minibox does it one of two ways.

**One fork** (the default, as crun does it): the parent itself unshares the PID namespace,
forks the init straight into it as PID 1, and ``setns(2)``s its pid_for_children back home; the
init joins the cgroup and unshares the other namespaces itself.

**Two forks** when there is a user (or time) namespace, or an OCI bundle's namespaces to join or
hooks to run, as in runc's ``nsexec`` and youki's ``main``/``intermediate``/``init`` processes: a
user namespace must exist before the PID namespace it owns (only then may the container's root
mount its /proc), so an intermediate makes them in that order:

- the **parent** (minibox itself) stays in the host's namespaces; it is made a *child subreaper*
  (``PR_SET_CHILD_SUBREAPER``) so the container's init becomes its child when the intermediate
  exits, and it can ``waitpid`` for the container's exit code;
- the **intermediate** joins the cgroup, calls ``unshare(2)`` for the new namespaces, waits while
  the parent writes its ``uid_map``/``gid_map`` (only a process outside a user namespace may map
  host IDs into it), sets the time namespace's clock offsets, then forks the init and exits;
- the **init** is PID 1 of the new PID namespace.

Either way the init builds the root filesystem, sets the hostname, brings ``lo`` up, switches
user, and finally ``execve(2)``s the container's command.

Children report to the parent on a pipe opened with ``O_CLOEXEC``: a line ``userns`` (please map
my IDs), ``pid N`` (the init's PID as the host sees it; a bare ``pid`` from an init the parent
forked itself), or ``error {...}``. When the command's
``execve`` succeeds the kernel closes the pipe, so end-of-file means "running".
``exec`` uses the same pipe with ``setns(2)`` into an existing container instead of ``unshare``.
"""

from __future__ import annotations

# Everything the children use is imported here, before any fork: a child inside a user namespace
# runs as an unprivileged host user and may be unable to read Python's files to import more.
import _signal as signal  # `signal` without its enum classes: importing enum costs ~3 ms per run
import fcntl
import os
import resource
import struct
import sys

from engine import capabilities, cgroups, fastjson, rootfs, syscalls
from engine.errors import CommandNotExecutable, CommandNotFound, MiniboxError, SyscallError, rebuild
from engine.namespaces import NAMESPACES, explain_unshare_failure, flags_for

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: collections.abc costs ~1 ms to import
    from collections.abc import Callable


class LaunchPlan:
    """Everything the children need, computed by the parent before forking.

    ``found_in`` names where a missing command was looked for, as its error says it: ``image
    'busybox'`` (run), ``container 'web'`` (exec), ``the bundle`` (the OCI runtime).

    ``make_cgroup``, if given, makes the cgroup that ``cgroup_join`` names: the parent calls it
    right after the fork, while the child is still waking up (a forked Python takes about a
    millisecond to run its first line), and the child waits for it before joining. runc's parent
    also makes the cgroup only once its ``runc init`` child has started.

    ``meanwhile``, if given, is work for the parent while the init builds its root filesystem:
    called once the init has said its PID (and its network is wired), when the parent has nothing
    to do but wait for the ``execve``. minibox deletes earlier containers' emptied layers there.
    It must not raise: an exception there is a failed start, and the init is killed.
    """

    __slots__ = (
        "argv", "env", "uid", "gid", "groups", "workdir", "hostname", "namespaces", "uid_map",
        "gid_map", "monotonic_offset", "boottime_offset", "init", "tty", "found_in", "rootfs",
        "cgroup_join", "make_cgroup", "stdio", "join_pid", "console_socket", "capabilities", "net_join",
        "network_hook", "meanwhile", "trace",
        # Used by the OCI runtime (engine/oci), which gets all of these from config.json:
        "ns_paths", "domainname", "start_fifo", "rlimits", "umask", "no_new_privileges", "oom_score_adj",
        "seccomp", "capability_sets", "console_size", "hooks",
    )  # fmt: skip

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


# --- the parent's side -------------------------------------------------------------------------


def launch(plan: LaunchPlan) -> int:
    """Start the container's init (or, with ``join_pid``, an exec'd process); return its host PID.

    Raises the child's own error (e.g. CommandNotFound) if setup or ``execve`` failed; in that
    case no process of the container is left.
    """
    if plan.hooks:  # the children run OCI hooks: import before forking (in a user namespace the
        import engine.oci.hooks  # noqa: F401 -- source files may not be readable any more)
    if plan.capabilities is not None:
        capabilities.last_capability()  # read here once: every child inherits the answer
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    one_fork = _one_fork_is_enough(plan)
    if plan.trace and not plan.join_pid:
        from engine import trace

        trace.note(
            "process",
            "unshare(CLONE_NEWPID) for our next child only, then fork: the init is born PID 1"
            if one_fork
            else "fork: the intermediate (the parent becomes a child subreaper to wait for the init)",
        )
    was_subreaper = 0 if one_fork else syscalls.get_child_subreaper()
    if not one_fork:  # the init is the intermediate's child: adopt it when the intermediate exits
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    child = _fork_into_new_pid_namespace(plan) if one_fork else syscalls.fork_to_exec()
    if child == 0:
        # Keep only what the container needs: a forked child inherits every open file of the
        # caller (a TUI's sockets, a shim's pipe to `minibox run -d`) and an --init reaper never
        # execs, so O_CLOEXEC alone would not close them.
        _close_fds_except({0, 1, 2, report_w, go_r, plan.console_socket, plan.start_fifo, *(plan.stdio or ())})
        first_step = _join if plan.join_pid else _init_in_its_pid_namespace if one_fork else _intermediate
        _child_main(first_step, plan, report_w, go_r)
    os.close(report_w)
    os.close(go_r)
    init_pid = 0
    hooks_asked = False  # the init may ask before the intermediate has told us its PID
    failed = False
    try:
        with os.fdopen(report_r, "rb") as report:
            if plan.make_cgroup:
                plan.make_cgroup()
                os.write(go_w, b"c")  # the child may join it now (see _enter_namespaces)
            for line in report:
                kind, _, value = line.decode().strip().partition(" ")
                if kind == "userns":
                    _write_id_maps(child, plan)
                    os.write(go_w, b"g")
                elif kind == "trace":
                    from engine import trace

                    trace.note(*value.split(" ", 1))
                elif kind == "pid":
                    init_pid = int(value) if value else child  # one fork: fork() told us already
                    if plan.trace and not plan.join_pid:
                        from engine import trace

                        how = "" if one_fork else "fork: "
                        trace.note("process", f"{how}the init is host PID {init_pid}, PID 1 of its PID namespace")
                    if plan.network_hook:  # the init waits (see _init) while its network is wired
                        plan.network_hook(init_pid)
                        os.write(go_w, b"n")
                    if plan.meanwhile:
                        plan.meanwhile()
                    if hooks_asked:
                        _answer_hooks(plan, init_pid, go_w)
                elif kind == "hooks":  # OCI: the runtime's own hooks run now (engine/oci/hooks.py)
                    hooks_asked = True
                    if init_pid:
                        _answer_hooks(plan, init_pid, go_w)
                elif kind == "error":
                    raise rebuild(value)
                elif kind == "created":  # OCI create: the init waits on its start fifo now
                    break
    except BaseException:
        failed = True
        if init_pid or one_fork:
            signal_if_alive(init_pid or child)
        raise
    finally:
        os.close(go_w)
        if one_fork:
            if failed or not init_pid:  # it failed, or died before saying it was ready
                _reap(child)
        else:
            os.waitpid(child, 0)  # the intermediate
            # Only now is the init our child (adopted when the intermediate exited): reap it here.
            if failed and init_pid:
                _reap(init_pid)
            # Stop adopting orphans: a long-lived caller (the TUI) must not collect other programs'
            # zombies (and a caller that was a subreaper already stays one).
            syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, was_subreaper)
    if not init_pid:
        raise MiniboxError("the container's setup process exited without starting it", "run `minibox gc`")
    return init_pid


def _one_fork_is_enough(plan: LaunchPlan) -> bool:
    """No user or time namespace to make first, none to join by path, no exec: see the docstring."""
    return not plan.join_pid and not plan.ns_paths and not plan.hooks and not ({"user", "time"} & set(plan.namespaces))


def _fork_into_new_pid_namespace(plan: LaunchPlan) -> int:
    """fork(), the child (only) born as PID 1 of a new PID namespace when ``plan`` asks for one."""
    if "pid" not in plan.namespaces:
        return syscalls.fork_to_exec()
    home = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    child = -1
    try:
        try:
            syscalls.unshare(syscalls.CLONE_NEWPID)  # changes pid_for_children, not our own PID
        except SyscallError as e:
            raise explain_unshare_failure({"pid"}, e.errno) from None
        child = syscalls.fork_to_exec()
        return child
    finally:
        # In the parent, whatever happened after the open (unshare or fork failed, a Ctrl-C in
        # between): later children are born at home again. Entering the namespace we are in
        # anyway (unshare failed) is allowed and changes nothing.
        if child != 0:
            syscalls.setns(home, syscalls.CLONE_NEWPID)
        os.close(home)


def _answer_hooks(plan: LaunchPlan, init_pid: int, go: int) -> None:
    """Run the runtime-side hooks, then hand the container's state (JSON) to the waiting init."""
    state = plan.hooks["runtime"](init_pid)
    os.write(go, b"h" + len(state).to_bytes(4, "big") + state)


def _sync_hooks(plan: LaunchPlan, report: int, go: int) -> bytes:
    """In the init: ask the runtime to run its hooks; wait; return the state JSON it sends."""
    _report(report, "hooks")
    head = os.read(go, 5)
    if len(head) != 5 or head[:1] != b"h":
        os._exit(1)  # the runtime failed (it reports why) and is killing us
    size, state = int.from_bytes(head[1:], "big"), b""
    while len(state) < size:
        state += os.read(go, size - len(state))
    return state


def _close_fds_except(keep: set[int | None]) -> None:
    """Close every descriptor but ``keep``: one close_range(2) per gap between the kept ones
    (``os.closerange`` calls it), not a listing of /proc/self/fd and a close(2) for each."""
    low = 0
    for fd in sorted(fd for fd in keep if fd is not None and fd >= 0):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 2**31 - 1)


def _write_id_maps(pid: int, plan: LaunchPlan) -> None:
    """Tell the kernel which host IDs the container's IDs are (e.g. 0 inside = 100000 outside)."""
    for name, ranges in (("uid_map", plan.uid_map), ("gid_map", plan.gid_map)):
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("".join(f"{inside} {outside} {count}\n" for inside, outside, count in ranges))
        except OSError as e:
            from engine.errors import BadValue

            raise BadValue(f"--{name[0]}idmap", ranges, f"ranges the kernel accepts ({e.strerror})") from None


def signal_if_alive(pid: int, sig: int = signal.SIGKILL) -> None:
    """kill(2), where "it has exited in the meantime" is not an error."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def wait_exit_code(pid: int) -> int:
    """waitpid for ``pid``; shell convention: the exit status, or 128 + the killing signal."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


# --- the children's side -----------------------------------------------------------------------


def _child_main(step: Callable[[LaunchPlan, int, int], None], plan: LaunchPlan, report: int, go: int) -> None:
    """Run a child step; report any error on the pipe; never return into the parent's code."""
    code = 1
    try:
        step(plan, report, go)
        code = 0
    except BaseException as e:  # noqa: BLE001 -- everything must reach the parent as one line
        try:
            _report(report, "error " + _describe(e))
        except OSError:  # the parent is gone (OCI: after `create`): the container's stderr it is
            what = e.what if isinstance(e, MiniboxError) else f"{type(e).__name__}: {e}"
            os.write(2, f"minibox: the container's process failed: {what}\n".encode())
            code = e.exit_code if isinstance(e, MiniboxError) and e.exit_code in (126, 127) else 1
            os._exit(code)
    finally:
        os._exit(code)


def _describe(error: BaseException) -> str:
    if isinstance(error, MiniboxError):
        return fastjson.dumps([type(error).__name__, error.what, error.fix, error.exit_code])
    what = f"container setup failed: {type(error).__name__}: {error}"
    return fastjson.dumps(["MiniboxError", what, "this is a bug in minibox: please report it", 125])


def _report(fd: int, line: str) -> None:
    os.write(fd, line.encode() + b"\n")


def _note(plan: LaunchPlan, report: int, stage: str, text: str) -> None:
    """A --trace line from a child: sent to the parent, which prints it (see engine/trace.py)."""
    if plan.trace:
        _report(report, f"trace {stage} {text}")


def _join_cgroup(files: list[str]) -> None:
    """Write "0" ("the writer": see CgroupV1.self_join_files) into each group's membership file."""
    for path in files:
        cgroups.write(path, 0)


def _intermediate(plan: LaunchPlan, report: int, go: int) -> None:
    _enter_namespaces(plan, report, go, plan.namespaces, f"the intermediate (host PID {os.getpid()})")
    # 4. The extra fork: the child is PID 1 of the new PID namespace.
    pid = syscalls.fork_to_exec()
    if pid == 0:
        _child_main(_init, plan, report, go)
    _report(report, f"pid {pid}")


def _init_in_its_pid_namespace(plan: LaunchPlan, report: int, go: int) -> None:
    """One fork was enough: born PID 1 (see launch), the init makes the other namespaces itself."""
    _enter_namespaces(plan, report, go, set(plan.namespaces) - {"pid"}, "the init")
    _report(report, "pid")  # the parent has our host PID from fork()
    _init(plan, report, go)


def _enter_namespaces(plan: LaunchPlan, report: int, go: int, new: set[str] | frozenset[str], who: str) -> None:
    """Join the container's cgroup and the namespaces to share, then unshare the ``new`` ones."""
    # 1. Join the cgroup while still in the host's cgroup namespace: a cgroup namespace made
    #    next takes this group as its root, so the container sees itself at "/". The parent may
    #    be making it meanwhile (plan.make_cgroup): wait for its word.
    if plan.make_cgroup and os.read(go, 1) != b"c":
        os._exit(1)  # the parent failed (it reports why) and is killing us
    _join_cgroup(plan.cgroup_join)
    # 2. A network namespace to share (--net container:X, or the sandbox playing the host) is
    #    joined first, while this process is still root of the host's user namespace.
    _note(
        plan,
        report,
        "cgroup",
        f"{who} joined its cgroup: {len(plan.cgroup_join)} file(s) written",
    )
    if plan.net_join:
        fd = os.open(plan.net_join, os.O_RDONLY | os.O_CLOEXEC)
        syscalls.setns(fd, syscalls.CLONE_NEWNET)
        os.close(fd)
        _note(plan, report, "namespaces", f"setns(CLONE_NEWNET) into {plan.net_join}")
    for ns in NAMESPACES:  # OCI: namespaces given by path are joined, user first
        if ns.name in (plan.ns_paths or {}):
            fd = os.open(plan.ns_paths[ns.name], os.O_RDONLY | os.O_CLOEXEC)
            syscalls.setns(fd, ns.flag)
            os.close(fd)
    # 3. All new namespaces in one call; those made with a user namespace belong to it.
    try:
        syscalls.unshare(flags_for(new))
    except SyscallError as e:
        raise explain_unshare_failure(new, e.errno) from None
    if plan.trace:
        names = "|".join(f"CLONE_NEW{n.upper() if n != 'mnt' else 'NS'}" for n in sorted(new))
        _note(plan, report, "namespaces", f"unshare({names or 'nothing'})")
    if "time" in plan.namespaces:
        # Offsets apply to the new time namespace, and only before a process has entered it.
        # Written before becoming a new user namespace's root: that switch makes this process
        # non-dumpable, and /proc/self's files then belong to the host's root, whom it no longer is.
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(f"monotonic {plan.monotonic_offset} 0\nboottime {plan.boottime_offset} 0\n")
    if "user" in plan.namespaces:
        _report(report, "userns")
        if os.read(go, 1) != b"g":
            os._exit(1)
        _note(plan, report, "user", "the parent wrote uid_map and gid_map: root inside is an unprivileged ID outside")
        os.setresgid(0, 0, 0)  # root of the new user namespace (host uid 100000, say)
        os.setresuid(0, 0, 0)
        os.setgroups([])


def _init(plan: LaunchPlan, report: int, go: int) -> None:
    os.setsid()  # a session of its own: the container is not in the user's terminal's job control
    if plan.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(plan.oom_score_adj))
    if "net" in plan.namespaces:
        bring_loopback_up()
    state = b""

    def before_pivot() -> None:  # OCI hooks: the runtime's, then createContainer's, in here
        nonlocal state
        state = _sync_hooks(plan, report, go)
        from engine.oci import hooks  # loaded by the runtime before forking (see launch)

        hooks.run_here(plan.hooks["create_container"], state, "createContainer")

    if plan.rootfs is not None:
        rootfs.setup(plan.rootfs, lambda stage, text: _note(plan, report, stage, text),
                     before_pivot if plan.hooks else None)  # fmt: skip
    if plan.hooks:
        plan.hooks["state"] = state
    if plan.hostname:
        syscalls.sethostname(plan.hostname)
        _note(plan, report, "uts", f"sethostname({plan.hostname!r})")
    if plan.domainname:
        syscalls.setdomainname(plan.domainname)
    # The parent wires eth0 into our network namespace meanwhile; the command must find it there.
    if plan.network_hook and os.read(go, 1) != b"n":
        os._exit(1)  # the parent failed (it reports why) and is killing us
    os.close(go)
    _finish_and_exec(plan, report)


def _join(plan: LaunchPlan, report: int, go: int) -> None:
    """``minibox exec``: enter every namespace of a running container, then fork and exec."""
    os.close(go)
    target = plan.join_pid
    # Open everything first: once in the container's mount namespace, /proc/TARGET may differ.
    root = os.open(f"/proc/{target}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    own = {ns.name: os.stat(f"/proc/self/ns/{ns.proc_name}").st_ino for ns in NAMESPACES}
    to_join = []
    for ns in NAMESPACES:  # user first: joining it gives the rights to join the others
        path = f"/proc/{target}/ns/{ns.proc_name}"
        if os.stat(path).st_ino != own[ns.name]:
            to_join.append((ns, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    _join_cgroup(plan.cgroup_join)
    for ns, fd in to_join:
        syscalls.setns(fd, ns.flag)
        os.close(fd)
    os.fchdir(root)  # the container's root: pivot_root'ed or only chroot'ed, this finds it
    os.chroot(".")
    os.close(root)
    pid = syscalls.fork_to_exec()  # joined PID and time namespaces apply to children only
    if pid == 0:
        _child_main(lambda p, r, g: (os.setsid(), _finish_and_exec(p, r)), plan, report, go)
    _report(report, f"pid {pid}")


def _finish_and_exec(plan: LaunchPlan, report: int) -> None:
    """Common tail of run and exec: terminal, user, working directory, then execve."""
    if plan.stdio:
        for target, fd in enumerate(plan.stdio):
            if fd != target:
                os.dup2(fd, target)
    if plan.tty:
        from engine import console  # already imported by the parent (container.launch_with_console)

        master, slave = console.open_container_pty()
        if plan.console_size:
            console.set_window_size(slave, *plan.console_size)
        console.become_terminal_owner(slave)
        console.send_fd(plan.console_socket, master)
        os.close(master)
    if plan.console_socket is not None:
        os.close(plan.console_socket)
    env = dict(var.split("=", 1) for var in plan.env)
    path = find_executable(plan.argv[0], env.get("PATH", ""))
    if path is None:
        raise CommandNotFound(plan.argv[0], plan.found_in)
    for kind, soft, hard in plan.rlimits or ():
        resource.setrlimit(kind, (soft, hard))
    if plan.no_new_privileges:
        syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)  # setuid binaries stop giving privileges
    if plan.seccomp and not plan.no_new_privileges:
        plan.seccomp.load()  # needs CAP_SYS_ADMIN without no_new_privs: still root here
    if plan.capabilities is not None:  # None: --privileged
        capabilities.limit_bounding_set(plan.capabilities)
    if plan.capability_sets:
        syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)  # keep the permitted set across setresuid
    os.setgroups(plan.groups or [])
    os.setresgid(plan.gid, plan.gid, plan.gid)
    os.setresuid(plan.uid, plan.uid, plan.uid)
    if plan.capability_sets:
        capabilities.set_process_sets(*plan.capability_sets)
    try:
        try:
            os.chdir(plan.workdir)
        except FileNotFoundError:  # docker makes a missing -w directory
            os.makedirs(plan.workdir, exist_ok=True)
            os.chdir(plan.workdir)
    except OSError as e:
        raise MiniboxError(f"cannot use {plan.workdir} as the working directory: {e.strerror}",
                           "choose a -w directory this user may create or enter") from None  # fmt: skip
    _note(plan, report, "exec", f"uid {plan.uid}, cwd {plan.workdir}: execve({path}, {plan.argv})")
    if plan.init:
        _run_as_reaper(path, plan, env, report)
    if plan.start_fifo:
        _wait_for_start(plan, report)
    if plan.hooks:
        from engine.oci import hooks

        hooks.run_here(plan.hooks["start_container"], plan.hooks["state"], "startContainer")
    if plan.seccomp and plan.no_new_privileges:
        plan.seccomp.load()  # as late as possible: the fewest of our own calls go through it
    _exec(path, plan, env)


def _wait_for_start(plan: LaunchPlan, report: int) -> None:
    """OCI ``create``: tell the runtime we are ready, then block until ``start`` reads the fifo.

    Opening a fifo for writing blocks until someone opens it for reading: ``minibox-runc start``
    does, so the container's command runs only then (runc's exec.fifo works the same way). The
    runtime opened it (O_PATH: no waiting) and passed the descriptor down: from a user namespace
    the path itself may be out of reach; ``/proc/self/fd/N`` reopens it for writing.
    """
    _report(report, "created")
    os.close(report)
    fd = os.open(f"/proc/self/fd/{plan.start_fifo}", os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b"0")
    os.close(fd)
    os.close(plan.start_fifo)


def _exec(path: str, plan: LaunchPlan, env: dict[str, str]) -> None:
    os.umask(0o022 if plan.umask is None else plan.umask)
    reset_signals()
    try:
        os.execve(path, plan.argv, env)
    except OSError as e:
        raise CommandNotExecutable(plan.argv[0], e.strerror or str(e)) from None


def reset_signals() -> None:
    """Give the command default signal handling: ignored signals survive execve(2).

    Python ignores SIGPIPE, and the shim ignores SIGINT/SIGTERM/SIGHUP; a command inheriting
    that could never be stopped politely (and a shell may not even ``trap`` a signal that was
    ignored when it started).
    """
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            if signal.getsignal(sig) != signal.SIG_DFL:  # only a few are not: skip the others' syscalls
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # reserved by libc
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def find_executable(name: str, search_path: str) -> str | None:
    """The shell's PATH lookup, done in the container's root (we are inside it by now)."""
    if "/" in name:
        return name if os.path.exists(name) else None
    for directory in (search_path or "/usr/bin:/bin").split(":"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _run_as_reaper(path: str, plan: LaunchPlan, env: dict[str, str], report: int) -> None:
    """``--init``: stay as PID 1, run the command as PID 2, forward signals, reap every orphan.

    Without it the command is PID 1 and must reap orphans itself (most programs never do), and
    signals with no handler are ignored by a PID 1, so a plain ``stop`` needs SIGKILL.
    """
    syscalls.set_process_name("minibox-init")
    child = os.fork()
    if child == 0:
        _child_main(lambda *_: _exec(path, plan, env), plan, report, -1)
    os.close(report)  # the parent's "running" signal must come from the command's execve
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == child:
            sys.stdout.flush()
            os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def bring_loopback_up() -> None:
    """Set IFF_UP on ``lo`` with the SIOCSIFFLAGS ioctl (a new net namespace starts with it down).

    The socket comes from libc, not Python's ``socket`` module: in a user namespace this process
    may no longer be allowed to read Python's own files, so it must not import anything new.
    """
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    sock = syscalls.socket(2, 2)  # AF_INET, SOCK_DGRAM: any socket can carry interface ioctls
    try:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    finally:
        os.close(sock)
