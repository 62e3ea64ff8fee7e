"""The class protocol: progress events and their limits. Nothing here does I/O.

An attendee sends only *progress*: which lab and step, a check passed or failed, a hint used. Never
commands, output or files. Every event carries a sequence number that only grows, so a replayed
or duplicated event is refused rather than counted twice.
"""

from __future__ import annotations

import re

KINDS = ("lab_started", "step_started", "check_passed", "check_failed", "hint_used", "lab_finished")
MAX_EVENTS_PER_REQUEST = 100
MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE = 280
NAME = re.compile(r"[\w .'-]{1,40}")
IDENT = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class Refused(ValueError):
    """An event or request that is not stored; the message says why."""


def clean_name(name: str) -> str:
    """An attendee's display name: letters, digits, spaces and . ' - (1 to 40), trimmed."""
    name = " ".join(name.split())
    if not NAME.fullmatch(name):
        raise Refused("a name is 1 to 40 letters, digits, spaces or . ' - _")
    return name


def check_event(event: object, last_seq: int) -> dict:
    """A valid event (a new dict of the known fields), or Refused."""
    if not isinstance(event, dict):
        raise Refused("an event is a JSON object")
    kind, lab, step, seq, at = (event.get(k) for k in ("kind", "lab", "step", "seq", "time"))
    if kind not in KINDS:
        raise Refused(f"unknown event kind {str(kind)[:40]!r}")
    if not isinstance(lab, str) or not IDENT.fullmatch(lab):
        raise Refused("lab: a lab id")
    if step is not None and (not isinstance(step, str) or not IDENT.fullmatch(step)):
        raise Refused("step: a step id")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq <= last_seq:
        raise Refused(f"seq {seq!r} is not after {last_seq}: a replayed or reordered event")
    if not isinstance(at, (int, float)) or isinstance(at, bool):
        raise Refused("time: seconds since the epoch")
    return {"kind": kind, "lab": lab, "step": step, "seq": seq, "time": float(at)}


def where_on_board(lab: str | None, step: str | None) -> str:
    """``uts/rename-inside``; ``uts (done)`` for a finished lab opened again; ``(not started)``."""
    if not lab:
        return "(not started)"
    return f"{lab}/{step}" if step else f"{lab} (done)"
