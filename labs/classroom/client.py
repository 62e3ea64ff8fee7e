"""An attendee's side: joining a class, and a queue of progress events that survives outages.

``workshop join URL CODE NAME`` asks the class service for an attendee ID and token and keeps
them in the workshop's data directory (``class.json``). From then on the runner ``record``s
progress events: each is appended to ``class-queue.jsonl`` with the next sequence number first,
then the queue is sent (in a background thread, 2 s at most). If the service is away the events
wait in the file and go with the next one: nothing is lost, nothing blocks the learner.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from labs.classroom.protocol import MAX_EVENTS_PER_REQUEST, clean_name


def _paths(data_dir: str) -> tuple[str, str]:
    return os.path.join(data_dir, "class.json"), os.path.join(data_dir, "class-queue.jsonl")


def membership(data_dir: str) -> dict | None:
    try:
        with open(_paths(data_dir)[0]) as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def _post(url: str, body: dict, timeout: float) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def service_url(url: str) -> str:
    """The class service's address as typed: ``10.0.0.5:8100`` means ``http://10.0.0.5:8100``."""
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def why_refused(error: BaseException) -> str:
    """What a failed request to the class service means, for one line of an error."""
    if getattr(error, "code", None) in (401, 403):
        return "the instructor token is wrong (`workshop class serve` printed it)"
    return str(getattr(error, "reason", error))


def join(data_dir: str, url: str, code: str, name: str) -> dict:
    """Join a class: returns the membership (attendee ID, token, name) and keeps it.

    Once: joining again while in a class would leave the first row on the board for good (the
    service cannot tell it was the same learner). After a new class file (the service no longer
    knows this workshop: ``unknown``) joining again is the way back."""
    url = service_url(url)
    member = membership(data_dir)
    if member is not None and not member.get("unknown"):
        raise ValueError(f"this workshop is already in the class at {member['url']} as {member['name']!r}: "
                         "`workshop leave` first, to join again (under another name, or another class)")  # fmt: skip
    try:
        answer = _post(f"{url}/api/join", {"code": code, "name": clean_name(name)}, timeout=10)
    except urllib.error.HTTPError as e:
        raise ConnectionError(f"the class service refused: {json.load(e).get('error', e.reason)}") from None
    except (urllib.error.URLError, OSError) as e:
        raise ConnectionError(f"cannot reach the class service at {url}: {getattr(e, 'reason', e)}") from None
    member = {"url": url, "attendee": answer["attendee"], "token": answer["token"], "name": answer["name"],
              "next_seq": 1}  # fmt: skip
    os.makedirs(data_dir, exist_ok=True)
    with _Locked(data_dir):
        # What waited for an earlier membership (a class file made anew, say) goes to this one,
        # numbered from 1 as the service expects of a new attendee.
        queue = [{**event, "seq": n} for n, event in enumerate(pending(data_dir), 1)]
        _save_queue(data_dir, queue)
        member["next_seq"] = len(queue) + 1
        _write(_paths(data_dir)[0], member)
    return member


def leave(data_dir: str, timeout: float = 2.0) -> bool:
    """Send what is queued, tell the service (the board then drops this attendee), forget the
    class. False when this workshop was in no class."""
    member = membership(data_dir)
    if member is None:
        return False
    flush(data_dir, timeout)
    try:
        _post(f"{member['url']}/api/leave", {"attendee": member["attendee"], "token": member["token"]}, timeout)
    except (urllib.error.URLError, OSError):
        pass  # the service is away: the board keeps the row, marked stuck in time
    for path in _paths(data_dir):
        if os.path.exists(path):
            os.unlink(path)
    return True


def _write(path: str, data: dict) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.rename(tmp, path)


