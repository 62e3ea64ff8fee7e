"""The ``minibox`` command: a docker-like command line over the engine library.

It only parses arguments and prints; every action is a call into ``engine``. Errors from the
engine (``MiniboxError``) are printed as one line, ``minibox: WHAT; FIX``, with a non-zero exit
code and no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

# argparse asks gettext for a translation of each of its own words ("usage", "options", ...) and
# every ask searches the disk; the first one also imports `locale` (together ~1.5 ms of a ~25 ms
# `minibox run`). CPython ships no translations of argparse, so the answer is always the English
# text it was given: say so once, instead of asking each time.
argparse._ = str  # type: ignore[attr-defined]

NS_CHOICES = ("host", "private")


def _add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--help", action="help", help="show this help and exit")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background, print the ID")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="give the container a terminal")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name", default="", help="a name for the container")
    p.add_argument("-h", "--hostname", default="", help="the container's hostname (UTS namespace)")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set a variable")
    p.add_argument("-w", "--workdir", default="", help="working directory inside the container")
    p.add_argument("-u", "--user", default="", help="USER[:GROUP] or UID[:GID] to run as")
    p.add_argument("-m", "--memory", help="memory limit, e.g. 64m (cgroup memory controller)")
    p.add_argument("--cpus", help="CPU limit, e.g. 0.5 (CFS quota per period)")
    p.add_argument("--pids-limit", help="maximum number of processes (pids controller)")
    p.add_argument("--init", action="store_true", help="run a reaper as PID 1 that forwards signals")
    p.add_argument("--cap-add", action="append", default=[], metavar="CAP", help="keep a capability, e.g. SYS_ADMIN")
    p.add_argument("--cap-drop", action="append", default=[], metavar="CAP", help="drop a capability (or ALL)")
    p.add_argument("--privileged", action="store_true", help="keep every capability: root inside is root outside")
    p.add_argument("--chroot", action="store_true", help="enter the root with chroot, not pivot_root")
    p.add_argument("--trace", action="store_true", help="print every stage of the start: image, layers, cgroup, "
                   "forks, namespaces, mounts, pivot_root, execve")  # fmt: skip
    p.add_argument("--pid", choices=NS_CHOICES, default="private", help="PID namespace")
    p.add_argument("--net", "--network", default="none", metavar="NETWORK",
                   help="none (only lo, the default; also: private), bridge (the default network, device "
                        "minibox0), another network's name, host, or container:NAME")  # fmt: skip
    p.add_argument("-p", "--publish", action="append", default=[], metavar="HOSTPORT:CPORT[/udp]",
                   help="publish a container port on the host (DNAT), e.g. 8080:80")  # fmt: skip
    p.add_argument("--uts", choices=NS_CHOICES, default="private", help="UTS (hostname) namespace")
    p.add_argument("--ipc", choices=NS_CHOICES, default="private", help="IPC namespace")
    p.add_argument("--cgroupns", choices=NS_CHOICES, default="private", help="cgroup namespace")
    p.add_argument("--mntns", choices=NS_CHOICES, default="private", help="mount namespace (host needs --chroot)")
    p.add_argument(
        "--userns", choices=NS_CHOICES, default="host", help="user namespace (root inside = uid 100000 outside)"
    )
    p.add_argument("--uidmap", help="user namespace uid map INSIDE:OUTSIDE:COUNT (default 0:100000:65536)")
    p.add_argument("--gidmap", help="user namespace gid map (default 0:100000:65536)")
    p.add_argument("--timens", choices=NS_CHOICES, default="host", help="time namespace")
    p.add_argument(
        "--monotonic-offset",
        type=int,
        default=0,
        metavar="SECONDS",
        help="shift CLOCK_MONOTONIC (implies --timens private)",
    )
    p.add_argument(
        "--boottime-offset",
        type=int,
        default=0,
        metavar="SECONDS",
        help="shift CLOCK_BOOTTIME/uptime (implies --timens private)",
    )
    p.add_argument("image")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _add_exec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    p.add_argument("-t", "--tty", action="store_true", help="give the command a terminal")
    p.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE", help="set a variable")
    p.add_argument("-w", "--workdir", default="", help="working directory inside the container")
    p.add_argument("-u", "--user", default="", help="USER[:GROUP] or UID[:GID] to run as")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)


def _add_ps_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="include stopped containers")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")


def _add_logs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the container stops")
    p.add_argument("container")


def _add_stop_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--time", type=float, default=10.0, help="seconds before SIGKILL (default 10)")
    p.add_argument("containers", nargs="+")


def _add_kill_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--signal", default="KILL", help="signal name or number (default KILL)")
    p.add_argument("containers", nargs="+")


def _add_rm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="kill it first if running")
    p.add_argument("containers", nargs="+")


def _add_containers_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("containers", nargs="+")


def _add_inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--format", default="", metavar="FIELD",
                   help="print one field, e.g. State.Pid (docker's {{.State.Pid}} works too)")  # fmt: skip
    p.add_argument("containers", nargs="+")


def _no_arguments(p: argparse.ArgumentParser) -> None:
    pass


def _add_network_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="make a network: a bridge with its own subnet")
    create.add_argument("--subnet", help="e.g. 10.10.0.0/24 (default: a free private range)")
    create.add_argument("name")
    sub.add_parser("ls", help="list networks")
    rm = sub.add_parser("rm", help="remove networks no container uses")
    rm.add_argument("names", nargs="+")
    inspect = sub.add_parser("inspect", help="show a network's details as JSON")
    inspect.add_argument("names", nargs="+")
    rules = sub.add_parser("rules", help="show minibox's NAT and isolation rules, one table for all networks")
    rules.add_argument("--iptables", action="store_true", help="the same rules in iptables-save words")


# name -> (help, function adding its arguments)
COMMANDS = {
    "run": ("create and start a container", _add_run_arguments),
    "exec": ("run a command in a running container", _add_exec_arguments),
    "ps": ("list containers", _add_ps_arguments),
    "logs": ("show what a detached container printed", _add_logs_arguments),
    "stop": ("SIGTERM, then SIGKILL after a timeout", _add_stop_arguments),
    "kill": ("send a signal (default SIGKILL)", _add_kill_arguments),
    "rm": ("remove containers", _add_rm_arguments),
    "inspect": ("show a container's (or an image's) details as JSON", _add_inspect_arguments),
    "images": ("list images", _no_arguments),
    "gc": ("clean up what a crashed minibox left behind", _no_arguments),
    "network": ("create, list, inspect and remove networks", _add_network_arguments),
}
# Image commands live in their own module; listed here so `minibox --help` shows them all.
IMAGE_COMMANDS = ("pull", "build", "rmi", "prune", "tag", "history", "diff", "commit", "import", "save", "load")


def _formatter(prog: str) -> argparse.HelpFormatter:
    # With an explicit width argparse does not import shutil (2 ms) just to ask the terminal's.
    try:
        width = os.get_terminal_size().columns - 2
    except OSError:
        width = 98
    return argparse.HelpFormatter(prog, width=min(width, 118))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's arguments (start-up is costly)."""
    parser = argparse.ArgumentParser(
        prog="minibox", description="A small container engine for learning.", formatter_class=_formatter
    )
    from engine import __version__

    parser.add_argument("--version", action="version", version=f"minibox {__version__}")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    commands = dict(COMMANDS)
    if only is None or only in IMAGE_COMMANDS:
        from engine.cli_images import COMMANDS as image_commands

        commands.update(image_commands)
    for name, (help_text, add_arguments) in commands.items():
        if only not in (None, name):
            continue  # each sub-parser costs ~0.1 ms; only `minibox --help` lists them all
        # `run` frees -h for --hostname, as docker does; --help still works.
        p = sub.add_parser(
            name, help=help_text, description=help_text, add_help=name != "run", formatter_class=_formatter
        )
        add_arguments(p)
        _SUB_PARSERS[name] = p
    return parser


