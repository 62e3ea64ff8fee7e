"""minibox as an OCI runtime (`minibox-runc`): bundles made by `runc spec` itself, the runtime's
life cycle (create waits, start runs, state, kill, delete), fields it does not support refused by
name with nothing left behind, and podman running containers through it."""

from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import PREFIX, wait_for

RUNTIME = [sys.executable, "-m", "engine.oci.cli"]
MINIBOX_RUNC = os.path.join(os.path.dirname(sys.executable), "minibox-runc")


def busybox_rootfs(target: str) -> None:
    from engine import images
    from engine.state import Paths

    layer = images.get(Paths(), "busybox").layers[-1]  # the built-in image is one layer
    shutil.copytree(layer, target, symlinks=True)


@pytest.fixture
def bundle(tmp_path):
    """A bundle as `runc spec` writes it (the reference tool's own defaults), on busybox."""
    directory = tmp_path / "bundle"
    directory.mkdir()
    busybox_rootfs(str(directory / "rootfs"))
    subprocess.run(["runc", "spec", "--bundle", str(directory)], check=True)
    return directory


def configure(bundle, args: list[str], **changes) -> None:
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["root"]["readonly"] = False  # runc spec's default is a read-only root; these tests write to it
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    path.write_text(json.dumps(config))


@pytest.fixture
def runtime_root(tmp_path):
    root = str(tmp_path / "runc-root")
    yield root
    for container_id in os.listdir(root) if os.path.isdir(root) else []:
        if container_id != "lock":
            runc(root, "delete", "--force", container_id)


