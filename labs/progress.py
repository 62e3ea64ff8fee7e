"""A learner's progress, saved in their data directory so it survives quitting and crashes.

One JSON file (``progress.json`` under platformdirs' user data directory, or
``$WORKSHOP_DATA_DIR``), replaced atomically on every change (write a temporary file, then
``rename(2)``): a crash leaves the previous version, never half of one.

Several front ends may have it open at once: the TUI, ``workshop check`` in another terminal, a
notebook. So every change is a transaction (``with progress.change():``): under a lock
(``flock(2)`` on ``progress.lock``), the file is read again, changed and written back, and one
front end never writes its older copy over what another saved meanwhile. Reading notices a
newer file too (each save makes a new one: its inode and times change), so a screen that shows
the progress can follow what the other front ends did (``reload``).
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
        self._data: dict = {"labs": {}}
        self._seen: tuple[int, ...] | None = None  # the file as last read (see _identity)
        self._in_change = False
        self.version = 0  # counts the reads: a screen compares it with the one it last showed
        self._lock = threading.RLock()  # the TUI checks in a worker thread while it draws
        self._load()

    @property
    def data(self) -> dict:
        """The progress, read again first if another front end has saved since."""
        self.reload()
        return self._data

    def reload(self) -> bool:
        """Read the file again if it changed since we last did; True if it had."""
        with self._lock:
            if self._in_change or self._identity() == self._seen:
                return False
            self._load()
            return True

    @contextmanager
    def change(self) -> Iterator[dict]:
        """Change the progress: the latest on disk, read under the lock, is what is changed and
        saved (if it changed). Nothing is saved if the block raises."""
        os.makedirs(self.directory, exist_ok=True)
        with self._lock, open(os.path.join(self.directory, "progress.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            self._load()
            before = json.dumps(self._data, sort_keys=True)
            self._in_change = True
            try:
                yield self._data
                if json.dumps(self._data, sort_keys=True) != before:
                    self._save()
            finally:
                self._in_change = False

    def lab(self, lab_id: str) -> dict:
        return self.data["labs"].setdefault(lab_id, {"done": [], "hints": {}, "current": None})

    @property
    def current_lab(self) -> str | None:
        return self.data.get("current_lab")

    @current_lab.setter
    def current_lab(self, lab_id: str | None) -> None:
        if not self._in_change:
            raise RuntimeError("progress is changed inside `with progress.change():` only")
        self._data["current_lab"] = lab_id

    def _identity(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _load(self) -> None:
        try:
            with open(self.path) as f:
                seen = os.fstat(f.fileno())
                data = json.load(f)
            self._seen = (seen.st_ino, seen.st_size, seen.st_mtime_ns, seen.st_ctime_ns)
        except FileNotFoundError:
            data, self._seen = {}, None
        except (json.JSONDecodeError, UnicodeDecodeError):  # never throw progress away: keep the bad file
            os.replace(self.path, f"{self.path}.unreadable-{int(time.time())}")
            data, self._seen = {}, None
        if not isinstance(data, dict):
            data = {}
        data.setdefault("labs", {})
        self._data = data
        self.version += 1

    def _save(self) -> None:
        tmp = f"{self.path}.tmp{os.getpid()}-{threading.get_ident()}"
        with open(tmp, "w") as f:
            json.dump(self._data, f, indent=2)
        os.replace(tmp, self.path)
        self._seen = self._identity()
