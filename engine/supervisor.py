"""The shim that watches a detached container (``run -d``, ``start``), like containerd-shim or conmon.

It runs in its own session (``setsid``), away from the terminal that started it. It points the
container's stdout and stderr at ``container.log`` (so ``minibox logs`` works, even after the
container is gone), or copies its pseudo-terminal's output there with ``-t``. It keeps the
container's stdin open with ``-i``. It waits for the init's exit code, records it, removes the
cgroup and, with ``--rm``, the container. One shim per container; it exits with the container.
"""

from __future__ import annotations

import os
import signal

from engine import process, state, syscalls
from engine.state import Lock, Record

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: collections.abc costs ~1 ms to import
    from collections.abc import Callable


def _take_over(record: Record) -> bool:
    """Become the container's supervisor, under the state lock, if the start that forked us still
    holds its claim (``minibox start``: a start killed meanwhile may have been followed by another)."""
    from engine.container import _set_supervisor

    with Lock(record.paths):
        fresh = state.load(record.paths, record.id)
        if fresh is None or fresh.data.get("starting") != record.data.get("starting"):
            return False
        record.data = fresh.data
        _set_supervisor(record)
        record.save()
    return True


def supervise(record: Record, ready_fd: int, if_start_fails: Callable[[Record], None]) -> None:
    """Body of the shim process. Writes "ok" or "error ..." to ``ready_fd``; never returns.

    ``if_start_fails``: what becomes of the container if it cannot be started (``run -d``
    removes it; ``start`` leaves a container ``minibox create`` made waiting for another start).
    """
    from engine.container import finalize, start

    os.setsid()
    syscalls.set_process_name("minibox-shim")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # only the container's exit ends the shim
    spec = record.data["spec"]
    log = os.open(record.dir("container.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
    if spec.get("interactive") and not spec.get("tty"):
        stdin, _writer_kept_open = os.pipe2(os.O_CLOEXEC)  # a pipe nobody writes to: stdin stays open
    else:
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    # The shim's own 0/1/2 must not keep the caller's terminal or pipe open (`$(minibox run -d)`).
    for fd in (0, 1, 2):
        os.dup2(stdin if fd == 0 else log, fd)
    if not _take_over(record):  # another `minibox start` has it now: leave the container to that one
        from engine.errors import InvalidState

        error = InvalidState(record.name, "started by another `minibox start`", "start it", "see `minibox ps -a`")
        os.write(ready_fd, b"error " + process._describe(error).encode())
        os._exit(1)
    try:
        pid, master = start(record, (stdin, log, log), network_in_child=True)
    except BaseException as e:  # noqa: BLE001 -- any failure must reach the waiting `minibox run -d`
        os.write(ready_fd, b"error " + process._describe(e).encode())
        if_start_fails(record)
        os._exit(1)
    os.write(ready_fd, b"ok")
    os.close(ready_fd)
    code = None
    try:
        if master is not None:
            from engine.console import proxy

            proxy(master, -1, log)
        code = process.wait_exit_code(pid)
    finally:
        if code is None:  # the log could not be written (disk full?): stop rather than abandon it
            from engine.container import kill_and_wait

            code = kill_and_wait(pid)
        finalize(record, code)
        os._exit(0)
