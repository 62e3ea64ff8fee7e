"""The ``minibox`` command: a docker-like command line over the engine library.

It only parses arguments and prints; every action is a call into ``engine``. Errors from the
engine (``MiniboxError``) are printed as one line, ``minibox: WHAT; FIX``, with a non-zero exit
code and no traceback.
"""

from __future__ import annotations

import os
import sys

from engine.cli_args import Arg, Args, Command, HelpRequested, Option, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

    from engine.state import Record

NS_CHOICES = ("host", "private")
CONTAINER = "a container's name or ID"
CONTAINERS = "one or more containers' names or IDs"
NETWORKS = "one or more networks' names"


def _process_options() -> list[Option]:
    """What the container's process gets, the same for run and exec."""
    return [
        Option("-e, --env", "set a variable (KEY alone: this shell's value of KEY)", value="KEY=VALUE", repeat=True),
        Option("-w, --workdir", "working directory inside the container", value="DIR", default=""),
        Option("-u, --user", "USER[:GROUP] or UID[:GID] to run as", value="USER", default=""),
    ]


def _run_arguments() -> tuple[list[Option], list[Arg]]:
    def namespace(flag: str, what: str, default: str = "private") -> Option:
        return Option(flag, f"{what}; default {default}", choices=NS_CHOICES, default=default)

    return [
        Option("-d, --detach", "run in the background, print the ID"),
        Option("-i, --interactive", "keep stdin open"),
        Option("-t, --tty", "give the container a terminal"),
        Option("--rm", "remove the container when it exits"),
        Option("--name", "a name for the container", value="NAME", default=""),
        Option("-h, --hostname", "the container's hostname (UTS namespace)", value="NAME", default=""),
        *_process_options(),
        Option("-m, --memory", "memory limit, e.g. 64m (cgroup memory controller)", value="BYTES"),
        Option("--cpus", "CPU limit, e.g. 0.5 (CFS quota per period)", value="CPUS"),
        Option("--pids-limit", "maximum number of processes (pids controller)", value="N"),
        Option("--init", "run a reaper as PID 1 that forwards signals"),
        Option("--cap-add", "keep a capability, e.g. SYS_ADMIN", value="CAP", repeat=True),
        Option("--cap-drop", "drop a capability (or ALL)", value="CAP", repeat=True),
        Option("--privileged", "keep every capability: root inside is root outside"),
        Option("--chroot", "enter the root with chroot, not pivot_root"),
        Option(
            "--trace",
            "print every stage of the start: image, layers, cgroup, forks, namespaces, mounts, pivot_root, execve",
        ),
        namespace("--pid", "PID namespace"),
        Option(
            "--net, --network",
            "none (only lo, the default; also: private), bridge (the default network, "
            "device minibox0), another network's name, host, or container:NAME",
            value="NETWORK",
            default="none",
        ),
        Option(
            "-p, --publish",
            "publish a container port on the host (DNAT), e.g. 8080:80",
            value="HOSTPORT:CPORT[/udp]",
            repeat=True,
        ),
        namespace("--uts", "UTS (hostname) namespace"),
        namespace("--ipc", "IPC namespace"),
        namespace("--cgroupns", "cgroup namespace"),
        namespace("--mntns", "mount namespace (host needs --chroot)"),
        namespace("--userns", "user namespace (root inside = uid 100000 outside)", "host"),
        Option("--uidmap", "user namespace uid map (default 0:100000:65536)", value="INSIDE:OUTSIDE:COUNT"),
        Option("--gidmap", "user namespace gid map (default 0:100000:65536)", value="INSIDE:OUTSIDE:COUNT"),
        namespace("--timens", "time namespace", "host"),
        Option(
            "--monotonic-offset",
            "shift CLOCK_MONOTONIC (implies --timens private)",
            value="SECONDS",
            default=0,
            convert=int,
        ),
        Option(
            "--boottime-offset",
            "shift CLOCK_BOOTTIME/uptime (implies --timens private)",
            value="SECONDS",
            default=0,
            convert=int,
        ),
    ], [
        Arg("image", "the image to run: NAME[:TAG], a registry's REGISTRY/NAME[:TAG], or an image ID"),
        Arg("command", "what to run, with its arguments (default: the image's CMD); every word after the image "
            "is the container's, options included", rest=True),
    ]  # fmt: skip