_SUB_PARSERS: dict[str, argparse.ArgumentParser] = {}  # so that `minibox ps -x` shows ps's usage


def _spec_from(args: argparse.Namespace):
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
        args.image, args.command, name=args.name, hostname=args.hostname, env=args.env,
        workdir=args.workdir, user=args.user, namespaces=names,
        rootfs_mode="chroot" if args.chroot else "pivot_root",
        memory=parse_memory(args.memory) if args.memory else None,
        cpus=parse_cpus(args.cpus) if args.cpus else None,
        pids_limit=parse_pids_limit(args.pids_limit) if args.pids_limit else None,
        tty=args.tty, interactive=args.interactive, detach=args.detach, auto_remove=args.rm,
        uid_map=parse_id_map(args.uidmap, "--uidmap") if args.uidmap else DEFAULT_ID_MAP,
        gid_map=parse_id_map(args.gidmap, "--gidmap") if args.gidmap else DEFAULT_ID_MAP,
        monotonic_offset=args.monotonic_offset, boottime_offset=args.boottime_offset, init=args.init,
        capabilities=resolve_capabilities(args.cap_add, args.cap_drop, args.privileged),
        network=network, publish=publish,
    )  # fmt: skip


def _require_a_terminal() -> None:
    """``-it`` joins this terminal to the container's: with input from a pipe or a file there is
    none to join (and the container's shell would wait for ever), as docker says too."""
    if not os.isatty(0):
        from engine.errors import MiniboxError

        raise MiniboxError("the input device is not a TTY",
                           "run it from a terminal, or leave out -t to pipe input in (-i alone)")  # fmt: skip


