"""``minibox run --trace``: every stage of starting a container, printed as it happens.

"What happens on ``docker run``?" is the workshop's capstone question. The engine calls
``note(stage, text)`` at each step: image resolved, layers stacked, processes forked, cgroup
made, namespaces unshared, root filesystem mounted, ``pivot_root``, ``execve``. The children
(the init, and the intermediate if there is one) cannot print on the user's terminal reliably, so
they send their notes up the report pipe (``process.py``) and the parent prints them, with the
time since the start.
Off unless enabled: a disabled ``note`` costs one attribute check.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # for annotations only: collections.abc costs ~1 ms to import
    from collections.abc import Callable

_writer: Callable[[str], None] | None = None
_start = 0.0


def enable(writer: Callable[[str], None] | None = None) -> None:
    global _writer, _start
    _writer = writer or (lambda line: print(line, file=sys.stderr, flush=True))
    _start = time.monotonic()


def enabled() -> bool:
    return _writer is not None


def note(stage: str, text: str) -> None:
    if _writer is not None:
        _writer(f"[trace {1000 * (time.monotonic() - _start):7.1f} ms] {stage:<11} {text}")