class _Locked:
    """An flock on the queue, so two workshop processes never give two events one number."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, "class.lock")

    def __enter__(self) -> _Locked:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def record(data_dir: str, kind: str, lab: str, step: str | None, send: bool = True) -> None:
    """Queue one progress event (if this workshop joined a class), then try to send the queue."""
    if membership(data_dir) is None:
        return
    with _Locked(data_dir):
        member = membership(data_dir)
        event = {"kind": kind, "lab": lab, "step": step, "seq": member["next_seq"], "time": time.time()}
        with open(_paths(data_dir)[1], "a") as f:
            f.write(json.dumps(event) + "\n")
        member["next_seq"] += 1
        _write(_paths(data_dir)[0], member)
    if send:
        sender = threading.Thread(target=flush, args=(data_dir,), kwargs={"timeout": 2.0}, daemon=True)
        sender.start()
        _senders.append(sender)


_senders: list[threading.Thread] = []


def finish_sending(timeout: float = 2.5) -> None:
    """Wait (at most ``timeout`` s) for the events this process queued to be sent. A command line
    that exits at once would otherwise kill its sender mid-way: the TUI's live long enough."""
    deadline = time.monotonic() + timeout
    while _senders:
        _senders.pop().join(max(0.0, deadline - time.monotonic()))


def pending(data_dir: str) -> list[dict]:
    try:
        with open(_paths(data_dir)[1]) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def flush(data_dir: str, timeout: float = 2.0) -> int:
    """Send what is queued; return how many events the service took (0 if it is away)."""
    member = membership(data_dir)
    if member is None:
        return 0
    sent = 0
    with _Locked(data_dir):
        queue = pending(data_dir)
        while queue:
            batch = queue[:MAX_EVENTS_PER_REQUEST]
            body = {"attendee": member["attendee"], "token": member["token"], "events": batch}
            try:
                _post(f"{member['url']}/api/events", body, timeout)
            except urllib.error.HTTPError as e:
                if e.code == 400:  # refused for good (a malformed event): never send it again
                    queue = queue[len(batch) :]
                    continue
                if e.code == 401:  # the service does not know this attendee: a new class file?
                    member["unknown"] = True
                    _write(_paths(data_dir)[0], member)
                break
            except (urllib.error.URLError, OSError):
                break  # the service is away: keep the queue for next time
            sent += len(batch)
            queue = queue[len(batch) :]
        _save_queue(data_dir, queue)
    return sent


def _save_queue(data_dir: str, queue: list[dict]) -> None:
    """The queue file written whole or not at all (the caller holds the lock)."""
    path = _paths(data_dir)[1]
    with open(f"{path}.tmp", "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in queue)
    os.rename(f"{path}.tmp", path)


def beyond_pace(news: dict, lab: object, index: int) -> bool:
    """Is step ``index`` of ``lab`` (a labs.model.Lab) past the instructor's pace ("LAB/STEP";
    another lab's pace, or none, holds nothing back)?"""
    paced_lab, _, paced_step = (news.get("pace") or "").partition("/")
    if paced_lab != lab.id or not paced_step:
        return False
    try:
        return index > lab.index(paced_step)
    except ValueError:  # a step the lab no longer has
        return False


def not_open_yet(news: dict, lab: object, step: object) -> str:
    """Why a learner may not do ``step`` yet ("" if they may): the instructor paced the class
    before it. The TUI's `n`, the CLI's check/solve/hint and the notebooks all stop there."""
    if not beyond_pace(news, lab, lab.index(step.id)):
        return ""
    return (f"the class is paced up to {news['pace']}: step {lab.index(step.id) + 1} ({step.title}) "
            "opens when your instructor says so")


def trouble(data_dir: str) -> str:
    """What a learner should hear about their class, or "" (all well, or in no class)."""
    member = membership(data_dir)
    if member is None or not member.get("unknown"):
        return ""
    return (f"the class service at {member['url']} no longer knows you (a new class?): "
            f"`workshop join URL CODE NAME` again; your progress waits to be sent")  # fmt: skip


def news(data_dir: str, timeout: float = 2.0) -> dict:
    """The instructor's pace and broadcast message ({} when not in a class or the service is away)."""
    member = membership(data_dir)
    if member is None:
        return {}
    query = urllib.parse.urlencode({"attendee": member["attendee"], "token": member["token"]})
    try:
        with urllib.request.urlopen(f"{member['url']}/api/news?{query}", timeout=timeout) as answer:
            return json.load(answer)
    except (urllib.error.URLError, OSError, ValueError):
        return {}