def _signal_number(text: str) -> int:
    import signal

    name = text.upper().removeprefix("SIG")
    if name.isdigit():
        return int(name)
    try:
        return int(getattr(signal, f"SIG{name}"))
    except AttributeError:
        from engine.errors import BadValue

        raise BadValue("-s/--signal", text, "a signal name (TERM, KILL, HUP...) or number") from None


def _field(data: dict, path: str) -> object:
    """``State.Pid`` (or docker's ``{{.State.Pid}}``) -> data["State"]["Pid"]."""
    from engine.errors import BadValue

    value: object = data
    for part in path.strip("{} ").lstrip(".").split("."):
        if not isinstance(value, dict) or part not in value:
            raise BadValue("-f/--format", path, f"a field path such as State.Pid; {part!r} is not there")
        value = value[part]
    return value


def _age(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= size or unit == "second":
            count = int(seconds // size)
            return f"{count} {unit}" if count == 1 else f"{count} {unit}s"
    raise AssertionError(seconds)


PS_COLUMNS = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")


def cmd_ps(args: argparse.Namespace) -> int:
    import time

    import engine

    rows = engine.list_containers(include_stopped=args.all)
    if args.quiet:
        print("\n".join(r.id[:12] for r in rows))
        return 0
    now = time.time()
    table = []
    for r in rows:
        status = r.state
        if status == "running":
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


def cmd_logs(args: argparse.Namespace) -> int:
    import time

    import engine

    record, path = engine.logs_path(args.container)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return 0  # a foreground container: its output went to the terminal
    with f:
        while True:
            chunk = f.read(65536)
            if chunk:
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                continue
            if not args.follow or engine.get(record.id).state != "running":
                return 0
            time.sleep(0.1)


def cmd_images(_args: argparse.Namespace) -> int:
    from engine import images
    from engine.state import Paths

    rows = []
    for ref, image in images.list_images(Paths()):
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


def cmd_network(args: argparse.Namespace) -> int:
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
        status = 0
        for name in args.names:
            try:
                network.remove(name)
                print(name)
            except network.MiniboxError as e:
                print(f"minibox: {e.one_line()}", file=sys.stderr)
                status = e.exit_code
        return status
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    known = argv and (argv[0] in COMMANDS or argv[0] in IMAGE_COMMANDS)
    args, unknown = build_parser(argv[0] if known else None).parse_known_args(argv)
    if unknown:  # argparse would blame the top-level parser and show its usage, not the command's
        _SUB_PARSERS[args.cmd].error(f"unrecognized arguments: {' '.join(unknown)}")
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


def dispatch(args: argparse.Namespace) -> int:
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
    if args.cmd == "exec":
        return engine.exec_in(args.container, args.command, env=args.env, workdir=args.workdir,
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
            value = _field(detail, args.format)
            print(value if isinstance(value, str) else json.dumps(value))
        return 0
    status = 0
    for ref in args.containers:  # stop / kill / rm: like docker, go on after one fails
        try:
            if args.cmd == "stop":
                engine.stop(ref, timeout=args.time)
            elif args.cmd == "kill":
                engine.kill(ref, _signal_number(args.signal))
            else:
                engine.remove(ref, force=args.force)
            print(ref)
        except engine.MiniboxError as e:
            print(f"minibox: {e.one_line()}", file=sys.stderr)
            status = e.exit_code
    return status


if __name__ == "__main__":
    command_line()
