"""A learner's progress, saved in their data directory so it survives quitting and crashes.

One JSON file (``progress.json`` under platformdirs' user data directory, or
``$WORKSHOP_DATA_DIR``), replaced atomically on every change (write a temporary file, then
``rename(2)``): a crash leaves the previous version, never half of one.

Several front ends may have it open at once: the TUI, ``workshop check`` in another terminal, a
notebook. So every change is a transaction (``with progress.change():``): under a lock
(``flock(2)`` on ``progress.lock``) the file is read again into a working copy, the copy is
changed, and saved if it differs; only then do this process's readers see it. One front end never
writes its older copy over what another saved meanwhile, and a change that fails leaves nothing
behind, on disk or in memory. Reading notices a newer file too (each save makes a new one: its
inode and times change), so a screen can follow what the other front ends did (``version``).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


def data_dir() -> str:
    configured = os.environ.get("WORKSHOP_DATA_DIR")
    if configured:
        return configured
    import platformdirs

    return platformdirs.user_data_dir("container-internals-workshop", appauthor=False)


class Progress:
    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory or data_dir()
        self.path = os.path.join(self.directory, "progress.json")
        self._data: dict = {"labs": {}}  # the last saved (or read) progress: what readers see
        self._seen: tuple[int, ...] | None = None  # the file it came from (see _identity)
        self.version = 0  # +1 each time _data is replaced: a screen compares it with what it showed
        self._lock = threading.RLock()  # the TUI checks in a worker thread while it draws
        self._changing = threading.local()  # this thread's working copy, inside change()
        with self._lock:
            self._data, self._seen = self._read(), self._identity()

    @property
    def data(self) -> dict:
        """The progress: inside ``change()`` the working copy, else the latest saved one."""
        working = getattr(self._changing, "data", None)
        if working is not None:
            return working
        self.reload()
        return self._data

    def reload(self) -> bool:
        """Read the file again if another front end saved it since; True if it had."""
        if not self._lock.acquire(blocking=False):  # another thread of ours is changing it: the
            return False  # UI thread must never wait for that; what it saves shows when it is done
        try:
            seen = self._identity()
            if seen == self._seen:
                return False
            self._data, self._seen = self._read(), seen
            self.version += 1
            return True
        finally:
            self._lock.release()

    @contextmanager
    def change(self) -> Iterator[dict]:
        """Change the progress: the latest on disk, read under the lock, is what is changed, and
        saved if it changed. If the block raises, nothing is saved and nothing is changed. A change
        inside a change (same thread) is part of the outer one."""
        if getattr(self._changing, "data", None) is not None:
            yield self._changing.data
            return
        os.makedirs(self.directory, exist_ok=True)
        with self._lock, open(os.path.join(self.directory, "progress.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            working = self._read(set_aside_if_bad=True)
            before = json.dumps(working, sort_keys=True)
            self._changing.data = working
            try:
                yield working
            finally:
                self._changing.data = None
            if json.dumps(working, sort_keys=True) != before:
                self._save(working)
            self._data, self._seen = working, self._identity()
            self.version += 1

    def lab(self, lab_id: str) -> dict:
        """A lab's entry; inside ``change()`` made if missing (to be changed), else only read."""
        labs = self.data["labs"]
        if getattr(self._changing, "data", None) is not None:
            return labs.setdefault(lab_id, {"done": [], "hints": {}, "current": None})
        return labs.get(lab_id) or {"done": [], "hints": {}, "current": None}

    @property
    def current_lab(self) -> str | None:
        return self.data.get("current_lab")

    @current_lab.setter
    def current_lab(self, lab_id: str | None) -> None:
        working = getattr(self._changing, "data", None)
        if working is None:
            raise RuntimeError("progress is changed inside `with progress.change():` only")
        working["current_lab"] = lab_id

    def _identity(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _read(self, set_aside_if_bad: bool = False) -> dict:
        """The file's progress; a missing one is empty. A bad one (torn, not JSON, not the right
        shape) reads as empty too; under the lock (``set_aside_if_bad``) it is renamed to
        ``progress.json.unreadable-TIME``, never thrown away, before it is written anew."""
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return {"labs": {}}
        except (ValueError, IsADirectoryError):  # torn, not JSON (ValueError: bad UTF-8 too)
            data = None
        if isinstance(data, dict) and isinstance(data.setdefault("labs", {}), dict):
            return data
        if set_aside_if_bad:  # under the lock: no other front end is writing it now
            try:
                os.replace(self.path, f"{self.path}.unreadable-{int(time.time())}")
            except FileNotFoundError:
                pass
        return {"labs": {}}

    def _save(self, data: dict) -> None:
        tmp = f"{self.path}.tmp{os.getpid()}-{threading.get_ident()}"
        try:
            with open(tmp, "w") as f:
                json.dump(data, f, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