def runc(root: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """The runtime's command line. Output goes through files, not pipes: a created container's
    init inherits the runtime's stdout and stderr (as with runc), so pipes would stay open."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        result = subprocess.run([*RUNTIME, "--root", root, *args], stdout=out, stderr=err, timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(result.args, result.returncode, out.read(), err.read())


def state(root: str, container_id: str) -> dict:
    result = runc(root, "state", container_id)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def cgroups_version() -> str:
    from engine import cgroups

    return cgroups.driver().version


def my_cgroups() -> list[str]:
    return glob.glob(f"/sys/fs/cgroup/*/{PREFIX}-runc*") + glob.glob(f"/sys/fs/cgroup/{PREFIX}-runc*")


def test_create_waits_start_runs_then_state_and_delete(bundle, runtime_root, tmp_path):
    marker = bundle / "rootfs" / "ran"
    configure(bundle, ["sh", "-c", "echo $(hostname) > /ran; sleep 30"], hostname="oci-box")
    pid_file = tmp_path / "pid"
    result = runc(runtime_root, "create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1")
    assert result.returncode == 0, result.stderr
    created = state(runtime_root, "c1")
    assert created["status"] == "created" and created["pid"] == int(pid_file.read_text())
    assert created["bundle"] == str(bundle) and created["ociVersion"].startswith("1.")
    time.sleep(0.2)
    assert not marker.exists()  # created: the command has not run yet
    assert runc(runtime_root, "start", "c1").returncode == 0
    assert wait_for(marker.exists) and marker.read_text() == "oci-box\n"
    assert state(runtime_root, "c1")["status"] == "running"
    # it runs in new namespaces and in its own cgroup
    pid = created["pid"]
    for ns in ("pid", "mnt", "uts", "ipc", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
    memberships = open(f"/proc/{pid}/cgroup").read().splitlines()
    assert f"/{PREFIX}-runc/c1" in "\n".join(memberships)
    if cgroups_version() == "v1":  # every hierarchy, as runc: not its manager's blkio or cpuset group
        controllers = [line for line in memberships if ":name=" not in line and "::" not in line]
        assert all(line.endswith(f"/{PREFIX}-runc/c1") for line in controllers), memberships
    refused = runc(runtime_root, "delete", "c1")
    assert refused.returncode == 1 and "not stopped: running" in refused.stderr
    assert runc(runtime_root, "start", "c1").returncode == 1  # only a created container starts
    assert runc(runtime_root, "kill", "c1", "KILL").returncode == 0
    assert wait_for(lambda: state(runtime_root, "c1")["status"] == "stopped")
    assert state(runtime_root, "c1")["pid"] == 0
    assert runc(runtime_root, "delete", "c1").returncode == 0
    assert not os.path.exists(os.path.join(runtime_root, "c1")) and my_cgroups() == []
    assert runc(runtime_root, "state", "c1").returncode == 1


def test_the_init_gets_the_specs_capabilities_seccomp_rlimits_and_mounts(bundle, runtime_root):
    out = bundle / "rootfs" / "report"
    script = ("grep -E 'CapBnd|CapEff|NoNewPrivs|Seccomp:' /proc/self/status > /report; "
              "ulimit -n >> /report; "
              "grep -c ' /proc/keys ' /proc/self/mountinfo >> /report; "
              "cat /dev/null && echo null-ok >> /report; echo done >> /report")  # fmt: skip
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}  # fmt: skip
    configure(bundle, ["sh", "-c", script], linux__seccomp=profile)
    assert runc(runtime_root, "create", "--bundle", str(bundle), "c2").returncode == 0
    assert runc(runtime_root, "start", "c2").returncode == 0
    assert wait_for(lambda: out.exists() and "done" in out.read_text())
    report = out.read_text()
    # runc spec's defaults: three capabilities, no_new_privs, 1024 files; /proc/keys masked
    assert "CapBnd:\t0000000020000420" in report and "CapEff:\t0000000020000420" in report
    assert "NoNewPrivs:\t1" in report and "Seccomp:\t2" in report
    assert "\n1024\n1\n" in report and "null-ok" in report
    runc(runtime_root, "delete", "--force", "c2")
    # the seccomp filter is real: mkdir fails with EPERM (errnoRet 1) inside
    configure(bundle, ["sh", "-c", "mkdir /x 2> /mkdir-error; echo $? >> /mkdir-error"], linux__seccomp=profile)
    assert runc(runtime_root, "create", "--bundle", str(bundle), "c3").returncode == 0
    assert runc(runtime_root, "start", "c3").returncode == 0
    error = bundle / "rootfs" / "mkdir-error"
    assert wait_for(lambda: error.exists() and error.read_text().strip().endswith("1"))
    assert "Operation not permitted" in error.read_text() and not (bundle / "rootfs" / "x").exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"linux__intelRdt": {"closID": "x"}}, "linux.intelRdt"),
        ({"linux__resources__hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}, "linux.resources.hugepageLimits"),
        ({"process__apparmorProfile": "docker-default"}, "process.apparmorProfile"),
        ({"linux__cgroupsPath": "system.slice:libpod:x"}, "linux.cgroupsPath"),
    ],
)
def test_an_unsupported_field_is_refused_by_name_and_nothing_is_left(bundle, runtime_root, change, field):
    configure(bundle, ["true"], **change)
    result = runc(runtime_root, "create", "--bundle", str(bundle), "c4")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and f"field {field} is not supported" in result.stderr
    assert not os.path.exists(os.path.join(runtime_root, "c4")) and my_cgroups() == []


def test_bad_input_gets_one_line_errors(bundle, runtime_root, tmp_path):
    configure(bundle, ["true"])
    assert runc(runtime_root, "create", "--bundle", str(bundle), "c5").returncode == 0
    again = runc(runtime_root, "create", "--bundle", str(bundle), "c5")
    assert again.returncode == 1 and "container with id exists: c5" in again.stderr
    for args, says in [
        (("create", "--bundle", str(tmp_path), "c6"), "no config.json"),
        (("create", "--bundle", str(bundle), "bad/id"), "container id"),
        (("kill", "c5", "NOSUCHSIGNAL"), "signal"),
        (("state", "ghost"), "does not exist"),
        (("--systemd-cgroup", "state", "c5"), "--cgroup-manager cgroupfs"),
    ]:
        result = runc(runtime_root, *args)
        assert result.returncode == 1 and says in result.stderr and result.stderr.count("\n") == 1, (args, result)
    assert runc(runtime_root, "delete", "--force", "c5").returncode == 0
    assert runc(runtime_root, "delete", "--force", "c5").returncode == 0  # gone already: fine with --force


def test_a_terminal_goes_to_the_console_socket(bundle, runtime_root, tmp_path):
    configure(bundle, ["sh", "-c", "tty; stty size"], process__terminal=True,
              process__consoleSize={"height": 30, "width": 100})  # fmt: skip
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = True
    (bundle / "config.json").write_text(json.dumps(config))
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        created = subprocess.Popen([*RUNTIME, "--root", runtime_root, "create", "--bundle", str(bundle),
                                    "--console-socket", path, "c7"], stderr=subprocess.PIPE, text=True)  # fmt: skip
        connection, _ = server.accept()
        with connection:
            _, fds, _, _ = socket.recv_fds(connection, 1024, 1)
        assert created.wait(30) == 0, created.stderr.read()
    master = fds[0]
    try:
        assert runc(runtime_root, "start", "c7").returncode == 0
        output = b""
        deadline = time.monotonic() + 10
        while b"100" not in output and time.monotonic() < deadline:
            try:
                output += os.read(master, 1024)
            except OSError:
                break
        assert b"/dev/pts/0" in output and b"30 100" in output
    finally:
        os.close(master)


def test_features_lists_what_is_supported():
    result = subprocess.run([*RUNTIME, "features"], capture_output=True, text=True, check=True)
    features = json.loads(result.stdout)
    assert "pid" in features["linux"]["namespaces"] and features["linux"]["seccomp"]["enabled"] is True
    assert "rbind" in features["mountOptions"] and "createRuntime" in features["hooks"]


# --- podman, with minibox-runc as its runtime --------------------------------------------------

PODMAN_LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]  # this machine's hard limits


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """podman with storage of its own (the machine's podman state is untouched) and busybox loaded."""
    if not shutil.which("podman"):
        pytest.skip("podman comes with make test")
    base = tmp_path_factory.mktemp("podman")
    # The runtime with its state in the test's directory, for every call (podman's clean-up
    # processes too: they do not get --runtime-flag), as lab 16's wrapper does.
    wrapper = str(base / "minibox-runc")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nexec "{MINIBOX_RUNC}" --root "{base}/runtime" "$@"\n')
    os.chmod(wrapper, 0o755)
    archive = str(base / "busybox.tar")
    subprocess.run([sys.executable, "-m", "engine.cli", "save", "-o", archive, "busybox"], check=True)
    command = ["podman", "--root", str(base / "root"), "--runroot", str(base / "runroot"), "--storage-driver",
               "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--tmpdir", str(base / "tmp"),
               "--runtime", wrapper]  # fmt: skip

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout)

    assert run("load", "-i", archive).returncode == 0
    yield run
    run("rm", "--all", "--force", "--time", "0")
    run("rmi", "--all", "--force")
    subprocess.run(["umount", "-R", str(base / "root" / "overlay")], capture_output=True)
    # podman's cgroupfs parent, in every hierarchy (it leaves it behind itself); a group still in
    # use (another podman on this machine) is not empty and stays
    for parent in glob.glob("/sys/fs/cgroup/*/libpod_parent") + glob.glob("/sys/fs/cgroup/libpod_parent"):
        for directory in [*glob.glob(f"{parent}/*/"), parent]:
            try:
                os.rmdir(directory)
            except OSError:
                pass


def test_podman_runs_busybox_through_minibox(podman):
    result = podman("run", "--rm", "--network", "none", *PODMAN_LIMITS, "busybox", "sh", "-c",
                    "echo hello from podman; grep Seccomp: /proc/self/status; exit 3")  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "hello from podman" in result.stdout and "Seccomp:\t2" in result.stdout
    assert podman("ps", "-a", "-q").stdout.strip() == ""  # --rm removed it


def test_podman_detach_ps_exec_memory_stop_rm(podman):
    started = podman("run", "-d", "--name", "oci-web", "--network", "none", "--memory", "64m", *PODMAN_LIMITS,
                     "busybox", "sleep", "1000")  # fmt: skip
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    listed = podman("ps", "--format", "{{.Names}} {{.Status}}").stdout
    assert "oci-web Up" in listed
    limit = glob.glob(f"/sys/fs/cgroup/memory/libpod_parent/libpod-{container_id}/memory.limit_in_bytes") + glob.glob(
        f"/sys/fs/cgroup/libpod_parent/libpod-{container_id}/memory.max"
    )
    assert limit and open(limit[0]).read().strip() == str(64 * 1024 * 1024)
    executed = podman("exec", "oci-web", "sh", "-c", "echo exec-ok; ps -o pid,comm; exit 4")
    assert executed.returncode == 4 and "exec-ok" in executed.stdout and "1 sleep" in executed.stdout
    assert podman("stop", "-t", "1", "oci-web").returncode == 0
    assert "oci-web Exited (137)" in podman("ps", "-a", "--format", "{{.Names}} {{.Status}}").stdout
    assert podman("rm", "oci-web").returncode == 0
    assert podman("ps", "-a", "-q").stdout.strip() == ""


def test_device_rules_are_enforced_by_the_kernel(bundle, runtime_root):
    # runc spec denies every device; the runtime adds the usual ones (null, zero, tty...). A device
    # bound in from the host is then refused, until a rule allows it. On cgroup v1 the devices
    # controller enforces this; on v2 the eBPF program of engine/cgroups/device_filter.py.
    kmsg = {"destination": "/dev/kmsg", "type": "bind", "source": "/dev/kmsg", "options": ["bind"]}
    config = json.loads((bundle / "config.json").read_text())
    report = bundle / "rootfs" / "report"
    # Opening /dev/kmsg for writing writes nothing; its error (or none) is the answer.
    script = ("(true > /dev/kmsg) 2> /dev/null && echo kmsg-open > /report || echo kmsg-refused > /report; "
              "true > /dev/null && echo null-ok >> /report")  # fmt: skip
    for name, extra_rules, expected in (
        ("d1", [], "kmsg-refused"),
        ("d2", [{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}], "kmsg-open"),
    ):
        report.unlink(missing_ok=True)
        configure(bundle, ["sh", "-c", script], mounts=[*config["mounts"], kmsg],
                  linux__resources__devices=[*config["linux"]["resources"]["devices"], *extra_rules])  # fmt: skip
        assert runc(runtime_root, "create", "--bundle", str(bundle), name).returncode == 0
        assert runc(runtime_root, "start", name).returncode == 0
        assert wait_for(lambda: report.exists() and "null-ok" in report.read_text())  # noqa: B023
        assert report.read_text() == f"{expected}\nnull-ok\n"
        runc(runtime_root, "delete", "--force", name)


def _disk_of(path: str) -> str:
    """MAJOR:MINOR of the whole disk the file system of ``path`` is on ("" if not on a disk)."""
    device = os.stat(path).st_dev
    sysfs = f"/sys/dev/block/{os.major(device)}:{os.minor(device)}"
    if os.major(device) == 0 or not os.path.exists(sysfs):
        return ""  # tmpfs, overlay, 9p...: no block device
    if os.path.exists(f"{sysfs}/partition"):  # limits are set on the disk, not on a partition
        sysfs = os.path.realpath(f"{sysfs}/..")
    return open(f"{sysfs}/dev").read().strip()


def test_block_io_weight_and_limits_reach_the_kernel(bundle, runtime_root):
    disk = _disk_of(str(bundle))
    block_io: dict = {"weight": 300}
    if disk:
        major, minor = (int(n) for n in disk.split(":"))
        block_io["throttleWriteBpsDevice"] = [{"major": major, "minor": minor, "rate": 512 * 1024}]
        block_io["throttleReadIOPSDevice"] = [{"major": major, "minor": minor, "rate": 1000}]
    # 1 MiB written around the page cache (O_DIRECT) at 512 KiB/s: about 2 s if the limit holds
    script = ("cat /proc/self/cgroup > /report; dd if=/dev/zero of=/data bs=64k count=16 oflag=direct 2>/dev/null; "
              "echo written >> /report")  # fmt: skip
    configure(bundle, ["sh", "-c", script], linux__resources__blockIO=block_io)
    # Weights need an I/O scheduler that shares by weight (BFQ, or CFQ before 5.0); v1 has no
    # weight file at all without one (as here, with mq-deadline): then a weight is refused by name.
    weights = cgroups_version() == "v2" or any(
        os.path.exists(f"/sys/fs/cgroup/blkio/{f}") for f in ("blkio.weight", "blkio.bfq.weight"))  # fmt: skip
    if not weights:
        refused = runc(runtime_root, "create", "--bundle", str(bundle), "b1")
        assert refused.returncode == 1 and "leave out blockIO weights" in refused.stderr, refused.stderr
        assert my_cgroups() == []
        del block_io["weight"]
        configure(bundle, ["sh", "-c", script], linux__resources__blockIO=block_io)
    assert runc(runtime_root, "create", "--bundle", str(bundle), "b1").returncode == 0
    group = next(line.split(":", 2)[2].strip() for line in open(f"/proc/{state(runtime_root, 'b1')['pid']}/cgroup")
                 if line.split(":")[1] in ("blkio", "") and "b1" in line)  # fmt: skip
    if cgroups_version() == "v1":
        directory = f"/sys/fs/cgroup/blkio{group}"
        weight = next((f for f in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(f"{directory}/{f}")), "")
        if weights:
            assert open(f"{directory}/{weight}").read().split()[-1] == "300"
        if disk:
            assert open(f"{directory}/blkio.throttle.write_bps_device").read().split() == [disk, "524288"]
            assert open(f"{directory}/blkio.throttle.read_iops_device").read().split() == [disk, "1000"]
    else:
        directory = f"/sys/fs/cgroup{group}"
        weight = "io.bfq.weight" if os.path.exists(f"{directory}/io.bfq.weight") else "io.weight"
        assert open(f"{directory}/{weight}").read().split()[:2] == ["default", "300" if "bfq" in weight else "2930"]
        if disk:
            assert f"{disk} rbps=max wbps=524288 riops=1000 wiops=max" in open(f"{directory}/io.max").read()
    started = time.monotonic()
    assert runc(runtime_root, "start", "b1").returncode == 0
    report = bundle / "rootfs" / "report"
    assert wait_for(lambda: report.exists() and "written" in report.read_text(), timeout=30)
    if disk:
        assert time.monotonic() - started > 1.2  # without the limit: a few milliseconds
    runc(runtime_root, "delete", "--force", "b1")


def test_block_io_settings_the_kernel_lost_are_refused_by_name(bundle, runtime_root):
    configure(bundle, ["true"], linux__resources__blockIO={"weight": 300, "leafWeight": 300})
    result = runc(runtime_root, "create", "--bundle", str(bundle), "b2")
    assert result.returncode == 1 and "linux.resources.blockIO.leafWeight is not supported" in result.stderr
    configure(bundle, ["true"], linux__resources__blockIO={"weight": 5000})
    result = runc(runtime_root, "create", "--bundle", str(bundle), "b3")
    assert result.returncode == 1 and "weight from 10 to 1000" in result.stderr
    assert my_cgroups() == []


def _cgroup2_directory_for_a_test() -> str:
    """A new directory in this machine's cgroup v2 tree (hybrid: the one at unified/)."""
    from engine import cgroups

    driver = cgroups.driver()
    root = driver.root if driver.version == "v2" else "/sys/fs/cgroup/unified"
    if not os.path.exists(os.path.join(root, "cgroup.procs")):
        pytest.skip("no cgroup v2 tree on this machine")
    path = os.path.join(root, f"{PREFIX}-devices")
    os.mkdir(path)
    return path


@pytest.mark.parametrize("many", [0, 400], ids=["few rules", "a rule per host device"])
def test_the_device_filter_decides_each_access_as_the_last_matching_rule_says(many):
    from engine.cgroups.device_filter import attach

    group = _cgroup2_directory_for_a_test()
    try:
        # (podman --privileged on a big machine lists every host device: a long program)
        attach(group, [(False, "a"), *[(True, f"b 7:{n} rwm") for n in range(many)], (True, "c 1:3 rwm"),
                       (True, "c 1:7 r"), (True, "c 1:7 m"), (False, "c 1:3 w"), (True, "c *:* m")])  # fmt: skip
        probe = (
            "import os, sys\n"
            f"open({os.path.join(group, 'cgroup.procs')!r}, 'w').write('0')\n"
            "for path, flags in (('/dev/null', os.O_RDONLY), ('/dev/null', os.O_WRONLY), ('/dev/zero', os.O_RDONLY),\n"
            "                    ('/dev/full', os.O_RDONLY), ('/dev/full', os.O_WRONLY)):\n"
            "    try:\n"
            "        os.close(os.open(path, flags)); print(path, flags, 'ok')\n"
            "    except OSError as e:\n"
            "        print(path, flags, e.strerror)\n"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        assert out.splitlines() == [
            "/dev/null 0 ok",  # allowed rwm...
            "/dev/null 1 Operation not permitted",  # ...but a later rule takes writing back
            "/dev/zero 0 Operation not permitted",  # no rule but "deny a"
            "/dev/full 0 ok",
            "/dev/full 1 Operation not permitted",  # allowed r and m only
        ]
    finally:
        os.rmdir(group)  # detaches the program


def test_device_rules_the_filter_cannot_read_are_refused_by_name():
    from engine.cgroups.device_filter import compile_rules
    from engine.errors import MiniboxError

    assert len(compile_rules([(False, "a"), (True, "c 136:* rwm")])) % 8 == 0
    # --privileged: everything allowed at the end, whatever came before: one "allow" answer
    assert len(compile_rules([(False, "a"), (True, "c 1:3 r"), (True, "a"), (True, "b 8:0 rwm")])) == 2 * 8
    for line in ("c 1 rwm", "x 1:3 rwm", "c 1:3 rwx", "c one:3 r"):
        with pytest.raises(MiniboxError, match="device rule"):
            compile_rules([(True, line)])


def test_hooks_run_at_their_moments_with_the_state_on_stdin(bundle, runtime_root, tmp_path):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    # Each hook notes its name, its mount namespace and the state it got on stdin.
    hook.write_text(f'#!/bin/sh\necho "$1 $(readlink /proc/self/ns/mnt) $(cat)" >> {log}\n')
    hook.chmod(0o755)
    container_hook = bundle / "rootfs" / "bin" / "in-hook"  # startContainer runs inside: a path in the root
    container_hook.write_text("#!/bin/sh\necho startContainer >> /hook-ran\n")
    container_hook.chmod(0o755)
    hooks = {name: [{"path": str(hook), "args": ["hook.sh", name]}]
             for name in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}  # fmt: skip
    hooks["startContainer"] = [{"path": "/bin/in-hook"}]
    configure(bundle, ["sleep", "30"], hooks=hooks, annotations={"org.example.key": "value"})
    assert runc(runtime_root, "create", "--bundle", str(bundle), "h1").returncode == 0
    assert runc(runtime_root, "start", "h1").returncode == 0
    assert wait_for(lambda: (bundle / "rootfs" / "hook-ran").exists())
    assert runc(runtime_root, "delete", "--force", "h1").returncode == 0
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["prestart", "createRuntime", "createContainer", "poststart",
                                                   "poststop"]  # fmt: skip
    host_mnt = os.readlink("/proc/self/ns/mnt")
    namespaces = {line.split()[0]: line.split()[1] for line in lines}
    assert namespaces["createRuntime"] == host_mnt and namespaces["createContainer"] != host_mnt
    state_seen = json.loads(lines[1].split(" ", 2)[2])
    assert state_seen["id"] == "h1" and state_seen["pid"] > 0 and state_seen["bundle"] == str(bundle)
    assert state_seen["annotations"] == {"org.example.key": "value"}


def test_a_failing_prestart_hook_stops_create_and_leaves_nothing(bundle, runtime_root):
    configure(bundle, ["true"], hooks={"prestart": [{"path": "/bin/false"}]})
    result = runc(runtime_root, "create", "--bundle", str(bundle), "h2")
    assert result.returncode == 1 and "prestart hook /bin/false failed" in result.stderr
    assert not os.path.exists(os.path.join(runtime_root, "h2")) and my_cgroups() == []
    assert not any("h2" in open(f"/proc/{p}/cmdline").read() for p in os.listdir("/proc") if p.isdigit()
                   and os.path.exists(f"/proc/{p}/cmdline"))  # fmt: skip


def test_properties_outside_the_spec_are_ignored_and_extra_resources_are_set(bundle, runtime_root):
    resources = {"memory": {"limit": 64 << 20, "reservation": 32 << 20}, "cpu": {"shares": 512}}
    if cgroups_version() == "v1":
        resources["memory"]["kernelTCP"] = 16 << 20  # v1 only (v2 refuses it by name)
    configure(bundle, ["sleep", "30"], org_example_extension={"anything": 1}, linux__resources=resources)
    result = runc(runtime_root, "create", "--bundle", str(bundle), "r1")
    assert result.returncode == 0, result.stderr
    from engine import cgroups

    driver = cgroups.driver()
    group = f"{PREFIX}-runc/r1"
    if driver.version == "v1":
        memory, cpu = driver.directories(group)["memory"], driver.directories(group)["cpu"]
        assert open(f"{memory}/memory.soft_limit_in_bytes").read().strip() == str(32 << 20)
        assert open(f"{cpu}/cpu.shares").read().strip() == "512"
        assert open(f"{memory}/memory.kmem.tcp.limit_in_bytes").read().strip() == str(16 << 20)
    else:
        assert open(f"/sys/fs/cgroup/{group}/memory.low").read().strip() == str(32 << 20)
    assert runc(runtime_root, "delete", "--force", "r1").returncode == 0


def test_a_user_namespace_and_another_user_can_still_be_started(runtime_root):
    # The init switches to the mapped user before it waits on the start fifo: the runtime hands
    # the fifo down already open, and its mode lets another user write (found by runtime-tools).
    # The bundle must be reachable by the mapped IDs, as with runc: not under pytest's 0700 dir.
    import tempfile

    bundle = pathlib.Path(tempfile.mkdtemp(prefix="minibox-oci-userns-"))
    try:
        bundle.chmod(0o755)
        busybox_rootfs(str(bundle / "rootfs"))
        (bundle / "rootfs").chmod(0o777)
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        out = bundle / "rootfs" / "ids"
        configure(bundle, ["sh", "-c", "id > /ids; cat /proc/self/uid_map >> /ids"],
                  linux__uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                  linux__gidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
                  process__user={"uid": 1000, "gid": 1000})  # fmt: skip
        config = json.loads((bundle / "config.json").read_text())
        config["linux"]["namespaces"].append({"type": "user"})
        (bundle / "config.json").write_text(json.dumps(config))
        result = runc(runtime_root, "create", "--bundle", str(bundle), "u1")
        assert result.returncode == 0, result.stderr
        assert runc(runtime_root, "start", "u1").returncode == 0
        assert wait_for(lambda: out.exists() and "100000" in out.read_text())
        assert out.read_text().startswith("uid=1000 gid=1000")
    finally:
        runc(runtime_root, "delete", "--force", "u1")
        shutil.rmtree(bundle)


def test_an_image_cannot_move_proc_away_from_the_masks_nor_set_machine_wide_sysctls(bundle, runtime_root):
    rootfs = bundle / "rootfs"
    (rootfs / "proc").rmdir()
    (rootfs / "xproc").mkdir()
    (rootfs / "proc").symlink_to("/xproc")  # /proc would land at /xproc, where no mask is
    configure(bundle, ["true"])
    result = runc(runtime_root, "create", "--bundle", str(bundle), "s1")
    assert result.returncode == 1 and "must be mounted on an ordinary directory" in result.stderr
    (rootfs / "proc").unlink()
    (rootfs / "proc").mkdir()
    configure(bundle, ["true"], linux__sysctl={"kernel.printk_ratelimit": "5"})  # the whole machine's
    result = runc(runtime_root, "create", "--bundle", str(bundle), "s2")
    assert result.returncode == 1 and "kernel.printk_ratelimit" in result.stderr
    assert my_cgroups() == [] and not os.path.exists(os.path.join(runtime_root, "s2"))


def test_exec_without_a_process_file_gets_the_containers_own_limits(bundle, runtime_root):
    configure(bundle, ["sleep", "30"])
    assert runc(runtime_root, "create", "--bundle", str(bundle), "e1").returncode == 0
    assert runc(runtime_root, "start", "e1").returncode == 0
    result = runc(runtime_root, "exec", "e1", "sh", "-c", "grep -E 'CapEff|NoNewPrivs' /proc/self/status")
    assert result.returncode == 0, result.stderr
    assert "CapEff:\t0000000020000420" in result.stdout and "NoNewPrivs:\t1" in result.stdout  # runc spec's
    missing = runc(runtime_root, "exec", "e1", "no-such-command")
    assert missing.returncode == 127 and missing.stderr.count("\n") == 1


def test_podman_pause_read_only_privileged(podman):
    started = podman("run", "-d", "--name", "oci-frozen", "--network", "none", *PODMAN_LIMITS, "busybox",
                     "sleep", "1000")  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert podman("pause", "oci-frozen").returncode == 0
    assert podman("inspect", "-f", "{{.State.Status}}", "oci-frozen").stdout.strip() == "paused"
    assert podman("unpause", "oci-frozen").returncode == 0
    assert podman("rm", "-f", "-t", "0", "oci-frozen").returncode == 0
    read_only = podman("run", "--rm", "--network", "none", *PODMAN_LIMITS, "--read-only", "busybox", "sh", "-c",
                       "touch /tmp/ok && touch /etc/no")  # fmt: skip
    assert read_only.returncode == 1 and "Read-only file system" in read_only.stderr  # /tmp is a tmpfs
    privileged = podman("run", "--rm", "--network", "none", *PODMAN_LIMITS, "--privileged", "busybox", "true")
    assert privileged.returncode == 0, privileged.stderr