def _create_arguments() -> tuple[list[Option], list[Arg]]:
    """run's, without -d: the container is only made (record, directories), not started."""
    options, args = _run_arguments()
    trace = Option("--trace", "print the stages of making it: image, layers, directories (then start --trace)")
    return [trace if "--trace" in o.names else o for o in options if "--detach" not in o.names], args


def _start_arguments() -> tuple[list[Option], list[Arg]]:
    return [
        Option("-a, --attach", "stay attached: its output here, wait for its exit code (default: in the background)"),
        Option("-i, --interactive", "attach this terminal's input too, if it was created with -i (implies -a)"),
        Option("--trace", "print every stage of the start: fork, cgroup, namespaces, mounts, pivot_root, execve"),
    ], [Arg("containers", "one or more created containers' names or IDs", many=True)]


def _exec_arguments() -> tuple[list[Option], list[Arg]]:
    return [
        Option("-i, --interactive", "keep stdin open"),
        Option("-t, --tty", "give the command a terminal"),
        *_process_options(),
    ], [
        Arg("container", "the name or ID of a running container"),
        Arg("command", "what to run in it, with its arguments (options included)", rest=True, required=True),
    ]


def _ps_arguments() -> tuple[list[Option], list[Arg]]:
    return [Option("-a, --all", "include stopped containers"), Option("-q, --quiet", "only IDs")], []


def _logs_arguments() -> tuple[list[Option], list[Arg]]:
    return [
        Option("-f, --follow", "keep printing until the container stops"),
        Option(
            "-n, --tail",
            "only the last N lines (then, with -f, what comes)",
            value="N",
            convert=_count,
            expects="a whole number, 0 or more",
        ),
    ], [Arg("container", CONTAINER)]


def _images_arguments() -> tuple[list[Option], list[Arg]]:
    return [Option("-q, --quiet", "only image IDs")], []


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise ValueError(text)
    return number


def _stop_arguments() -> tuple[list[Option], list[Arg]]:
    return [Option("-t, --time", "seconds before SIGKILL (default 10)", value="SECONDS", default=10.0,
                   convert=float)], [Arg("containers", CONTAINERS, many=True)]  # fmt: skip


def _kill_arguments() -> tuple[list[Option], list[Arg]]:
    return [Option("-s, --signal", "signal name or number (default KILL)", value="SIGNAL", default="KILL")], [
        Arg("containers", CONTAINERS, many=True)
    ]


def _rm_arguments() -> tuple[list[Option], list[Arg]]:
    return [Option("-f, --force", "kill it first if running")], [Arg("containers", CONTAINERS, many=True)]


def _inspect_arguments() -> tuple[list[Option], list[Arg]]:
    field = "a field (State.Pid) or docker's template: '{{.Name}} {{.State.Pid}}', '{{json .State}}'"
    return [Option("-f, --format", field, value="FORMAT", default="")], [Arg("containers", CONTAINERS, many=True)]


def _no_arguments() -> tuple[list[Option], list[Arg]]:
    return [], []


def _network_actions() -> list[Command]:
    return [
        Command(
            "minibox network create",
            "make a network: a bridge with its own subnet",
            [Option("--subnet", "e.g. 10.10.0.0/24 (default: a free private range)", value="CIDR")],
            [Arg("name", "the network's name")],
        ),
        Command("minibox network ls", "list networks"),
        Command("minibox network rm", "remove networks no container uses", args=[Arg("names", NETWORKS, many=True)]),
        Command(
            "minibox network inspect", "show a network's details as JSON", args=[Arg("names", NETWORKS, many=True)]
        ),
        Command(
            "minibox network rules",
            "show minibox's NAT and isolation rules, one table for all networks",
            [Option("--iptables", "the same rules in iptables-save words")],
        ),
    ]


