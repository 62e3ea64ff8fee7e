"""Drive labs: start, check, hint, solve, reset, status. No user interface here.

The ``workshop`` command prints what these return; the TUI and notebooks render it. Commands
(setup, solutions, "run this") run in ``sh`` with the lab's working directory as the current
directory and the project's ``minibox`` first on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from labs import loader
from labs.checks import Context, Result, run_check
from labs.model import Lab, Step
from labs.progress import Progress


@dataclass
class CheckOutcome:
    lab: Lab
    step: Step
    results: list[Result]
    next_hint: str | None
    next_step: Step | None  # the step now current, when this one passed

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.results)


class Runner:
    def __init__(self, language: str = "en", data_dir: str | None = None) -> None:
        self.language = language
        self.progress = Progress(data_dir)
        self.shell_lab: str | None = None  # set in a lab's own shell: "the current lab" is that one

    # --- labs and where the learner is ---------------------------------------------------------

    def labs(self) -> list[Lab]:
        return loader.load_all(language=self.language)

    def lab(self, ref: str | None = None) -> Lab:
        ref = ref or self.shell_lab or self.progress.current_lab
        if not ref:
            raise LookupError("no lab started yet: `workshop list`, then `workshop start LAB`")
        return loader.find(ref, language=self.language)

    def current_step(self, lab: Lab) -> Step | None:
        step_id = self.progress.lab(lab.id).get("current")
        done = set(self.progress.lab(lab.id)["done"])
        if step_id is None:
            step_id = next((s.id for s in lab.steps if s.id not in done), None)
        return lab.step(step_id) if step_id else None

    def _tell_class(self, kind: str, lab: Lab, step: Step | None) -> None:
        """A progress event for the class board, if this workshop joined a class (labs/classroom)."""
        if not os.path.exists(os.path.join(self.progress.directory, "class.json")):
            return  # not in a class: not even the client's imports
        from labs.classroom.client import record

        record(self.progress.directory, kind, lab.id, step.id if step else None)

    def tell_class_where(self) -> None:
        """Tell the class (just joined) which lab and step this learner is on, if any."""
        if self.progress.current_lab:
            lab = self.lab()
            self._tell_class("step_started", lab, self.current_step(lab))

    def missing_prerequisites(self, lab: Lab) -> list[str]:
        return [r for r in lab.requires if not self.finished(r)]

    def finished(self, lab_id: str) -> bool:
        return bool(self.progress.data["labs"].get(lab_id, {}).get("finished"))

    def workdir(self, lab: Lab) -> str:
        """Where the lab's files go: ~/workshop/NN-name (short: learners type these paths)."""
        base = os.environ.get("WORKSHOP_HOME") or os.path.join(os.path.expanduser("~"), "workshop")
        return os.path.join(base, f"{lab.number:02d}-{lab.id}")

    def context(self, lab: Lab) -> Context:
        sandbox = self.sandbox(lab)
        return Context(self.workdir(lab), lab.directory, self.environment(lab), sandbox)

    def environment(self, lab: Lab) -> dict[str, str]:
        """What the lab's commands run with: this install's PATH first, the lab's own variables."""
        env = command_environment(self.sandbox(lab))
        plain = Context(self.workdir(lab), lab.directory, {}, self.sandbox(lab))
        env.update({name: plain.fill(value) for name, value in lab.env.items()})
        return env

    def observed_pid(self, lab: Lab, step: Step | None = None) -> tuple[str | None, int | None]:
        """(name, host PID) of the container the lab's views show: its first running minibox
        container, those the step at hand names first; (name, None) when one of the step's own
        (those its solution names) is there but none runs; else the process its ``observe_pid`` command
        names (lab 16: a podman one)."""
        import re

        import engine

        def named_in(text: str) -> list[str]:
            return [n for n in lab.containers if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]

        names = lab.containers
        own: list[str] = []  # the containers the step's solution makes or uses: the step's own
        if step is not None:
            own = named_in("\n".join(step.solution))
            named = own + [n for n in named_in(step.body) if n not in own]
            names = named + [n for n in names if n not in named]
        stopped_own = None
        for name in names:
            try:
                record = engine.get(name)
            except engine.MiniboxError:
                record = None
            if record is not None and record.state == "running":
                return name, record.pid
            if record is not None and name in own:
                stopped_own = stopped_own or name
            if stopped_own and name == own[-1]:  # the step's own are there, none runs (stopped,
                return stopped_own, None  # OOM-killed): said, rather than show another step's container
        if lab.observe_pid:
            output = self.run_command(lab, lab.observe_pid, timeout=20).stdout.strip()
            if output.isdigit() and int(output) > 0 and os.path.exists(f"/proc/{output}"):
                return lab.observe_pid.split()[-1], int(output)
        return None, None

    def practice_network_up(self, lab: Lab) -> None:
        """A network lab's commands and checks run in its practice namespaces: make them again if
        they went (`workshop clean`, a reboot) while the lab was open. Quick when they exist."""
        if lab.sandbox:
            from engine.network import sandbox

            sandbox.up(sandbox_name())

    def sandbox(self, lab: Lab) -> str:
        """The practice namespace a network lab's host side runs in ("" for other labs)."""
        return sandbox_name() if lab.sandbox else ""

    def host_side(self, lab: Lab, view: str) -> str | int:
        """What a view's host column looks at: for the network view of a network lab, the practice
        namespace playing the host (a path under /run/netns); else this process (a PID)."""
        sandbox = self.sandbox(lab)
        if sandbox and view == "network":
            from engine.network.netns import NETNS_DIR

            return os.path.join(NETNS_DIR, sandbox)
        return os.getpid()

    def render(self, lab: Lab, text: str, portable: bool = False) -> str:
        """Fill a text's placeholders ({workdir}, ...) for showing it to the learner; ``portable``:
        for a text read on other machines (an exported notebook), a default install's paths and
        names, and no fact of this one."""
        if portable:
            folder = os.path.basename(lab.directory)
            context = Context(f"~/workshop/{lab.number:02d}-{lab.id}", f"<the workshop's folder>/labs/{folder}", {},
                              "minibox-lab" if lab.sandbox else "", portable=True)  # fmt: skip
            return context.fill(text)
        return self.context(lab).fill(text)

    # --- actions -------------------------------------------------------------------------------

    def start(self, ref: str, force: bool = False) -> Lab:
        lab = self.lab(ref)
        missing = self.missing_prerequisites(lab)
        if missing and not force:
            raise PermissionError(f"lab {lab.id!r} builds on {', '.join(missing)}: finish that first (or --force)")
        os.makedirs(self.workdir(lab), exist_ok=True)
        self.practice_network_up(lab)
        with self.progress.change():
            entry = self.progress.lab(lab.id)
            entry.setdefault("started", time.time())
            self.progress.current_lab = lab.id
            step = self.current_step(lab)
            entry["current"] = step.id if step else None
        self._tell_class("lab_started", lab, step)
        if step:
            self.run_setup(lab, step)
        return lab

    def run_setup(self, lab: Lab, step: Step) -> None:
        for command in step.setup:
            try:
                self.run_command(lab, command, check=True)
            except subprocess.CalledProcessError as e:
                said = [line for line in (e.output or "").splitlines() if line.strip()]
                raise LabSetupFailed(
                    f"the set-up of lab {lab.id!r} failed: `{command}` exited {e.returncode}"
                    + (f": {said[-1].strip()}" if said else "")
                    + " (fix that, then open the lab again; `workshop reset` starts it afresh)"
                ) from None

    def check(self, ref: str | None = None, step_id: str | None = None) -> CheckOutcome:
        lab = self.lab(ref)
        step = lab.step(step_id) if step_id else self.current_step(lab)
        if step is None:
            raise LookupError(f"lab {lab.id!r} is finished; `workshop reset {lab.id}` to do it again")
        self.practice_network_up(lab)
        ctx = self.context(lab)
        results = []
        for result in (run_check(ctx, c) for c in step.checks):
            results.append(result)
            if not result.ok:  # the checks after it build on it (its container, its file): their
                break  # failures would only echo this one ("no container X", then "X is not running")
        outcome = CheckOutcome(lab, step, results, None, None)
        if outcome.passed:
            moved_on = False
            with self.progress.change():  # the latest progress: another front end may have gone on
                entry = self.progress.lab(lab.id)
                already_done = step.id in entry["done"]
                if not already_done:
                    entry["done"].append(step.id)
                current = entry.get("current")
                if current == step.id or (step_id is None and current is None):
                    following = lab.steps[lab.index(step.id) + 1 :]
                    outcome.next_step = next((s for s in following if s.id not in entry["done"]), None)
                    entry["current"] = outcome.next_step.id if outcome.next_step else None
                    if outcome.next_step is None:
                        entry["finished"] = time.time()
                    moved_on = True
                elif already_done and current is not None:  # checked first elsewhere, which went on
                    outcome.next_step = next((s for s in lab.steps if s.id == current), None)  # (set up there)
                finished = bool(entry.get("finished"))
            self._tell_class("check_passed", lab, step)
            if moved_on and outcome.next_step:
                self._tell_class("step_started", lab, outcome.next_step)
                self.run_setup(lab, outcome.next_step)
            elif outcome.next_step is None and finished:
                self._tell_class("lab_finished", lab, step)
        else:
            self._tell_class("check_failed", lab, step)
            # Each failed check shows the next hint (the last one again once all were shown) and
            # counts it as seen, so `workshop hint` goes on from the one after, not the same again.
            used = self._count_hint(lab, step)
            if step.hints:  # (not told to the class as a hint used: the failed check was, and the
                outcome.next_hint = step.hints[min(used, len(step.hints) - 1)]  # board counts asked ones)
        return outcome

    def passes(self, ref: str | None, step_id: str) -> bool:
        """Do a step's checks pass now? Only a look: nothing recorded, no hint counted, nothing
        told to the class (a notebook's solution cell asks before it runs anything)."""
        lab = self.lab(ref)
        self.practice_network_up(lab)
        ctx = self.context(lab)
        return all(run_check(ctx, check).ok for check in lab.step(step_id).checks)

    def hint(self, ref: str | None = None) -> tuple[Step, str | None, int]:
        """The next hint of the current step (and count it), or None when all were shown."""
        lab = self.lab(ref)
        step = self.current_step(lab)
        if step is None:
            raise LookupError(f"lab {lab.id!r} is finished; `workshop reset {lab.id}` to do it again")
        used = self._count_hint(lab, step)
        if used >= len(step.hints):
            return step, None, used
        self._tell_class("hint_used", lab, step)
        return step, self.render(lab, step.hints[used]), used + 1

    def _count_hint(self, lab: Lab, step: Step) -> int:
        """Count the step's next hint as seen (none once all were); return how many were before."""
        with self.progress.change():
            hints = self.progress.lab(lab.id)["hints"]
            used = hints.get(step.id, 0)
            if used < len(step.hints):
                hints[step.id] = used + 1
        return used

    def solve(self, ref: str | None, step_id: str) -> list[subprocess.CompletedProcess]:
        """Run a step's solution commands (the caller asks the learner first), up to the first that
        fails: the ones after it build on it (a name the learner's own container already holds,
        say), and their errors would only bury the first."""
        lab = self.lab(ref)
        self.practice_network_up(lab)
        results = []
        for command in lab.step(step_id).solution:
            results.append(self.run_command(lab, command))
            if results[-1].returncode:
                break
        return results

    def clean(self, ref: str | None = None) -> list[str]:
        """Remove what a lab made (its containers, mounts, registry, practice network); keep the
        learner's progress and files. What ``reset`` does first."""
        lab = self.lab(ref)
        done = self._remove_leftovers(lab)
        if lab.sandbox:
            done += _sandbox_down_if_unused(self.labs_using_practice_network(but=lab))
        return done

    def labs_using_practice_network(self, but: Lab) -> list[str]:
        """The other network labs that may still use the practice namespaces: in progress, or
        done with containers still there (not every lab ever opened)."""
        return [other.id for other in self.labs()
                if other.sandbox and other.id != but.id and self.progress.data["labs"].get(other.id)
                and (not self.finished(other.id) or self.still_there(other))]  # fmt: skip

    def clean_all(self) -> list[str]:
        """``workshop clean --all`` (the end of a class): every lab's leftovers, then the practice
        network namespaces, whatever lab is in progress. Progress and files stay."""
        done = []
        for lab in self.labs():
            done += self._remove_leftovers(lab, run_cleanup=os.path.isdir(self.workdir(lab)))
        return done + _sandbox_down_if_unused([])

    def _remove_leftovers(self, lab: Lab, run_cleanup: bool = True) -> list[str]:
        """A lab's containers, then its cleanup commands (mounts, background processes...): not
        for a lab never opened (no working directory: what they undo is made from there)."""
        import engine

        done = []
        for name in lab.containers:
            try:
                engine.remove(name, force=True)
                done.append(f"removed container {name}")
            except engine.MiniboxError:
                pass
        if run_cleanup and lab.cleanup:
            for command in lab.cleanup:
                self.run_command(lab, command)
            done.append(f"ran the clean-up of lab {lab.id} (what it mounted or left running)")
        return done

    def still_there(self, lab: Lab) -> list[str]:
        """The lab's containers that exist now (running or stopped)."""
        import engine

        names = []
        for name in lab.containers:
            try:
                engine.get(name)
            except engine.MiniboxError:
                continue
            names.append(name)
        return names

    def finish_text(self, lab: Lab) -> str:
        """The lab's closing text, plus how to tidy up when its containers are still there."""
        text = self.render(lab, lab.finish).rstrip()
        left = self.still_there(lab)
        if left:
            text += (f"\n\n**Tidy up.** Still here for you to look at: {', '.join(left)}. `workshop clean "
                     f"{lab.id}` removes them and whatever else the lab set up, and keeps your progress.")  # fmt: skip
        return text

    def reset(self, ref: str, remove_workdir: bool = False) -> list[str]:
        """Put a lab back to its start: its containers and mounts go, its progress is cleared."""
        lab = self.lab(ref)
        done = self.clean(lab.id)
        if remove_workdir and os.path.isdir(self.workdir(lab)):
            shutil.rmtree(self.workdir(lab))
            done.append(f"removed {self.workdir(lab)}")
        with self.progress.change():
            self.progress.data["labs"].pop(lab.id, None)
            if self.progress.current_lab == lab.id:
                self.progress.current_lab = None
        return done

    def shell(self, lab: Lab) -> tuple[list[str], dict[str, str], str]:
        """(argv, environment, directory) of an interactive shell that runs what the learner types
        as the lab's own commands run: in its working directory, this install's ``minibox`` first
        on PATH, the lab's variables set and, in a network lab, inside the practice namespace."""
        os.makedirs(self.workdir(lab), exist_ok=True)
        self.practice_network_up(lab)
        env = self.environment(lab)
        env["WORKSHOP_LAB"] = lab.id
        shell = env.get("SHELL") or ""
        if not shell or not os.access(shell, os.X_OK):
            shell = shutil.which("bash") or "/bin/sh"
        argv = [shell]
        if os.path.basename(shell) == "bash":
            # The learner's own ~/.bashrc, then the lab's name in front of the prompt, so a shell
            # inside the practice namespace never passes for an ordinary one.
            rc = os.path.join(self.progress.directory, "shell.bashrc")
            os.makedirs(self.progress.directory, exist_ok=True)
            with open(rc, "w") as f:
                f.write('[ -f ~/.bashrc ] && . ~/.bashrc\nPS1="(lab $WORKSHOP_LAB) $PS1"\n')
            argv += ["--rcfile", rc]
        else:
            env["PS1"] = f"(lab {lab.id}) # "
        return in_sandbox(argv, self.sandbox(lab)), env, self.workdir(lab)

    def run_command(
        self, lab: Lab, command: str, check: bool = False, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """Run one shell command of the lab; its output (stdout and stderr together) is returned.

        Output goes to an in-memory file, not a pipe: a command that leaves a process running in
        the background (``sleep 3600 &``) would hold a pipe open and make us wait for ever.
        """
        os.makedirs(self.workdir(lab), exist_ok=True)
        argv = shell_argv(self.render(lab, command), self.sandbox(lab))
        out = os.memfd_create("lab-command")
        try:
            env = self.environment(lab)
            code = subprocess.run(argv, cwd=self.workdir(lab), env=env, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=out, timeout=timeout).returncode  # fmt: skip
            os.lseek(out, 0, os.SEEK_SET)
            output = os.read(out, 1 << 20).decode(errors="replace")
        finally:
            os.close(out)
        result = subprocess.CompletedProcess(argv, code, output, "")
        if check and code:
            raise subprocess.CalledProcessError(code, argv, output)
        return result


INTERRUPTED = 130  # stream_command's exit code for a command stopped by Ctrl-C / a notebook's interrupt


class LabSetupFailed(RuntimeError):
    """A step's set-up command failed: the learner sees the command and its last line of output."""


def stream_command(
    command: str,
    cwd: str,
    on_line: Callable[[str], None],
    on_start: Callable[[subprocess.Popen], None] | None = None,
    timeout: float = 300.0,
    sandbox: str = "",
    env: dict[str, str] | None = None,
) -> int:
    """Run ``sh -c COMMAND``, calling ``on_line`` for each line of output as it comes; return the
    exit code (-9 when killed at ``timeout``, ``INTERRUPTED`` when a KeyboardInterrupt, a
    notebook's interrupt, stopped it). For front ends that show output live (the TUI, notebooks).

    It returns when the shell exits, not when the output pipe closes: a learner's ``sleep 100 &``
    keeps the pipe open for as long as it runs, and must not keep the front end waiting.
    """
    import codecs
    import select
    import signal

    process = subprocess.Popen(shell_argv(command, sandbox), cwd=cwd, env=env or command_environment(sandbox),
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
    if on_start:
        on_start(process)
    fd = process.stdout.fileno()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pending = ""
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    break
                *lines, pending = (pending + decoder.decode(data)).split("\n")
                for line in lines:
                    on_line(line)
            elif process.poll() is not None:
                break
            elif time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                on_line(f"(stopped after {timeout:g} s)")
                break
        if pending:
            on_line(pending)
        return process.wait()  # (in the try: a shell that closed its output may still run)
    except KeyboardInterrupt:  # a notebook's interrupt (or Ctrl-C): stop the command, not the caller
        if pending:
            on_line(pending)
        on_line("(interrupted: " + stop_process_group(process) + ")")
        return INTERRUPTED
    finally:
        process.stdout.close()


def stop_process_group(process: subprocess.Popen) -> str:
    """Stop a command and everything it started, as a terminal's Ctrl-C would and then harder:
    SIGINT, then SIGTERM, then SIGKILL, each after a second in which the group did not end (its
    shell ending is not enough: `sleep 9 & wait` leaves a sleep that ignores SIGINT). Another
    interrupt meanwhile only hurries it on. Say which signal did it."""
    import signal

    group = process.pid  # (start_new_session: the shell leads a process group of its own)
    said = "it had ended"
    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM"), (signal.SIGKILL, "SIGKILL")):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:  # ended meanwhile (by the signal before this one, if any)
            return said
        said = f"stopped by {name}"
        deadline = time.monotonic() + 1.0
        try:
            while time.monotonic() < deadline:
                process.poll()  # reap the shell (ours to reap)
                if not _live_members(group):
                    return said
                time.sleep(0.02)
        except KeyboardInterrupt:
            continue
    process.wait()
    return said


def _live_members(group: int) -> bool:
    """Is any process of the group alive? (Its dead ones may wait a while for whoever adopted
    them to reap them, and still count for kill(2): /proc's state says Z for those.)"""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != b"Z":
                return True
    return False


def command_environment(sandbox: str = "") -> dict[str, str]:
    """The environment lab commands run in: this install's ``minibox`` comes first on PATH; in a
    network lab, minibox puts its bridges and rules in the sandbox (``MINIBOX_HOST_NETNS``)."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
    if sandbox:
        env["MINIBOX_HOST_NETNS"] = sandbox
    return env


def sandbox_name() -> str:
    """The network labs' practice namespace: ``minibox-lab`` (``WORKSHOP_SANDBOX`` to change)."""
    from engine import state

    return os.environ.get("WORKSHOP_SANDBOX") or f"{state.prefix()}-lab"


def shell_argv(command: str, sandbox: str = "") -> list[str]:
    """``sh -c COMMAND``, in a network lab inside the sandbox's network namespace."""
    return in_sandbox(["sh", "-c", command], sandbox)


def in_sandbox(argv: list[str], sandbox: str) -> list[str]:
    """``argv`` run in the sandbox's network namespace (unchanged without a sandbox).

    ``nsenter --net`` switches the network namespace only. (``ip netns exec`` would also remount
    ``/sys``, hiding the cgroup file systems minibox needs.)
    """
    if not sandbox:
        return argv
    from engine.network.netns import NETNS_DIR

    return ["nsenter", f"--net={os.path.join(NETNS_DIR, sandbox)}", *argv]


def _sandbox_down_if_unused(open_labs: list[str]) -> list[str]:
    """Remove the practice namespaces once no network of minibox lives in them (``open_labs``:
    the other network labs in progress, which may be what still uses them)."""
    from engine.network import sandbox, store
    from engine.state import Paths

    name = sandbox_name()
    if not sandbox.exists(name):
        return []
    kept = [n["name"] for n in store.all_networks(Paths(), name)]
    if kept and open_labs:
        return [f"kept the practice namespace {name}: lab(s) {', '.join(open_labs)} still use it (network(s) "
                f"{', '.join(kept)}); it goes with the last of them (`workshop clean` it, or reset)"]  # fmt: skip
    if kept:
        return [f"kept the practice namespace {name}: network(s) {', '.join(kept)} still live there "
                f"(MINIBOX_HOST_NETNS={name} minibox network rm {' '.join(kept)}, then clean again)"]  # fmt: skip
    sandbox.down(name)
    return [f"removed the practice network namespaces {name} and {sandbox.internet_name(name)}"]
