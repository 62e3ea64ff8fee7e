"""A room with no internet: `make offline-bundle` makes one archive, and a fresh Debian root with
no network at all (a network namespace with only a loopback device, down) installs the workshop
from it, twice, then runs a container (tests/vagrant/install-from-bundle.sh). Bundles made for
another system are refused before anything is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE_SH = os.path.join(REPO, "vagrant", "bundle.sh")
TOP = "container-internals-workshop-bundle"

pytestmark = pytest.mark.skipif(not shutil.which("debootstrap"), reason="debootstrap comes with `make test`")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> str:
    """`make offline-bundle` for real (downloads from the Debian mirror and PyPI: ~270 MB)."""
    out = str(tmp_path_factory.mktemp("bundle") / "room.tar")
    result = subprocess.run(["make", "-s", "offline-bundle", f"BUNDLE_OUT={out}"], cwd=REPO,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert f"bundle: wrote {out}" in result.stdout
    return out


@pytest.fixture(scope="module")
def unpacked(bundle: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("unpacked")
    # tar(1), not tarfile: extractall's filter= is missing from Debian 12's Python 3.11.2
    subprocess.run(["tar", "-xf", bundle, "-C", str(directory)], check=True)
    return str(directory / TOP)


def test_the_bundle_holds_packages_wheels_source_notebooks_and_the_image(unpacked: str):
    debs = os.listdir(os.path.join(unpacked, "debs"))
    for package in ("make", "busybox-static", "nftables", "python3.11-venv", "docker-registry", "skopeo"):
        assert any(d.startswith(f"{package}_") for d in debs), package
    assert "Packages" in debs
    wheels = os.listdir(os.path.join(unpacked, "wheels"))
    for project in ("textual", "pyroute2", "aiohttp", "nbclient", "hatchling", "editables", "pip"):
        assert any(w.lower().startswith(f"{project}-") for w in wheels), project
    assert os.path.exists(os.path.join(unpacked, "source", "engine", "cli.py"))
    assert not os.path.exists(os.path.join(unpacked, "source", ".venv"))
    assert len([n for n in os.listdir(os.path.join(unpacked, "notebooks")) if n.endswith(".ipynb")]) >= 15
    env = dict(line.split("=", 1) for line in open(os.path.join(unpacked, "bundle.env")).read().split())
    assert env["BUNDLE_ARCH"] and re.fullmatch(r"3\.\d+\.\d+", env["BUNDLE_PYTHON"])


def busybox_config_digest(unpacked: str) -> str:
    with tarfile.open(os.path.join(unpacked, "images", "busybox.tar")) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return "sha256:" + manifest[0]["Config"].rsplit("/", 1)[-1]


@pytest.mark.timeout(1800)
def test_a_fresh_machine_with_no_network_installs_from_the_bundle_and_runs_a_container(bundle: str, unpacked: str):
    script = os.path.join(REPO, "tests", "vagrant", "install-from-bundle.sh")
    result = subprocess.run([script, bundle], capture_output=True, text=True, timeout=1800)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    network = output.split("== the network here ==")[1].split("== first install ==")[0]
    assert re.findall(r"^\s*(\w+):", network, re.M) == ["lo"]  # nothing to reach the internet with
    first = output.split("== first install ==")[1].split("== second install ==")[0]
    assert "installing from the bundle: make" in first and "python3-venv" in first
    second = output.split("== second install ==")[1].split("== using it ==")[0]
    assert "installing" not in second and "Nothing to be done" in second
    used = output.split("== using it ==")[1]
    assert "container-ok from" in used and "imports-ok" in used and "15-nat-and-ports.ipynb" in used
    # Every machine of the room has the very same busybox image: the bundle's.
    assert busybox_config_digest(unpacked) in used


def run_bundle_sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BUNDLE_SH, *args], capture_output=True, text=True, timeout=60)


def test_a_bundle_for_another_system_is_refused_before_installing_anything(unpacked: str, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(unpacked, other, ignore=shutil.ignore_patterns("debs", "wheels", "source", "notebooks"))
    env = (other / "bundle.env").read_text()
    (other / "bundle.env").write_text(re.sub(r"BUNDLE_OS=.*", "BUNDLE_OS=ubuntu-24.04", env))
    # a package this machine does not have: apt would install it if the check let it through
    result = run_bundle_sh("apt", str(other), "minibox-no-such-package")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is for ubuntu-24.04/" in lines[0] and "make offline-bundle" in lines[0]
    assert "installing" not in result.stdout


def test_wheels_for_another_python_are_refused(unpacked: str, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(unpacked, other, ignore=shutil.ignore_patterns("debs", "wheels", "source", "notebooks"))
    env = (other / "bundle.env").read_text()
    (other / "bundle.env").write_text(re.sub(r"BUNDLE_PYTHON=.*", "BUNDLE_PYTHON=3.99.0", env))
    venv = sys.prefix  # the virtualenv running these tests
    before = sorted(os.listdir(os.path.join(venv, "lib")))
    result = run_bundle_sh("pip", str(other), venv, REPO)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "wheels are for Python 3.99.0" in result.stderr
    assert sorted(os.listdir(os.path.join(venv, "lib"))) == before


def test_a_missing_bundle_gets_one_line_naming_the_fix(tmp_path):
    result = run_bundle_sh("apt", str(tmp_path / "nowhere.tar"), "make")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "no bundle at" in result.stderr and "offline-bundle" in result.stderr


@pytest.mark.timeout(1800)
def test_a_room_vm_first_boot_downloads_the_bundle_from_the_class_service_and_joins(bundle: str, tmp_path):
    from labs.classroom import room
    from labs.classroom.server import kept

    class_file = str(tmp_path / "class.sqlite")
    code, token = kept(class_file, "code", "c0ffee"), kept(class_file, "instructor_token", "t" * 32)
    (tmp_path / "roster.csv").write_text("name\nGrace Hopper\n")
    made = room.make_room(str(tmp_path / "roster.csv"), str(tmp_path / "room"), {
        "bundle_url": "http://127.0.0.1:8100/bundle.tar", "class_url": "http://127.0.0.1:8100", "code": code,
    })  # fmt: skip
    user_data = tmp_path / "room" / "user-data" / f"{made['attendees'][0]['slug']}.yaml"
    script = os.path.join(REPO, "tests", "vagrant", "room-first-boot.sh")
    result = subprocess.run([script, str(user_data), bundle, class_file, "8100"], capture_output=True, text=True,
                            timeout=1800, env={**os.environ, "PYTHON": sys.executable})  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    boot = output.split("== first boot ==")[1]
    assert "installing from the bundle: make" in boot and "provision: done" in boot
    assert "joined as Grace Hopper" in boot and "workshop-provision: done" in boot
    assert "container-ok" in output.split("== the attendee logs in ==")[1]
    # The class service recorded the attendee (read from its file: the service is gone now).
    import sqlite3

    names = [row[0] for row in sqlite3.connect(class_file).execute("SELECT name FROM attendees")]
    assert names == ["Grace Hopper"] and token