# name -> (help, function giving its options and positional arguments)
COMMANDS = {
    "run": ("create and start a container", _run_arguments),
    "create": ("create a container without starting it (state: created)", _create_arguments),
    "start": ("start created containers", _start_arguments),
    "exec": ("run a command in a running container", _exec_arguments),
    "ps": ("list containers", _ps_arguments),
    "logs": ("show what a detached container printed", _logs_arguments),
    "stop": ("SIGTERM, then SIGKILL after a timeout", _stop_arguments),
    "kill": ("send a signal (default SIGKILL)", _kill_arguments),
    "rm": ("remove containers", _rm_arguments),
    "inspect": ("show a container's (or an image's) details as JSON", _inspect_arguments),
    "images": ("list images", _images_arguments),
    "gc": ("clean up what a crashed minibox left behind (and empty lib/trash)", _no_arguments),
    "network": ("create, list, inspect and remove networks", _no_arguments),
}
# Image commands live in their own module; listed here so `minibox --help` shows them all.
IMAGE_COMMANDS = ("pull", "build", "rmi", "prune", "tag", "history", "diff", "commit", "import", "save", "load")


def command(name: str) -> Command:
    """The parser of one command (only that one is built: `minibox run` starts fast)."""
    if name in IMAGE_COMMANDS:
        from engine.cli_images import COMMANDS as image_commands

        help_text, arguments = image_commands[name]
    else:
        help_text, arguments = COMMANDS[name]
    if name == "network":
        return Command("minibox network", help_text, actions=_network_actions())
    options, args = arguments()
    # `run` and `create` free -h for --hostname, as docker does; --help still works.
    help_flags = ("--help",) if name in ("run", "create") else ("-h", "--help")
    return Command(f"minibox {name}", help_text, options, args, help_flags=help_flags)


def every_command() -> Command:
    """``minibox`` itself: its actions are the commands (for ``minibox --help`` and its mistakes)."""
    from engine.cli_images import COMMANDS as image_commands

    actions = [Command(f"minibox {name}", help_text) for name, (help_text, _) in {**COMMANDS, **image_commands}.items()]
    return Command("minibox", "A small container engine for learning.", [Option("--version", "show minibox's version")],
                   actions=actions, action_word="COMMAND")  # fmt: skip


def parse(argv: list[str]) -> Args:
    """``minibox COMMAND ...`` -> the command's arguments, with ``args.cmd`` naming it."""
    if argv and (argv[0] in COMMANDS or argv[0] in IMAGE_COMMANDS):
        args = command(argv[0]).parse(argv[1:])
    else:
        every_command().parse(argv[:1])  # raises: --help, or what is wrong with the first word
        raise AssertionError(argv)
    args.cmd = argv[0]
    return args


def _spec_from(args: Args):
    from engine.capabilities import resolve as resolve_capabilities
    from engine.spec import DEFAULT_ID_MAP, ContainerSpec, parse_cpus, parse_id_map, parse_memory, parse_pids_limit

    private = {"pid": args.pid, "uts": args.uts, "ipc": args.ipc, "cgroup": args.cgroupns, "mnt": args.mntns,
               "user": args.userns, "time": args.timens}  # fmt: skip
    if args.monotonic_offset or args.boottime_offset:
        private["time"] = "private"
    if args.uidmap or args.gidmap:
        private["user"] = "private"
    names = {ns for ns, choice in private.items() if choice == "private"}
    network = "none" if args.net == "private" else args.net
    if network != "host" and not network.startswith("container:"):
        names.add("net")
    publish = []
    if args.publish:  # engine.network costs ~10 ms to import: only when ports are asked for
        from engine.network.ports import parse as parse_publish

        publish = [parse_publish(p) for p in args.publish]
    return ContainerSpec(
        args.image, args.command, name=args.name, hostname=args.hostname, env=_with_host_values(args.env),
        workdir=args.workdir, user=args.user, namespaces=names,
        rootfs_mode="chroot" if args.chroot else "pivot_root",
        memory=parse_memory(args.memory) if args.memory else None,
        cpus=parse_cpus(args.cpus) if args.cpus else None,
        pids_limit=parse_pids_limit(args.pids_limit) if args.pids_limit else None,
        tty=args.tty, interactive=args.interactive, detach=getattr(args, "detach", False), auto_remove=args.rm,
        uid_map=parse_id_map(args.uidmap, "--uidmap") if args.uidmap else DEFAULT_ID_MAP,
        gid_map=parse_id_map(args.gidmap, "--gidmap") if args.gidmap else DEFAULT_ID_MAP,
        monotonic_offset=args.monotonic_offset, boottime_offset=args.boottime_offset, init=args.init,
        capabilities=resolve_capabilities(args.cap_add, args.cap_drop, args.privileged),
        network=network, publish=publish,
    )  # fmt: skip


