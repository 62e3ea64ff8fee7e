"""Leaving a finished command-line process quickly: ``_exit(2)`` instead of Python's full shutdown.

At exit CPython tears down every module and object it made, one by one: ~4 ms here for a
``minibox run``, about a tenth of the whole command. A command that has done its work and
flushed its output has nothing left to tear down that the kernel will not free anyway, so it
can leave as a C program does. Not while other threads still run (a normal exit waits for them,
and they may be writing something that must not be cut short), nor under a profiler or a
coverage tool, which write their results at exit.
"""

from __future__ import annotations

import os
import sys


def exit_quickly(code: int) -> None:
    """Flush standard output and error, then end the process with ``code`` (never returns)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # `minibox ps | head`: the reader has all it wanted
        code = code or 141
    except OSError:
        pass
    try:
        sys.stderr.flush()
    except OSError:
        pass
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    if sys.getprofile() or sys.gettrace():  # `python -m cProfile`, coverage: they write at exit
        sys.exit(code)
    os._exit(code)
