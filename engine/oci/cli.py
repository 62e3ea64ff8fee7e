"""``minibox-runc``: runc's command line, for container managers (``podman --runtime minibox-runc``).

    minibox-runc [--root DIR] [--log FILE] [--log-format text|json] COMMAND ...
        create --bundle DIR [--pid-file F] [--console-socket S] ID
        start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID | list | features

Managers read the runtime's errors from stderr, or from ``--log`` (JSON lines with
``--log-format json``, as runc writes them); exit status 1 means the operation failed.
Every call is also noted in ``ROOT/calls.log`` (time, command line, exit status), so a learner
can watch what podman asks of its runtime (lab 16).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minibox-runc", description="minibox's OCI runtime (runc's command line)")
    version = "minibox-runc version 0.1.0 (OCI runtime spec 1.0.2)"
    parser.add_argument("--version", "-v", action="version", version=version)
    parser.add_argument("--root", default="/run/minibox-runc", help="where container state is kept")
    parser.add_argument("--log", default="", help="also write errors to this file")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("--debug", action="store_true", help="accepted for runc compatibility")
    parser.add_argument("--systemd-cgroup", action="store_true", help="refused: minibox manages cgroupfs only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("create", help="create a container from a bundle; its command waits for `start`")
    p.add_argument("--bundle", "-b", default=".")
    p.add_argument("--pid-file", default="")
    p.add_argument("--console-socket", default="")
    p.add_argument("--no-pivot", action="store_true", help="refused: minibox always uses pivot_root")
    p.add_argument("--no-new-keyring", action="store_true", help="accepted: minibox makes no session keyring")
    p.add_argument("id")
    for name, text in (
        ("start", "run the created container's command"),
        ("state", "print the state as JSON"),
        ("pause", "freeze every process of the container"),
        ("resume", "thaw a paused container"),
    ):
        sub.add_parser(name, help=text).add_argument("id")
    p = sub.add_parser("exec", help="run another process in a running container")
    p.add_argument("--process", "-p", default="", help="a JSON file with the process (as config.json's)")
    p.add_argument("--detach", "-d", action="store_true")
    p.add_argument("--pid-file", default="")
    p.add_argument("--console-socket", default="")
    p.add_argument("--tty", "-t", action="store_true")
    p.add_argument("--cwd", default="/")
    p.add_argument("--env", "-e", action="append", default=[])
    p.add_argument("id")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND")
    p = sub.add_parser("kill", help="send a signal (default TERM) to the container's init")
    p.add_argument("--all", "-a", action="store_true", help="to every process in its cgroup")
    p.add_argument("id")
    p.add_argument("signal", nargs="?", default="TERM")
    p = sub.add_parser("delete", help="remove a stopped container (--force: kill it first)")
    p.add_argument("--force", "-f", action="store_true")
    p.add_argument("id")
    p = sub.add_parser("list", help="the containers under --root")
    p.add_argument("--format", "-f", choices=("table", "json"), default="table")
    sub.add_parser("features", help="what this runtime supports, as JSON")
    return parser


def log_error(args: argparse.Namespace, message: str) -> None:
    print(f"minibox-runc: {message}", file=sys.stderr)
    if not args.log:
        return
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    line = json.dumps({"level": "error", "msg": message, "time": when}) if args.log_format == "json" else (
        f'time="{when}" level=error msg="{message}"')  # fmt: skip
    with open(args.log, "a") as f:
        f.write(line + "\n")


def note_call(root: str, argv: list[str], code: int, started: float) -> None:
    """One line per call in ROOT/calls.log, the last 1000 calls kept."""
    if not os.path.isdir(root):
        return
    path = os.path.join(root, "calls.log")
    stamp = time.strftime("%H:%M:%S", time.localtime(started)) + f".{int(started % 1 * 1000):03d}"
    with open(path, "a") as f:
        f.write(f"{stamp} exit={code} {(time.time() - started) * 1000:.0f}ms minibox-runc {' '.join(argv)}\n")
        size = f.tell()
    if size > 256 * 1024:
        with open(path) as f:
            lines = f.readlines()[-1000:]
        with open(path, "w") as f:
            f.writelines(lines)


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    code = run(args)
    if args.command != "features":
        note_call(args.root, argv, code, started)
    return code


def run(args: argparse.Namespace) -> int:
    from engine.errors import MiniboxError
    from engine.oci import runtime

    try:
        if args.systemd_cgroup:
            raise MiniboxError("--systemd-cgroup is not supported: minibox manages cgroups directly (cgroupfs)",
                               "run podman with --cgroup-manager cgroupfs")  # fmt: skip
        if args.command != "features" and os.geteuid() != 0:
            raise MiniboxError("minibox-runc needs root (namespaces, mounts, cgroups)", "run it with sudo")
        if args.command == "create":
            if args.no_pivot:
                raise MiniboxError("--no-pivot is not supported", "leave it out: minibox always uses pivot_root")
            runtime.create(args.root, args.id, args.bundle, args.pid_file, args.console_socket)
        elif args.command == "exec":
            if args.process:
                try:
                    with open(args.process) as f:
                        proc = json.load(f)
                except (OSError, ValueError) as e:
                    raise MiniboxError(f"cannot read the process file {args.process}: {e}",
                                       "give --process a JSON file with a process object") from None  # fmt: skip
            else:  # as runc: the container's own process settings, with this command
                proc = runtime.process_like_the_init(args.root, args.id, args.argv, args.env, args.cwd, args.tty)
            result = runtime.exec_process(args.root, args.id, proc, args.detach, args.pid_file, args.console_socket)
            return 0 if args.detach else result
        elif args.command == "start":
            runtime.start(args.root, args.id)
        elif args.command in ("pause", "resume"):
            runtime.pause(args.root, args.id, resume=args.command == "resume")
        elif args.command == "state":
            print(json.dumps(runtime.state_of(args.root, args.id), indent=2))
        elif args.command == "kill":
            runtime.kill(args.root, args.id, args.signal, args.all)
        elif args.command == "delete":
            runtime.delete(args.root, args.id, args.force)
        elif args.command == "list":
            found = runtime.list_containers(args.root)
            if args.format == "json":
                print(json.dumps(found))
            else:
                print(f"{'ID':<24}{'PID':>8}  {'STATUS':<9}BUNDLE")
                for c in found:
                    print(f"{c['id']:<24}{c['pid']:>8}  {c['status']:<9}{c['bundle']}")
        elif args.command == "features":
            print(json.dumps(runtime.features(), indent=2))
    except MiniboxError as e:
        log_error(args, f"{e.what}{f'; {e.fix}' if e.fix else ''}")
        # exec of a command that is not there, or not executable: the shell's 127 and 126, as runc
        return e.exit_code if args.command == "exec" and e.exit_code in (126, 127) else 1
    return 0


def command_line() -> None:
    """The ``minibox-runc`` command: ``main()``, then out without Python's slow shutdown."""
    from engine.quick_exit import exit_quickly

    exit_quickly(main())


if __name__ == "__main__":
    command_line()