def _with_host_values(env: list[str]) -> list[str]:
    """``-e KEY`` (no ``=``) passes this shell's value of KEY on, as docker does; left out if unset."""
    return [var if "=" in var else f"{var}={os.environ[var]}" for var in env if "=" in var or var in os.environ]


def _require_a_terminal(fix: str = "run it from a terminal, or leave out -t to pipe input in (-i alone)") -> None:
    """``-it`` joins this terminal to the container's: with input from a pipe or a file there is
    none to join (and the container's shell would wait for ever), as docker says too."""
    if not os.isatty(0):
        from engine.errors import MiniboxError

        raise MiniboxError("the input device is not a TTY", fix)


def _signal_number(text: str) -> int:
    import signal

    name = text.upper().removeprefix("SIG")
    number = int(name) if name.isdigit() else getattr(signal, f"SIG{name}", 0)
    if number not in signal.valid_signals():
        from engine.errors import BadValue

        raise BadValue("-s/--signal", text, "a signal name (TERM, KILL, HUP...) or number (1 to 64)")
    return int(number)


def _field(data: dict, path: str) -> object:
    """``State.Pid`` (or docker's ``{{.State.Pid}}``) -> data["State"]["Pid"]; ``.`` is all of it."""
    from engine.errors import BadValue

    value: object = data
    for part in path.strip("{} ").lstrip(".").split(".") if path.strip("{} .") else []:
        if not isinstance(value, dict) or part not in value:
            raise BadValue("-f/--format", path, f"a field path such as State.Pid; {part!r} is not there")
        value = value[part]
    return value


def _formatted(data: dict, template: str) -> str:
    """``inspect -f``: a field path (``State.Pid``), or a template of docker's kind with any number
    of ``{{.Field.Path}}`` and ``{{json .Field}}`` in text: ``'{{.Name}} is {{.State.Status}}'``."""
    import json
    import re

    def shown(value: object, as_json: bool = False) -> str:
        return value if isinstance(value, str) and not as_json else json.dumps(value)

    if "{{" not in template:
        return shown(_field(data, template))
    fields = r"\{\{\s*(json\s+)?(\.[\w.]*)\s*\}\}"
    return re.sub(fields, lambda m: shown(_field(data, m[2]), bool(m[1])), template)


