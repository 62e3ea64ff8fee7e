"""Checks of a learner's end state: what the kernel and the engine say now, not what was typed.

A step's checks are tables in ``lab.toml``, e.g.::

    checks = [
      { kind = "container_running", container = "uts-box" },
      { kind = "exec", container = "uts-box", command = "hostname", expect = "^learner$" },
    ]

Every kind below takes its parameters as keyword arguments and returns ``Result(ok, message)``;
the message says what was found, so a learner whose check fails knows where to look. Any check
may also have ``says``: what it wants, in the learner's words (``says = "the container's clock
is ten days ahead of the host's"``); the message then starts with it, the found detail after.
Strings may hold placeholders, filled in by ``Context.fill``: ``{workdir}`` (the lab's working
directory), ``{labdir}`` (the lab's folder), ``{hostname}`` (the host's), ``{pid:NAME}`` (the
host PID of container NAME's init), ``{sandbox}`` (a network lab's practice namespace).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import engine
from engine import namespaces, state
from engine.errors import MiniboxError
from engine.state import Record


@dataclass
class Result:
    ok: bool
    message: str


@dataclass
class Context:
    workdir: str
    labdir: str
    env: dict[str, str]
    sandbox: str = ""  # network labs: the namespace that plays the host (host commands run there)
    portable: bool = False  # for text read on other machines (an exported notebook): no local facts

    def fill(self, text: str, pattern: bool = False) -> str:
        """Placeholders filled in; with ``pattern``, values are escaped for use in a regex."""
        quote = re.escape if pattern else str
        text = text.replace("{workdir}", quote(self.workdir)).replace("{labdir}", quote(self.labdir))
        if self.portable:  # what is true on any machine with a default install, or said so
            text = text.replace("{hostname}", "(this machine's hostname)").replace("{prefix}", "minibox")
            return text.replace("{sandbox}", self.sandbox).replace(
                "{cgroup_version}", "v1 or v2 (`stat -fc %T /sys/fs/cgroup` prints cgroup2fs for v2)"
            )
        text = text.replace("{hostname}", quote(socket.gethostname())).replace("{sandbox}", quote(self.sandbox))
        text = text.replace("{prefix}", quote(state.prefix()))  # minibox's name for its cgroups, links, netns
        if "{cgroup_version}" in text:
            from engine import cgroups

            text = text.replace("{cgroup_version}", cgroups.driver().version)
        text = re.sub(r"\{pid:([\w.-]+)\}", lambda m: str(_pid_of(m.group(1)) or "NOT-RUNNING"), text)
        return re.sub(r"\{cgroup_file:([\w.-]+):([\w.]+)\}", lambda m: _cgroup_file(m.group(1), m.group(2)), text)


def _pid_of(name: str) -> int | None:
    try:
        record = engine.get(name)
    except MiniboxError:
        return None
    return record.pid if record.state == state.RUNNING else None


# Logical cgroup file names -> (v1 controller, v1 file, v2 file): labs say {cgroup_file:box:cpu.quota}
# and the learner sees the path under the names this machine's cgroup version uses.
CGROUP_FILES = {
    "memory.limit": ("memory", "memory.limit_in_bytes", "memory.max"),
    "memory.usage": ("memory", "memory.usage_in_bytes", "memory.current"),
    "memory.oom": ("memory", "memory.oom_control", "memory.events"),
    "cpu.quota": ("cpu", "cpu.cfs_quota_us", "cpu.max"),
    "cpu.period": ("cpu", "cpu.cfs_period_us", "cpu.max"),
    "cpu.stat": ("cpu", "cpu.stat", "cpu.stat"),
    "pids.max": ("pids", "pids.max", "pids.max"),
    "pids.current": ("pids", "pids.current", "pids.current"),
}


def _cgroup_file(name: str, logical: str) -> str:
    """The host path of a container's cgroup file, as a shell word resolved when it runs.

    Rendered as ``/sys/fs/cgroup/memory/minibox/$(minibox inspect -f Id NAME)/memory.limit_in_bytes``
    (v1) or ``/sys/fs/cgroup/minibox/$(...)/memory.max`` (v2): correct before the container
    exists, and it shows the learner how the tree is laid out.
    """
    from engine import cgroups

    if logical not in CGROUP_FILES:
        return f"NO-SUCH-CGROUP-FILE-{logical}"
    controller, v1_name, v2_name = CGROUP_FILES[logical]
    driver = cgroups.driver()
    if driver.version == "v2":
        base, file_name = cgroups.CGROUP_ROOT, v2_name
    else:
        base, file_name = driver.mounts[controller], v1_name
    return f"{base}/{state.prefix()}/$(minibox inspect -f Id {name})/{file_name}"


def _record(name: str) -> Record | None:
    try:
        return engine.get(name)
    except MiniboxError:
        return None


# --- the check kinds ---------------------------------------------------------------------------


def container_running(ctx: Context, container: str) -> Result:
    record = _record(container)
    if record is None:
        return Result(False, f"there is no container named {container!r} (see `minibox ps -a`)")
    if record.state != state.RUNNING:
        return Result(False, f"container {container!r} is {record.state}, not running")
    return Result(True, f"container {container!r} is running")


def container_absent(ctx: Context, container: str) -> Result:
    record = _record(container)
    if record is not None:
        return Result(False, f"container {container!r} still exists ({record.state}); remove it with `minibox rm`")
    return Result(True, f"container {container!r} is gone")


def container_exited(ctx: Context, container: str, code: int | None = None, oom: bool | None = None) -> Result:
    record = _record(container)
    if record is None:
        return Result(False, f"there is no container named {container!r}")
    if record.state != state.STOPPED:
        return Result(False, f"container {container!r} is still {record.state}")
    exit_code, oom_killed = record.data.get("exit_code"), bool(record.data.get("oom_killed"))
    if code is not None and exit_code != code:
        return Result(False, f"container {container!r} exited with {exit_code}, not {code}")
    if oom is not None and oom_killed != oom:
        return Result(False, f"container {container!r} was {'' if oom_killed else 'not '}killed by the OOM killer")
    return Result(True, f"container {container!r} exited with {exit_code}")


def exec(ctx: Context, container: str, command: str, expect: str = "", exit: int | None = 0) -> Result:  # noqa: A001
    """Run ``sh -c COMMAND`` inside the running container; match its output against ``expect``.

    Through the ``minibox exec`` command, in a process of its own: a front end calls checks from
    worker threads, and forking a threaded process to enter namespaces is asking for deadlocks.
    """
    command = ctx.fill(command)
    if _record(container) is None or _record(container).state != state.RUNNING:
        return Result(False, f"container {container!r} is not running (see `minibox ps -a`)")
    argv = [sys.executable, "-m", "engine.cli", "exec", container, "sh", "-c", command]
    return _run_and_compare(ctx, argv, f"in {container}: {command}", expect, exit)


def host(ctx: Context, command: str, expect: str = "", exit: int | None = 0) -> Result:  # noqa: A002
    """Run ``sh -c COMMAND`` on the host; match its output against ``expect``."""
    from labs.runner import shell_argv

    command = ctx.fill(command)
    return _run_and_compare(ctx, shell_argv(command, ctx.sandbox), command, expect, exit)


def _run_and_compare(ctx: Context, argv: list[str], what: str, expect: str, exit_code: int | None) -> Result:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=ctx.env, timeout=30,
                                cwd=ctx.workdir if os.path.isdir(ctx.workdir) else None)  # fmt: skip
    except subprocess.TimeoutExpired:
        return Result(False, f"`{what}` did not finish within 30 s")
    output = (result.stdout + result.stderr).strip()
    return _compare(what, output, result.returncode, ctx.fill(expect, pattern=True), exit_code, ctx.fill(expect))


def _compare(what: str, output: str, code: int, expect: str, exit_code: int | None, said: str) -> Result:
    """``expect`` is the regular expression (placeholders filled and escaped), ``said`` the same
    as the learner reads it (filled, not escaped)."""
    shown = _one_line(output)
    if exit_code is not None and code != exit_code:
        return Result(False, f"`{what}` exited with {code}, expected {exit_code}: {shown or '(no output)'}")
    found = re.search(expect, output, re.M) if expect else None
    if expect and not found:
        return Result(False, f"`{what}` printed {shown or '(nothing)'}, expected a match for /{said}/")
    if found:  # only the line that matched: the rest is noise once it passed
        start = output.rfind("\n", 0, found.start()) + 1
        end = output.find("\n", found.end())
        shown = _one_line(output[start : end if end >= 0 else len(output)])
    if exit_code not in (0, None):  # a command that is meant to fail (e.g. `test -e` of a deleted file)
        return Result(True, f"`{what}` exited with {code}, as it should" + (f": {shown}" if shown else ""))
    return Result(True, f"`{what}` printed {shown}" if shown else f"`{what}` succeeded")


def _one_line(output: str, limit: int = 200) -> str:
    """Output as one readable line: its lines joined by ' ⏎ ', tabs as spaces, cut at ``limit``."""
    text = " ⏎ ".join(line.strip().replace("\t", " ") for line in output.strip().splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + "…"


def namespace(ctx: Context, container: str, type: str, shared: bool) -> Result:  # noqa: A002
    """Is the container's namespace of ``type`` the host's own (shared) or its own?"""
    pid = _pid_of(container)
    if pid is None:
        return Result(False, f"container {container!r} is not running")
    theirs, ours = namespaces.inode(pid, type), namespaces.inode("self", type)
    is_shared = theirs == ours
    word = "shares the host's" if is_shared else "has its own"
    return Result(is_shared == shared, f"container {container!r} {word} {type} namespace ({type}:[{theirs}])")


def process(ctx: Context, match: str, type: str = "", shared: bool | None = None, present: bool = True) -> Result:  # noqa: A002
    """A host process whose command line matches ``match`` (and, optionally, its namespace).

    A process started in the background a moment ago may still be on its way (fork, then exec):
    look again for up to a second before saying it is not there.
    """
    import time

    deadline = time.monotonic() + 1.0
    while True:
        result = _find_process(ctx, match, type, shared, present)
        if result.ok or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def _find_process(ctx: Context, match: str, type: str, shared: bool | None, present: bool) -> Result:  # noqa: A002
    pattern = re.compile(ctx.fill(match))
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if not pattern.search(cmdline):
            continue
        if not present:
            return Result(False, f"process {entry} ({cmdline}) is still running")
        if type and shared is not None:
            is_shared = namespaces.inode(entry, type) == namespaces.inode("self", type)
            if is_shared != shared:
                continue
        where = f" in {'the host' if shared else 'its own'} {type} namespace" if type and shared is not None else ""
        return Result(True, f"process {entry} ({cmdline}) found{where}")
    if not present:
        return Result(True, f"no process matches /{match}/")
    where = f" in {'the host' if shared else 'its own'} {type} namespace" if type else ""
    return Result(False, f"no process matching /{match}/{where} is running")


def stat(ctx: Context, container: str, name: str, at_least: int | None = None, equals: int | None = None) -> Result:
    """A live cgroup statistic of a running container (see ``minibox inspect``, Cgroup.Stats)."""
    try:
        value = engine.inspect(container)["Cgroup"]["Stats"].get(name)
    except MiniboxError as e:
        return Result(False, e.what)
    if value is None:
        return Result(False, f"container {container!r} has no {name} (is it running?)")
    if at_least is not None and value < at_least:
        return Result(False, f"{name} of {container!r} is {value}, expected at least {at_least}")
    if equals is not None and value != equals:
        return Result(False, f"{name} of {container!r} is {value}, expected {equals}")
    return Result(True, f"{name} of {container!r} is {value}")


def path(ctx: Context, path: str, exists: bool = True, type: str = "", contains: str = "") -> Result:  # noqa: A002
    """A file, directory or mount point on the host (paths may use {workdir})."""
    target = ctx.fill(path)
    if not os.path.lexists(target):
        return Result(not exists, f"{target} does not exist")
    if not exists:
        return Result(False, f"{target} still exists")
    if type == "dir" and not os.path.isdir(target):
        return Result(False, f"{target} is not a directory")
    if type == "file" and not os.path.isfile(target):
        return Result(False, f"{target} is not a regular file")
    if type == "mount" and not os.path.ismount(target):
        return Result(False, f"nothing is mounted on {target}")
    if contains:
        with open(target, errors="replace") as f:
            text = f.read()
        if not re.search(ctx.fill(contains, pattern=True), text, re.M):
            return Result(False, f"{target} holds {_one_line(text, 120) or '(nothing)'}, "
                                 f"expected a match for /{ctx.fill(contains)}/")  # fmt: skip
        return Result(True, f"{target} holds a match for /{ctx.fill(contains)}/")
    what = {"dir": "a directory", "file": "a file", "mount": "a mount point"}.get(type, "there")
    return Result(True, f"{target} is {what}")


KINDS: dict[str, Callable[..., Result]] = {
    "container_running": container_running,
    "container_absent": container_absent,
    "container_exited": container_exited,
    "exec": exec,
    "host": host,
    "namespace": namespace,
    "process": process,
    "stat": stat,
    "path": path,
}


def run_check(ctx: Context, check: dict) -> Result:
    says = check.get("says", "")
    result = _run_check(ctx, {k: v for k, v in check.items() if k not in ("kind", "says")}, check["kind"])
    if not says:
        return result
    return Result(True, says) if result.ok else Result(False, f"{says}. Found: {result.message}")


def _run_check(ctx: Context, params: dict, kind: str) -> Result:
    for name in re.findall(r"\{pid:([\w.-]+)\}", " ".join(str(v) for v in params.values())):
        if _pid_of(name) is None:  # say so, rather than compare against a placeholder's stand-in
            return Result(False, f"container {name!r} is not running (see `minibox ps -a`)")
    try:
        return KINDS[kind](ctx, **params)
    except MiniboxError as e:
        return Result(False, e.one_line())
