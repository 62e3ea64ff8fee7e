"""The learners' VM path, tested for real where this machine allows it (it has no nested KVM):
the Vagrantfile validated and each provider's settings evaluated, every shell script through
shellcheck, and the provisioning script run twice on a fresh Debian root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVIDERS = ("virtualbox", "vmware_desktop", "parallels", "libvirt")


def vagrant(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "VAGRANT_CHECKPOINT_DISABLE": "1", **env}
    return subprocess.run(["vagrant", *args], cwd=REPO, capture_output=True, text=True, env=full_env, timeout=120)


def provider_settings(provider: str, **env: str) -> subprocess.CompletedProcess:
    """What the Vagrantfile's block for ``provider`` sets (tests/vagrant/providers.rb)."""
    return subprocess.run(["ruby", "tests/vagrant/providers.rb", "Vagrantfile", provider], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **env})  # fmt: skip


def test_vagrantfile_validates():
    # libvirt's plugin is packaged in Debian: its block is validated by Vagrant itself.
    result = vagrant("validate", VAGRANT_DEFAULT_PROVIDER="libvirt")
    assert result.returncode == 0 and "validated successfully" in result.stdout, result.stdout + result.stderr
    # VirtualBox is not installed here: the rest of the configuration is validated without it.
    result = vagrant("validate", "--ignore-provider", VAGRANT_DEFAULT_PROVIDER="virtualbox")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_gets_a_box_and_the_resources(provider, arch):
    result = provider_settings(provider, WORKSHOP_VM_ARCH=arch, WORKSHOP_VM_CPUS="3", WORKSHOP_VM_MEMORY="3072")
    if (provider, arch) == ("libvirt", "arm64"):
        assert result.returncode != 0
        assert "no box for the libvirt provider on arm64" in result.stderr and "WORKSHOP_VM_BOX" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)
    assert settings["override.vm.box"] in ("bento/ubuntu-24.04", "cloud-image/ubuntu-24.04")
    resources = {str(v) for k, v in settings.items() if k.startswith("provider.")}
    assert {"3", "3072"} <= resources, settings


def test_a_box_of_ones_own_choice():
    result = provider_settings("libvirt", WORKSHOP_VM_ARCH="arm64", WORKSHOP_VM_BOX="my/box")
    assert result.returncode == 0 and json.loads(result.stdout)["override.vm.box"] == "my/box"


def test_forwarded_ports_listen_on_the_laptops_loopback_only():
    with open(os.path.join(REPO, "Vagrantfile")) as f:
        text = f.read()
    forwards = [line for line in text.splitlines() if "forwarded_port" in line]
    assert len(forwards) == 2 and text.count('host_ip: "127.0.0.1"') == 2


def shell_scripts() -> list[str]:
    found = []
    for directory, dirnames, filenames in os.walk(REPO):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "node_modules", "__pycache__")]
        for name in filenames:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                first = f.readline()
            if name.endswith(".sh") or first.startswith((b"#!/bin/sh", b"#!/usr/bin/env bash", b"#!/bin/bash")):
                found.append(path)
    return sorted(found)


def test_every_shell_script_passes_shellcheck():
    scripts = shell_scripts()
    assert any(s.endswith("vagrant/provision.sh") for s in scripts) and any(s.endswith(".ci/run") for s in scripts)
    result = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout


@pytest.mark.skipif(not shutil.which("debootstrap"), reason="debootstrap comes with `make test`")
@pytest.mark.timeout(1800)  # a VM in software emulation / a fresh Debian root: minutes
def test_provisioning_a_fresh_debian_root_twice_then_running_a_container():
    result = subprocess.run([os.path.join(REPO, "tests", "vagrant", "provision-fresh-root.sh")],
                            capture_output=True, text=True, timeout=1800)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "== second provisioning ==" in output and "container-ok" in output  # and gc left no cgroup
    second = output.split("== second provisioning ==")[1].split("== a container")[0]
    assert "installing:" not in second and "provision: done" in second
