"""The engine is a library with no user interface in it: importing it must not pull in any."""

from __future__ import annotations

import subprocess
import sys


def test_importing_engine_loads_no_ui():
    code = (
        "import sys, engine, engine.cli, engine.container, engine.gc\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'workshop_tui', 'IPython'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_run_path_stays_free_of_heavy_imports():
    # `minibox run` must start fast: these modules cost milliseconds each and are not needed there.
    heavy = ("typing", "dataclasses", "shutil", "socket", "pathlib")
    code = f"import sys, engine.cli\nprint(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_notebook_front_end_does_not_load_textual():
    code = (
        "import sys, notebooks.magics, notebooks.generate, labs.runner, labs.checks\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'workshop_tui'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