def _age(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size or unit == "second":
            count = int(seconds // size)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    raise AssertionError(seconds)


PS_COLUMNS = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")


def cmd_ps(args: Args) -> int:
    import time

    import engine

    rows = engine.list_containers(include_stopped=args.all)
    if args.quiet:  # one ID a line, and no line at all for none (as docker: `| wc -l` counts them)
        print("".join(r.id[:12] + "\n" for r in rows), end="")
        return 0
    now = time.time()
    table = []
    for r in rows:
        status = r.state
        if status == "created":
            status = "Created"
        elif status == "running":
            status = f"Up {_age(now - r.data.get('started_at', now))}"
        elif status == "stopped":
            code = r.data.get("exit_code")
            status = f"Exited ({'?' if code is None else code})"
            if r.data.get("finished_at"):
                status += f" {_age(now - r.data['finished_at'])} ago"
        command = " ".join(r.data["command"])
        command = f'"{command[:17]}…"' if len(command) > 18 else f'"{command}"'
        table.append((r.id[:12], r.data["image"], command, _age(now - r.data["created"]) + " ago", status, r.name))
    # as wide as the widest cell (a registry's image names are long), as docker's columns are
    widths = [max([len(row[i]) for row in table] + [len(title)]) + 2 for i, title in enumerate(PS_COLUMNS[:-1])]
    for row in [PS_COLUMNS, *table]:
        print("".join(f"{cell:<{width}}" for cell, width in zip(row, widths, strict=False)) + row[-1])
    return 0


def cmd_logs(args: Args) -> int:
    import time

    import engine

    record, path = engine.logs_path(args.container)
    try:
        f = open(path, "rb")
    except FileNotFoundError:  # not started yet, or in the foreground: its output went to the terminal
        if record.state == "created":
            print(f"minibox: {record.name} has not started yet: `minibox start {record.name}`", file=sys.stderr)
        else:
            print(f"minibox: {record.name} ran in the foreground: its output went to the terminal; "
                  "`minibox run -d` (or `minibox start` without -a) keeps a log", file=sys.stderr)  # fmt: skip
        return 0
    with f:
        if args.tail is not None:
            sys.stdout.buffer.write(_last_lines(f, args.tail))  # leaves f at the end, for -f
        while True:
            chunk = f.read(65536)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                continue
            if not args.follow or engine.get(record.id).state != "running":
                return 0
            time.sleep(0.1)


def _last_lines(f: BinaryIO, count: int) -> bytes:
    """The last ``count`` lines of a log file, read backwards from its end in blocks."""
    end = f.seek(0, os.SEEK_END)
    data, position = b"", end
    while position > 0 and data.count(b"\n") <= count:
        position = max(0, position - 65536)
        f.seek(position)
        data = f.read(end - position)
    f.seek(end)
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-count:]) if count else b""


def cmd_images(args: Args) -> int:
    from engine import images
    from engine.state import Paths

    listed = images.list_images(Paths())
    if args.quiet:  # as docker images -q: each image once
        print("".join(i + "\n" for i in dict.fromkeys(image.id[7:19] for _, image in listed)), end="")
        return 0
    rows = []
    for ref, image in listed:
        name, _, tag = ref.rpartition(":") if ref != "<none>" else ("<none>", "", "<none>")
        rows.append((name, tag, image.id[7:19], str(len(image.layers)), f"{images.size(image) / 1e6:.1f}MB"))
    width = max([len(r[0]) for r in rows] + [18]) + 2
    print(f"{'REPOSITORY':<{width}}{'TAG':<12}{'IMAGE ID':<14}{'LAYERS':>6}{'SIZE':>10}")
    for name, tag, short_id, layers, size in rows:
        print(f"{name:<{width}}{tag:<12}{short_id:<14}{layers:>6}{size:>10}")
    return 0


def _inspect_any(ref: str) -> dict:
    """A container by that name or ID, else an image (as docker inspect does)."""
    import engine
    from engine.errors import ContainerNotFound

    try:
        return engine.inspect(ref)
    except ContainerNotFound:
        from engine import images
        from engine.errors import BadValue, ImageNotFound

        try:
            return images.inspect(engine.Paths(), ref)
        except (ImageNotFound, BadValue):
            raise ContainerNotFound(ref) from None


def cmd_network(args: Args) -> int:
    import json

    from engine import network

    if args.action == "create":
        print(network.create(args.name, args.subnet)["id"])
    elif args.action == "ls":
        print(f"{'NAME':<16}{'BRIDGE':<17}{'SUBNET':<18}{'GATEWAY':<16}{'CONTAINERS':>10}  HOST NETNS")
        for net in network.list_networks(every_host_side=True):  # the column says where each lives
            print(f"{net['name']:<16}{net['bridge']:<17}{net['subnet']:<18}{net['gateway']:<16}"
                  f"{len(net['leases']):>10}  {net.get('host_netns') or '(host)'}")  # fmt: skip
    elif args.action == "inspect":
        print(json.dumps([network.inspect(name) for name in args.names], indent=2))
    elif args.action == "rules":
        print(network.rules()["iptables" if args.iptables else "nft"], end="")
    else:
        return for_each(args.names, network.remove)
    return 0


