"""The workshop app on a fresh learner's data directory, for snapshot tests (nothing started yet)."""

import atexit
import os
import shutil
import tempfile

from labs.runner import Runner
from workshop_tui.app import WorkshopApp

data = tempfile.mkdtemp(prefix="minibox-snapshot-")
atexit.register(shutil.rmtree, data, True)
os.environ["WORKSHOP_HOME"] = os.path.join(data, "home")
app = WorkshopApp(Runner(data_dir=data))

if __name__ == "__main__":
    app.run()
