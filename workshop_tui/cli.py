"""The ``workshop`` command: with no arguments the TUI (``app.py``); with one, the labs in a plain
terminal. Every action is a call into ``labs.runner``; this module only prints.

    workshop                      the terminal UI
    workshop list                 the labs, with progress
    workshop start LAB            begin (or resume) a lab: its introduction and current step
    workshop check [LAB [STEP]]   check the end state: ✓ or ✗ with what was found, and a hint
    workshop hint                 the next hint for the current step
    workshop view [VIEW...]       host vs container side by side (namespaces, processes, cgroups, ...)
    workshop solve [STEP]         run a step's solution, STEP its number or id (asks first)
    workshop shell [LAB]          a shell where the lab's commands work as typed (its directory; in
                                  a network lab, inside the practice network namespace)
    workshop clean [LAB]          remove what the lab made (containers, mounts, ...); progress stays
    workshop reset LAB            back to the start: the lab's containers go (asks first)
    workshop status               progress in every lab
    workshop lint                 check the lab definitions themselves
    workshop tour                 a five-minute guided tour of minibox
    workshop serve                the TUI in a browser, on 127.0.0.1, behind a printed token
"""

from __future__ import annotations

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workshop", description="Container Internals Workshop: hands-on labs.")
    parser.add_argument("--lang", default="en", help="language of the lab texts (default en)")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.add_parser("list", help="the labs, with progress")
    p = sub.add_parser("start", help="begin or resume a lab")
    p.add_argument("lab")
    p.add_argument("--force", action="store_true", help="start even if a prerequisite is not finished")
    p = sub.add_parser("check", help="check the current step's end state")
    p.add_argument("lab", nargs="?")
    p.add_argument("step", nargs="?")
    sub.add_parser("hint", help="the next hint for the current step")
    p = sub.add_parser("view", help="host vs container, side by side, as the TUI's views show them")
    p.add_argument("view", nargs="*", metavar="VIEW",
                   help="namespaces, processes, cgroups, mounts or network (default: the step's)")  # fmt: skip
    p.add_argument("--lab", default="", help="default: the current lab")
    p = sub.add_parser("shell", help="a shell for typing the lab's commands: in its working directory "
                       "and, in a network lab, inside the practice network namespace")  # fmt: skip
    p.add_argument("lab", nargs="?", help="default: the current lab")
    p = sub.add_parser("solve", help="run a step's solution")
    p.add_argument("step", nargs="?", help="its number or id (default: the current step)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask")
    p = sub.add_parser("clean", help="remove what a lab made (containers, mounts, ...); keep your progress")
    p.add_argument("lab", nargs="?", help="default: the current lab")
    p.add_argument("--all", action="store_true", help="every lab's, and the practice network (the end of a class)")
    p = sub.add_parser("reset", help="put a lab back to its start")
    p.add_argument("lab")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask")
    p.add_argument("--remove-files", action="store_true", help="also delete the lab's working directory")
    sub.add_parser("status", help="progress in every lab")
    sub.add_parser("lint", help="check the lab definitions")
    sub.add_parser("tour", help="a five-minute guided tour of minibox")
    p = sub.add_parser("join", help="join an instructor's class: your progress (never your commands) goes to its board")
    p.add_argument("url", help="the class service, e.g. http://10.0.0.5:8100")
    p.add_argument("code", help="the class code the instructor gave")
    p.add_argument("name", help="your name as the instructor will see it")
    sub.add_parser("leave", help="leave the class (stop sending progress)")
    p = sub.add_parser("class", help="for instructors: run a class service, look at the class board")
    class_sub = p.add_subparsers(dest="class_cmd", required=True, metavar="ACTION")
    q = class_sub.add_parser("serve", help="the class service (attendees join it; prints the code and your token)")
    q.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    q.add_argument("--port", type=int, default=8100)
    q.add_argument("--file", default="", help="the class's SQLite file (default: class.sqlite in the data directory)")
    q.add_argument("--bundle", default="", help="also serve this offline bundle at /bundle.tar (for `class room` VMs)")
    q = class_sub.add_parser("board", help="the class board: who is on which step, who is stuck; pace, broadcast")
    q.add_argument("url")
    q.add_argument(
        "--token",
        default=os.environ.get("WORKSHOP_CLASS_TOKEN", ""),
        help="the instructor token `workshop class serve` printed (or WORKSHOP_CLASS_TOKEN)",
    )
    q.add_argument("--text", action="store_true", help="print the board once as text (with --watch: every 2 s)")
    q.add_argument("--serve", action="store_true", help="the board in a browser (textual-serve, behind its own token)")
    q.add_argument("--port", type=int, default=8001, help="with --serve (default 8001)")
    q.add_argument("--watch", action="store_true")
    q = class_sub.add_parser("room", help="a VM per attendee: cloud-init user-data for each, printable cards")
    q.add_argument("roster", help="a CSV with a `name` column (`address` too, once known), or one name a line")
    q.add_argument("--out", required=True, metavar="DIR", help="where to write user-data/, cards.html, room.json")
    q.add_argument("--bundle-url", default="", help="the VMs install from this offline bundle (`class serve --bundle`)")
    q.add_argument("--repo", default="", help="... or clone this git repository (needs internet in the VMs)")
    q.add_argument("--ref", default="main", help="with --repo: the branch or tag (default main)")
    q.add_argument("--class-url", default="", help="the class service the VMs join, e.g. http://10.0.0.5:8100")
    q.add_argument("--code", default="", help="the class code `workshop class serve` printed")
    q.add_argument("--login", default="learner", help="the attendees' user name on their VM (default learner)")
    q.add_argument("--ssh-key", action="append", default=[], metavar="FILE", help="a public key allowed to log in")
    q.add_argument("--pdf", action="store_true", help="also print the cards to cards.pdf (headless Chromium)")
    p = sub.add_parser("notebook", help="the lab as a Jupyter notebook: write it, then open Jupyter")
    p.add_argument("lab", nargs="?", default="", help="a lab (default: the current one; all with --export)")
    p.add_argument("--export", metavar="DIR", default="", help="only write the notebooks into DIR")
    p.add_argument("--solutions", choices=("hidden", "separate", "none"), default="hidden",
                   help="solutions in collapsed cells (default), in LAB-solutions.ipynb, or left out")  # fmt: skip
    p.add_argument("--fresh", action="store_true", help="write the lab's notebook anew over yours")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--host", default="127.0.0.1", help="address Jupyter listens on (default: this machine only)")
    p = sub.add_parser("serve", help="the workshop in a browser (textual-serve), with a token")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--public-url", default="", help="the URL browsers use, when not on this machine (e.g. a VM's)")
    return parser


def ask(question: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():  # an answer piped in (`echo y | workshop solve`) counts; none is a no
        answer = sys.stdin.readline().strip()
        print(f"{question} [y/N] {answer or 'no (no answer on standard input; pass --yes)'}")
        return answer.lower() in ("y", "yes")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def show_markdown(text: str) -> None:
    """Render lab Markdown in the terminal; ```run blocks are shell commands to type."""
    import re

    from rich.console import Console
    from rich.markdown import Markdown
    from rich.text import Text

    console = Console()
    # Commands are printed as they are, never wrapped: a learner copies them into a shell, where a
    # line broken in two is two broken commands. The prose around them is rendered Markdown.
    for i, part in enumerate(re.split(r"^```run\n(.*?)^```\n?", text, flags=re.S | re.M)):
        if i % 2:
            console.print()
            for line in part.rstrip("\n").splitlines():
                console.print(Text("    " + line, style="bold cyan"), no_wrap=True, overflow="ignore", crop=False)
            console.print()
        elif part.strip():
            console.print(Markdown(part.replace("```run\n", "```sh\n"), code_theme="ansi_dark"))


def class_news(runner) -> dict:  # noqa: ANN001 -- labs.runner.Runner
    """The instructor's pace and message, if this workshop joined a class (else, quickly, {})."""
    if not os.path.exists(os.path.join(runner.progress.directory, "class.json")):
        return {}
    from labs.classroom.client import news, trouble

    if trouble(runner.progress.directory):
        print(f"Class: {trouble(runner.progress.directory)}\n")
    fresh = news(runner.progress.directory, timeout=1.5)
    if fresh.get("message"):
        print(f"From the instructor: {fresh['message']}\n")
    return fresh


def paced_out(news: dict, lab, step) -> bool:  # noqa: ANN001 -- labs objects, imported lazily
    """A step past the instructor's pace is not open yet, here as in the TUI (said on stderr)."""
    from labs.classroom.client import not_open_yet

    why = not_open_yet(news, lab, step) if news else ""
    if why:
        print(f"workshop: {why} (`workshop check {lab.id} STEP` re-checks an earlier one)", file=sys.stderr)
    return bool(why)


def show_step(runner, lab, step, news: dict | None = None) -> None:  # noqa: ANN001 -- labs objects, imported lazily
    from labs.classroom.client import beyond_pace

    if news and beyond_pace(news, lab, lab.index(step.id)):  # as the TUI: the instructor opens it
        print(f"\nThe class is paced up to {news['pace']}: the next step opens when your instructor says so "
              f"(then `workshop start {lab.id}` shows it).")  # fmt: skip
        return
    number = lab.index(step.id) + 1
    show_markdown(f"## Step {number}/{len(lab.steps)}: {step.title}\n\n{runner.render(lab, step.body)}")
    views = f"; host vs container: `workshop view` ({', '.join(step.observe)})" if step.observe else ""
    print(f"\nWhen you are done: `workshop check`   (stuck? `workshop hint`{views})")


def class_command(runner, args: argparse.Namespace) -> int:  # noqa: ANN001 -- labs.runner.Runner
    import os

    from labs.classroom import client

    data = runner.progress.directory
    if args.cmd == "join":
        try:
            member = client.join(data, args.url, args.code, args.name)
        except (ConnectionError, ValueError) as e:
            print(f"workshop: {e}", file=sys.stderr)
            return 1
        print(f"joined as {member['name']}: your progress (labs, steps, checks, hints; never commands) goes to "
              f"{member['url']}. `workshop leave` stops it.")  # fmt: skip
        runner.tell_class_where()  # joined mid-lab: the board shows where, not "(not started)"
        return 0
    if args.cmd == "leave":
        print("left the class" if client.leave(data) else "not in a class")
        return 0
    if args.class_cmd == "room":
        return room_command(args)
    if args.class_cmd == "serve":
        from labs.classroom.server import serve

        if args.bundle and not os.path.isfile(args.bundle):
            print(f"workshop: no bundle at {args.bundle}: make one with `sudo make offline-bundle`", file=sys.stderr)
            return 2
        import socket

        try:  # before a code and token are printed for a service that could not start
            with socket.create_server((args.host, args.port)):
                pass
        except OSError as e:
            why = os.strerror(e.errno) if e.errno else str(e)
            print(f"workshop: cannot listen on {args.host}:{args.port}: {why} (another --port?)", file=sys.stderr)
            return 2
        path = args.file or os.path.join(data, "class.sqlite")
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            print(f"workshop: no directory for the class file {path}: make it first", file=sys.stderr)
            return 2
        os.makedirs(data, exist_ok=True)
        serve(path, args.host, args.port, bundle=args.bundle)
        return 0
    if not args.token:
        print("workshop: give the instructor token (--token, or WORKSHOP_CLASS_TOKEN)", file=sys.stderr)
        return 2
    if args.serve:
        import shlex

        from workshop_tui.serve import serve as serve_browser

        os.environ["WORKSHOP_CLASS_TOKEN"] = args.token  # for each tab's board process; not on its command line
        command = f"{shlex.quote(sys.executable)} -m workshop_tui class board {shlex.quote(args.url)}"
        return serve_browser("127.0.0.1", args.port, "", command, "Class board")
    if args.text:
        return board_text(client.service_url(args.url), args.token, args.watch)
    from workshop_tui.board import BoardApp

    BoardApp(client.service_url(args.url), args.token).run()
    return 0


def room_command(args: argparse.Namespace) -> int:
    import os

    from labs.classroom import room

    try:
        keys = []
        for path in args.ssh_key:
            try:
                with open(path) as f:
                    keys.append(f.read().strip())
            except OSError as e:
                raise room.RoomError(f"cannot read the SSH key {path}: {e.strerror}") from None
        made = room.make_room(args.roster, args.out, {
            "bundle_url": args.bundle_url, "repo": args.repo, "ref": args.ref, "class_url": args.class_url,
            "code": args.code, "login": args.login, "ssh_keys": keys,
        })  # fmt: skip
        cards = os.path.join(args.out, "cards.html")
        if args.pdf:
            room.print_to_pdf(cards, os.path.join(args.out, "cards.pdf"))
            cards += " and cards.pdf"
    except room.RoomError as e:
        print(f"workshop: {e}", file=sys.stderr)
        return 2
    for option in room.loopback_options(vars(args)):
        print(
            f"workshop: warning: {option} is this machine's loopback; inside each VM it is the VM itself. "
            "Give the address the VMs reach you at (libvirt's default network: 192.168.122.1)",
            file=sys.stderr,
        )
    first = made["attendees"][0]["slug"]
    print(f"{len(made['attendees'])} attendees: user-data in {args.out}/user-data/, cards in {cards}, "
          f"passwords in {args.out}/room.json (root only).\n"
          f"Give each VM its file, e.g. `multipass launch 24.04 --cloud-init {args.out}/user-data/{first}.yaml` "
          f"or `virt-install ... --cloud-init user-data={args.out}/user-data/{first}.yaml`.")  # fmt: skip
    return 0


def board_text(url: str, token: str, watch: bool) -> int:
    import json
    import time
    import urllib.error
    import urllib.request

    from labs.classroom.client import why_refused
    from labs.classroom.protocol import where_on_board

    while True:
        request = urllib.request.Request(f"{url.rstrip('/')}/api/board", headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                board = json.load(answer)
        except (urllib.error.URLError, OSError) as e:
            print(f"workshop: cannot read the board at {url}: {why_refused(e)}", file=sys.stderr)
            return 1
        print(f"{'NAME':<24}{'WHERE':<34}{'ON STEP':>9}{'FAILED':>8}{'HINTS':>7}{'DONE':>6}  ")
        for a in board["attendees"]:
            where = where_on_board(a["lab"], a["step"])
            status = f"  {a.get('status', 'stuck' if a['stuck'] else '').upper()}".rstrip()  # STUCK, WAITING, DONE
            print(f"{a['name'][:23]:<24}{where[:33]:<34}{a['seconds_on_step']:>8}s{a['failed_checks']:>8}"
                  f"{a['hints']:>7}{a.get('steps_done', 0):>6}{status}")  # fmt: skip
        print("per step: " + ", ".join(f"{k} {v}" for k, v in sorted(board["histogram"].items())))
        on_break = " · on a break" if board.get("break_since") else ""
        print(f"pace: {board.get('pace') or 'none'} · message: {board.get('message') or 'none'}{on_break}")
        if not watch:
            return 0
        time.sleep(2)
        print()


def _kernel_profile(data_dir: str) -> str:
    """An IPython directory whose kernels load the labs' magics before any cell runs: after a
    kernel restart ``check("...")`` works at once (the lab is found from the notebook's name)."""
    import os

    ipython_dir = os.path.join(data_dir, "ipython")
    profile = os.path.join(ipython_dir, "profile_default")
    os.makedirs(profile, exist_ok=True)
    with open(os.path.join(profile, "ipython_kernel_config.py"), "w") as f:
        f.write("# written by `workshop notebook`: every kernel it starts has the labs' magics\n"
                "c.InteractiveShellApp.exec_lines = [\n"
                "    'import notebooks.magics as _labs; _labs.load_ipython_extension(get_ipython()); del _labs',\n"
                "]\n")  # fmt: skip
    return ipython_dir


def notebook_command(runner, args: argparse.Namespace) -> int:  # noqa: ANN001 -- labs.runner.Runner
    """Write the notebooks; without --export, start Jupyter on them behind a random token."""
    import os
    import secrets

    from notebooks.generate import export

    labs = [runner.lab(args.lab)] if args.lab or not args.export else runner.labs()
    directory = args.export or os.path.join(os.path.dirname(runner.workdir(labs[0])), "notebooks")
    keep = not args.export and not args.fresh  # the student's own notebook: never written over unasked
    before = set(os.listdir(directory)) if os.path.isdir(directory) else set()
    written = export(runner, labs, directory, args.solutions, keep=keep, portable=bool(args.export))
    for path in written:
        kept = keep and os.path.basename(path) in before
        print(f"kept your {path} (--fresh writes a new one over it)" if kept else f"wrote {path}")
    if args.export:
        return 0
    token = secrets.token_urlsafe(16)
    first = os.path.basename(written[0])
    print(f"\nJupyter: http://{args.host}:{args.port}/notebooks/{first}?token={token}\n(Ctrl-C stops it)")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "IPYTHONDIR": _kernel_profile(runner.progress.directory)}  # fmt: skip
    argv = [sys.executable, "-m", "notebook", "--no-browser", "--allow-root", f"--ip={args.host}",
            f"--port={args.port}", f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={directory}"]  # fmt: skip
    import subprocess

    return subprocess.call(argv, env=env)


def _say_what_is_still_running(runner) -> None:  # noqa: ANN001 -- labs.runner.Runner
    """After the TUI: the labs' containers still there, and how to remove them (or come back)."""
    left = [name for lab in runner.labs() for name in runner.still_there(lab)]
    if left:
        shown = ", ".join(left[:6]) + (f" and {len(left) - 6} more" if len(left) > 6 else "")
        print(f"The labs' containers are still there: {shown}. `workshop` goes on where you left off; "
              "`workshop clean --all` removes them (your progress stays).")


def _follow_the_shells_lab(runner, args: argparse.Namespace) -> None:  # noqa: ANN001 -- labs.runner.Runner
    """In `workshop shell`'s shell (WORKSHOP_LAB), a command without a lab is about that shell's
    lab, even when the TUI has gone on to another one meanwhile: said, so nobody wonders."""
    import os

    shell_lab = os.environ.get("WORKSHOP_LAB")
    if not shell_lab or args.cmd not in ("check", "hint", "solve", "view", "clean") or getattr(args, "lab", None):
        return
    runner.shell_lab = shell_lab
    current = runner.progress.current_lab
    if current and current != shell_lab:
        print(f"(this is lab {shell_lab}'s shell, so lab {shell_lab}; the workshop has gone on to lab {current}: "
              f"`exit`, then `workshop shell` for a shell of it)", file=sys.stderr)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd is None:
        from workshop_tui.app import WorkshopApp

        app = WorkshopApp()
        app.run()
        _say_what_is_still_running(app.runner)
        return 0
    if args.cmd == "serve":
        from workshop_tui.serve import serve

        return serve(args.host, args.port, args.public_url)
    if args.cmd == "tour":
        from workshop_tui.demo import run_demo

        return run_demo([])
    if args.cmd == "lint":
        from labs.lint import lint_all

        problems = lint_all()
        for problem in problems:
            print(problem)
        print(f"{len(problems)} problem(s)" if problems else "all labs are fine")
        return 1 if problems else 0
    from engine.errors import MiniboxError
    from labs.runner import LabSetupFailed, Runner

    runner = Runner(language=args.lang)
    _follow_the_shells_lab(runner, args)
    if args.cmd == "notebook":
        return notebook_command(runner, args)
    try:
        if args.cmd in ("join", "leave", "class"):
            return class_command(runner, args)
        return dispatch(runner, args)
    except (LookupError, PermissionError, MiniboxError, LabSetupFailed) as e:
        message = e.one_line() if isinstance(e, MiniboxError) else str(e).strip("'\"")
        print(f"workshop: {message}", file=sys.stderr)
        return 1
    finally:
        if "labs.classroom.client" in sys.modules:  # this command told a class something
            sys.modules["labs.classroom.client"].finish_sending()


def dispatch(runner, args: argparse.Namespace) -> int:  # noqa: ANN001
    if args.cmd in ("list", "status"):
        news = class_news(runner)  # (the instructor's message, if in a class)
        if news.get("pace"):
            print(f"The class is paced up to {news['pace']}.\n")
        for lab in runner.labs():
            entry = runner.progress.data["labs"].get(lab.id, {})
            done = len(entry.get("done", []))
            if runner.finished(lab.id):
                mark = "✓ done"
            elif done or entry.get("started"):  # opened early (--force) too: where the learner is
                mark = f"… {done}/{len(lab.steps)} steps"
            elif runner.missing_prerequisites(lab):
                mark = f"locked: do {', '.join(runner.missing_prerequisites(lab))} first"
            else:
                mark = ""
            current = "▶" if runner.progress.current_lab == lab.id else " "
            title = lab.title if len(lab.title) <= 48 else lab.title[:47] + "…"
            print(f"{current} {lab.number:2d}. {lab.id:<18} {title:<48} {lab.minutes:3d} min  {mark}")
            if args.cmd == "status" and entry.get("hints"):
                print(f"        hints shown: {sum(entry['hints'].values())} (asked for, or with a check that failed)")
        return 0
    if args.cmd == "start":
        lab = runner.start(args.lab, force=args.force)
        news = class_news(runner)
        show_markdown(f"# {lab.title}\n\n{runner.render(lab, lab.intro).strip()}")
        where = " and inside the practice network namespace " + runner.sandbox(lab) if lab.sandbox else ""
        print(f"\nYour working directory for this lab: {runner.workdir(lab)}\n"
              f"Type the lab's commands in `workshop shell`: it opens there{where}.")  # fmt: skip
        step = runner.current_step(lab)
        if step:
            show_step(runner, lab, step, news)
        return 0
    if args.cmd == "check":
        news = class_news(runner)
        lab = runner.lab(args.lab)
        step = lab.step(args.step) if args.step else runner.current_step(lab)
        if step is not None and paced_out(news, lab, step):
            return 1
        outcome = runner.check(args.lab, args.step)
        for result in outcome.results:
            print(f"{'✓' if result.ok else '✗'} {result.message}")
        if not outcome.passed:
            if outcome.next_hint:
                print()
                show_markdown(f"Hint: {runner.render(outcome.lab, outcome.next_hint)}")  # (its **bold**, `code`)
            return 1
        print(f"\nStep {outcome.step.title!r} done.")
        if outcome.next_step:
            show_step(runner, outcome.lab, outcome.next_step, news)
        elif not args.step:
            show_markdown(f"## Lab {outcome.lab.id!r} done\n\n{runner.finish_text(outcome.lab)}")
        return 0
    if args.cmd == "hint":
        lab = runner.lab()
        step = runner.current_step(lab)
        if step is not None and paced_out(class_news(runner), lab, step):
            return 1
        step, hint, number = runner.hint()
        if hint:
            show_markdown(f"Hint {number}/{len(step.hints)}: {hint}")  # (its **bold** and `code` rendered)
        else:
            print("No more hints: `workshop solve` shows the way.")
        return 0
    if args.cmd == "view":
        from engine.observe import VIEWS
        from workshop_tui.views import print_views

        unknown = [v for v in args.view if v not in VIEWS]
        if unknown:
            raise LookupError(f"no view {unknown[0]!r}: the views are {', '.join(VIEWS)}")
        lab = runner.lab(args.lab or None)
        step = runner.current_step(lab)
        print_views(runner, lab, step, args.view or (step.observe if step and step.observe else ["namespaces"]))
        return 0
    if args.cmd == "shell":
        lab = runner.lab(args.lab)
        argv, env, directory = runner.shell(lab)
        inside = f", inside the practice network namespace {runner.sandbox(lab)}" if lab.sandbox else ""
        print(f"A shell for lab {lab.id!r} in {directory}{inside}. `exit` leaves it.", flush=True)
        os.chdir(directory)
        import signal

        for ignored_by_python in (signal.SIGPIPE, signal.SIGXFSZ):  # else the shell inherits SIG_IGN:
            signal.signal(ignored_by_python, signal.SIG_DFL)  # `ls | head` would say "Broken pipe"
        os.execvpe(argv[0], argv, env)
    if args.cmd == "solve":
        lab = runner.lab()
        step = lab.step(args.step) if args.step else runner.current_step(lab)
        if step is None:
            raise LookupError(f"lab {lab.id!r} is finished; `workshop reset {lab.id}` to do it again")
        if paced_out(class_news(runner), lab, step):
            return 1
        print("The solution runs:\n" + "\n".join(f"  $ {runner.render(lab, c)}" for c in step.solution))
        if not ask("Run it?", args.yes):
            return 1
        results = runner.solve(lab.id, step.id)
        for result in results:
            print(result.stdout, end="")
        if results and results[-1].returncode:
            failed = results[-1].args[-1]
            left = len(step.solution) - len(results)
            rest = f"; the {left} command(s) after it were not run" if left else ""
            print(f"\n✗ `{failed}` failed (exit code {results[-1].returncode}){rest}.\n"
                  "Fix what it says (a container of yours with the same name? `minibox rm -f NAME`), "
                  "then `workshop solve` again.", file=sys.stderr)  # fmt: skip
            return 1
        print("Now `workshop check`.")
        return 0
    if args.cmd == "clean" and args.all:
        if args.lab:
            print(f"workshop: give a lab or --all, not both (`workshop clean {args.lab}`, or `workshop clean --all`)",
                  file=sys.stderr)  # fmt: skip
            return 2
        for line in runner.clean_all() or ["nothing of any lab was left"]:
            print(line)
        return 0
    if args.cmd == "clean":
        lab = runner.lab(args.lab)
        for line in runner.clean(lab.id) or [f"nothing of lab {lab.id!r} was left"]:
            print(line)
        return 0
    if args.cmd == "reset":
        lab = runner.lab(args.lab)
        what = f"its containers ({', '.join(lab.containers)})" if lab.containers else "its state"
        files = f" and delete {runner.workdir(lab)}" if args.remove_files else ""
        if not ask(f"Reset lab {lab.id!r}: remove {what}{files}, and forget its progress?", args.yes):
            return 1
        for line in runner.reset(lab.id, remove_workdir=args.remove_files):
            print(line)
        print(f"Lab {lab.id!r} is back at its start.")
        return 0
    raise AssertionError(args.cmd)


if __name__ == "__main__":
    sys.exit(main())