def for_each(names: list[str], action: Callable[[str], object], echo: bool = True) -> int:
    """``stop a b c`` and the like: ``action`` on each name in turn, printing the name (``echo``)
    when it worked. As docker, one that fails is a one-line error and the others still happen;
    the exit code is the last failure's."""
    from engine.errors import MiniboxError

    status = 0
    for name in names:
        try:
            action(name)
            if echo:
                print(name)
        except MiniboxError as e:
            print(f"minibox: {e.one_line()}", file=sys.stderr)
            status = e.exit_code
    return status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        from engine import __version__

        print(f"minibox {__version__}")
        return 0
    try:
        args = parse(argv)
    except HelpRequested as asked:
        try:
            width = os.get_terminal_size(1).columns - 1
        except OSError:
            width = 100
        print(asked.command.help_text(min(width, 120)), end="")
        return 0
    except UsageError as e:
        print(f"usage: {e.command.usage_line()}\n{e.command.prog}: error: {e}", file=sys.stderr)
        return 2
    from engine.errors import MiniboxError

    try:
        return dispatch(args)
    except MiniboxError as e:
        print(f"minibox: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `minibox inspect x | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141


def command_line() -> None:
    """The ``minibox`` command: ``main()``, then out without Python's slow shutdown."""
    from engine.quick_exit import exit_quickly

    exit_quickly(main())


def _start(args: Args) -> int:
    """``minibox start``: in the background under a shim (as ``run -d``), or attached (``-a``/``-i``)."""
    import engine

    if args.trace:
        from engine import trace

        trace.enable()
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            from engine.errors import BadValue

            raise BadValue("CONTAINER", " ".join(args.containers), "one container when attaching (-a or -i)")
        if args.interactive and engine.get(args.containers[0]).data["spec"].get("tty"):
            _require_a_terminal("it was created with -t: start it from a terminal, or without -i")
        return engine.run_created(args.containers[0], interactive=args.interactive)
    return for_each(args.containers, engine.start_created)


def dispatch(args: Args) -> int:
    import engine

    if args.cmd in ("run", "exec") and args.tty and args.interactive and not getattr(args, "detach", False):
        _require_a_terminal()
    if args.cmd == "run":
        if args.trace:
            from engine import trace

            trace.enable()
        spec = _spec_from(args)
        if spec.detach:
            print(engine.run_detached(spec).id)
            return 0
        return engine.run(spec)
    if args.cmd == "create":
        if args.trace:
            from engine import trace

            trace.enable()
        print(engine.create(_spec_from(args), awaiting_start=True).id)
        return 0
    if args.cmd == "start":
        return _start(args)
    if args.cmd == "exec":
        return engine.exec_in(args.container, args.command, env=_with_host_values(args.env), workdir=args.workdir,
                              user=args.user, tty=args.tty, interactive=args.interactive)  # fmt: skip
    if args.cmd == "ps":
        return cmd_ps(args)
    if args.cmd == "logs":
        return cmd_logs(args)
    if args.cmd == "images":
        return cmd_images(args)
    if args.cmd == "network":
        return cmd_network(args)
    if args.cmd in IMAGE_COMMANDS:
        from engine import cli_images

        return cli_images.run(args)
    if args.cmd == "gc":
        for line in engine.gc() or ["nothing to clean up"]:
            print(line)
        return 0
    if args.cmd == "inspect":
        import json

        details = [_inspect_any(ref) for ref in args.containers]
        if not args.format:
            print(json.dumps(details, indent=2))
            return 0
        for detail in details:
            print(_formatted(detail, args.format))
        return 0
    if args.cmd == "stop":
        return for_each(args.containers, lambda ref: engine.stop(ref, timeout=args.time, still_running=_say_waiting))
    if args.cmd == "kill":
        return for_each(args.containers, lambda ref: engine.kill(ref, _signal_number(args.signal)))
    return for_each(args.containers, lambda ref: engine.remove(ref, force=args.force))


def _say_waiting(record: Record, seconds_left: float) -> None:
    """`stop` of a container that ignores SIGTERM: say why nothing happens for a while."""
    said = (f"{record.name} is still running 1 s after SIGTERM (a PID 1 with no handler for it ignores it): "
            f"SIGKILL in {seconds_left:g} s (`minibox stop -t SECONDS` waits less)")  # fmt: skip
    print(f"minibox: {said}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    command_line()
