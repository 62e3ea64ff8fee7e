"""The pure cgroup v2 tier: the cgroup and namespace tests and the cgroup labs' walks, run again
in a qemu VM booted with only cgroup2 mounted (this machine's own layout is v1 hybrid).

tests/vm/run-in-cgroup2-vm.sh boots it (TCG, ~2 minutes; kernel and initramfs cached in
/var/cache/minibox-vm) and exits with the guest pytest's exit code, so a test failing in the VM
fails here. Skipped, saying why, only when qemu itself cannot run.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def qemu_problem() -> str:
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 is missing (`make test` installs qemu-system-x86)"
    probe = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"qemu-system-x86_64 does not run: {probe.stderr.strip()[:200]}"


@pytest.mark.timeout(1800)  # a VM in software emulation / a fresh Debian root: minutes
def test_engine_and_labs_on_pure_cgroup_v2():
    problem = qemu_problem()
    if problem:
        pytest.skip(problem)
    result = subprocess.run([os.path.join(REPO, "tests", "vm", "run-in-cgroup2-vm.sh")], capture_output=True,
                            text=True, timeout=1200)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "guest: pure cgroup v2 (" in output  # the guest checked its own mounts first
    assert " passed" in output and " failed" not in output
