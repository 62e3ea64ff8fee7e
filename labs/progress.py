"""A learner's progress, saved in their data directory so it survives quitting and crashes.

One JSON file (``progress.json`` under platformdirs' user data directory, or
``$WORKSHOP_DATA_DIR``), replaced atomically on every change (write a temporary file, then
``rename(2)``): a crash leaves the previous version, never half of one.
"""

from __future__ import annotations

import json
import os
import threading
import time


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
        try:
            with open(self.path) as f:
                self.data = json.load(f)
        except FileNotFoundError:
            self.data = {}
        except json.JSONDecodeError:  # never throw a learner's progress away: keep the bad file
            os.replace(self.path, f"{self.path}.unreadable-{int(time.time())}")
            self.data = {}
        self.data.setdefault("labs", {})

    def save(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        tmp = f"{self.path}.tmp{os.getpid()}-{threading.get_ident()}"  # a hint and a check may save at once
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=2)
        os.replace(tmp, self.path)

    def lab(self, lab_id: str) -> dict:
        return self.data["labs"].setdefault(lab_id, {"done": [], "hints": {}, "current": None})

    @property
    def current_lab(self) -> str | None:
        return self.data.get("current_lab")

    @current_lab.setter
    def current_lab(self, lab_id: str | None) -> None:
        self.data["current_lab"] = lab_id
