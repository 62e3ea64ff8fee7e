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


def test_running_a_container_from_the_cli_imports_nothing_heavy():
    # The whole `minibox run --rm busybox true`, not just the import of engine.cli: a module that
    # imports engine.network (10 ms) or hashlib (2 ms) on the way would slow every run down.
    heavy = (
        "typing",
        "dataclasses",
        "shutil",
        "socket",
        "pathlib",
        "hashlib",
        "engine.network",
        "subprocess",
        "engine.oci",
        "engine.rootfs.oci",
        "argparse",  # with re and enum: ~6 ms; engine/cli_args.py parses minibox's arguments
        "re",  # with enum: ~4.5 ms; json (engine/fastjson.py), signal (_signal) and names do without it
        "enum",
        "json",
        "threading",  # ~1 ms; a lock comes from _thread
        "collections",  # ~1 ms; collections.abc only for annotations (TYPE_CHECKING)
        "importlib",  # with warnings ~0.5 ms; engine.__getattr__ uses the built-in __import__
    )
    code = (
        "import sys\nfrom engine.cli import main\n"
        "code = main(['run', '--rm', 'busybox', 'true'])\n"
        f"print(code, ','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert first.stdout.startswith("0")  # this one may make the built-in image (that needs more)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0"


def test_the_notebook_front_end_does_not_load_textual():
    code = (
        "import sys, notebooks.magics, notebooks.generate, labs.runner, labs.checks\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'workshop_tui'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
