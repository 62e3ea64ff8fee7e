"""The UTS lab's first step, with the machine-dependent parts pinned (PIDs, namespace inodes), for
snapshot tests: the observer returns fixed rows, as it would on any machine."""

import atexit
import os
import shutil
import tempfile

from labs.runner import Runner
from workshop_tui.app import WorkshopApp

data = tempfile.mkdtemp(prefix="minibox-snapshot-")
atexit.register(shutil.rmtree, data, True)
os.environ["WORKSHOP_HOME"] = os.path.join(data, "home")
NAMESPACES = ("user", "pid", "uts", "ipc", "net", "cgroup", "mnt", "time")


def fixed_view(name: str, pid: object) -> list[dict]:
    if name == "namespaces":
        return [{"type": t, "inode": 4026531830 + i, "path": f"/proc/1/ns/{t}"} for i, t in enumerate(NAMESPACES)]
    return []


class PinnedApp(WorkshopApp):
    observe = staticmethod(fixed_view)
    host_pid = staticmethod(lambda: 1000)


app = PinnedApp(Runner(data_dir=data), open_lab="uts")

if __name__ == "__main__":
    app.run()
