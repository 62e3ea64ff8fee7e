"""The OCI conformance tier: opencontainers runtime-tools' validation tests (built from Debian's
source package with Debian's Go: tests/oci/runtime-tools.sh), against runc and minibox-runc in
the same run. minibox's counts may only go up: the floors below are the last published ones
(bench/README.md), a little under, since a few of the suite's tests are timing-dependent."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "tests", "oci", "runtime-tools.sh")
MINIBOX_RUNC = os.path.join(os.path.dirname(sys.executable), "minibox-runc")
CACHE = "/var/cache/minibox-runtime-tools"  # the source, the Go build cache and the test binaries
# Published 2026-11-23: minibox-runc 38 of 58 test programs, 3021 assertions passed (runc: 31, 3279).
FLOOR_PROGRAMS, FLOOR_ASSERTIONS = 36, 2950


def run_suite(runtime: str, root: str = "") -> dict:
    env = {**os.environ, "RUNTIME_ROOT": root} if root else None
    result = subprocess.run([SCRIPT, runtime, CACHE], capture_output=True, text=True, timeout=1800, env=env)
    if result.returncode == 3:
        pytest.skip(f"runtime-tools could not be built here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr[-2000:]
    print(result.stdout)
    programs = re.search(r"^TESTS passed=(\d+) failed=(\d+) error=(\d+) of (\d+)$", result.stdout, re.M)
    total = re.search(r"^TOTAL pass=(\d+) fail=(\d+) error=(\d+) skip=(\d+) tests=(\d+)$", result.stdout, re.M)
    assert programs and total, result.stdout[-2000:]
    return {"programs": int(programs[1]), "of": int(programs[4]), "pass": int(total[1]), "fail": int(total[2]),
            "lines": result.stdout}  # fmt: skip


@pytest.mark.skipif(not shutil.which("runc"), reason="runc comes with make test")
@pytest.mark.timeout(3600)
def test_runtime_tools_validation_minibox_runc_beside_runc(tmp_path):
    runc = run_suite("runc")
    minibox = run_suite(MINIBOX_RUNC, root=str(tmp_path / "minibox-runc"))
    print(f"runc: {runc['programs']}/{runc['of']} programs, {runc['pass']} assertions passed, {runc['fail']} failed")
    print(f"minibox-runc: {minibox['programs']}/{minibox['of']} programs, {minibox['pass']} passed, "
          f"{minibox['fail']} failed")  # fmt: skip
    assert runc["pass"] > 2000, "the suite itself does not work here: runc should pass thousands of assertions"
    assert minibox["programs"] >= FLOOR_PROGRAMS and minibox["pass"] >= FLOOR_ASSERTIONS, minibox["lines"]
