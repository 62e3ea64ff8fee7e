"""Bad input and impossible requests: one clear line, a non-zero exit, and nothing half made."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import leftovers, minibox

from engine.spec import parse_cpus, parse_memory


def containers_on_disk() -> set[str]:
    from engine import Paths

    paths = Paths()  # a container's layer and record on disk, its init layer and mount point under run/
    return {f"{d}/{e}" for d in (paths.containers, paths.runtime) if os.path.isdir(d) for e in os.listdir(d)}


def fails_cleanly(*args: str, expect: str, code: int | None = None) -> str:
    """Run minibox; it must fail with one line containing ``expect`` and leave nothing behind."""
    before, kernel_objects_before = containers_on_disk(), set(leftovers())
    result = minibox(*args)
    assert result.returncode != 0
    if code is not None:
        assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # one line: no traceback
    assert lines[0].startswith("minibox: ") and expect in lines[0]
    assert containers_on_disk() == before
    assert set(leftovers()) == kernel_objects_before
    return lines[0]


def test_unknown_image():
    line = fails_cleanly("run", "--rm", "no-such-image", "true", expect="image 'no-such-image' not found")
    assert "minibox images" in line  # says what to do


def test_create_of_an_unknown_image_and_start_of_an_unknown_container():
    fails_cleanly("create", "no-such-image", expect="image 'no-such-image' not found")
    fails_cleanly("start", "no-such-container", expect="no such container")


def test_command_not_found_in_the_image():
    fails_cleanly("run", "busybox", "no-such-command", expect="command 'no-such-command' not found", code=127)


def test_command_not_executable():
    fails_cleanly("run", "busybox", "/etc/passwd", expect="cannot execute '/etc/passwd'", code=126)


def test_name_already_in_use(name):
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    line = fails_cleanly("run", "--name", name, "busybox", "true", expect="already used")
    assert "rm -f" in line


@pytest.mark.parametrize(
    "flag,value,expect",
    [
        ("-m", "lots", "bad value 'lots' for -m/--memory"),
        ("-m", "1k", "at least 4m"),
        ("--cpus", "half", "bad value 'half' for --cpus"),
        ("--cpus", "0", "between 0.01"),
        ("--pids-limit", "-3", "at least 1"),
        ("-w", "relative/dir", "absolute path"),
        ("-e", "=NOKEY", "KEY=VALUE"),  # (-e KEY alone passes this shell's KEY on, as docker)
        ("-u", "nosuchuser", "/etc/passwd"),
        ("--uidmap", "0:1", "INSIDE:OUTSIDE:COUNT"),
    ],
)
def test_bad_values_are_named(flag, value, expect):
    fails_cleanly("run", flag, value, "busybox", "true", expect=expect)


def test_more_cpus_than_the_machine_has():
    fails_cleanly("run", "--cpus", "1000", "busybox", "true", expect=f"this machine has {os.cpu_count()}")


def test_exec_of_a_command_the_container_lacks_names_the_container(name):
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    result = minibox("exec", name, "no-such-command")
    assert result.returncode == 127
    assert result.stderr.startswith(f"minibox: command 'no-such-command' not found in container '{name}'")
    minibox("rm", "-f", name, check=True)


def test_exec_into_a_stopped_container(name):
    minibox("run", "--name", name, "busybox", "true", check=True)
    line = fails_cleanly("exec", name, "ls", expect="is stopped, cannot exec")
    assert "minibox logs" in line


def test_it_with_input_from_a_pipe_is_refused_as_docker_does(name):
    """-it with no terminal to join: it used to wait for ever for the container's shell."""
    before, kernel_objects_before = containers_on_disk(), set(leftovers())
    for args in (("run", "-it", "--rm", "busybox", "sh"), ("exec", "-it", name, "sh")):
        if args[0] == "exec":
            minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
            before = containers_on_disk()
        result = minibox(*args, input="echo hi\n", timeout=20)
        assert result.returncode != 0 and result.stderr.startswith("minibox: the input device is not a TTY")
        assert len(result.stderr.strip().splitlines()) == 1 and "hi" not in result.stdout
        assert containers_on_disk() == before
    minibox("rm", "-f", name, check=True)
    assert set(leftovers()) == kernel_objects_before
    piped = minibox("run", "-i", "--rm", "busybox", "sh", input="echo hi\n", timeout=20)  # -i alone: fine
    assert piped.returncode == 0 and piped.stdout == "hi\n"


def test_version_is_the_packages():
    import tomllib

    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml"), "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    assert minibox("--version", check=True).stdout == f"minibox {version}\n"


def test_an_unknown_option_shows_the_usage_of_its_own_command():
    for command in (("ps",), ("images",), ("logs", "some-box")):
        result = minibox(*command, "--bogus")
        assert result.returncode == 2 and "unknown option --bogus" in result.stderr
        assert result.stderr.splitlines()[0].split()[:3] == ["usage:", "minibox", command[0]]


def test_exec_into_a_missing_container():
    fails_cleanly("exec", "nobody-has-this-name", "ls", expect="no such container")


def test_not_root():
    # Drop root for real (setresuid) in a child that has already imported the engine.
    code = (
        "import os, engine\n"
        "engine.run, engine.ContainerSpec, engine.MiniboxError  # load them (lazily imported) while root\n"
        "os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)\n"
        "try:\n"
        "    engine.run(engine.ContainerSpec('busybox', ['true']))\n"
        "except engine.MiniboxError as e:\n"
        "    print(e.one_line())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "needs root" in out and "sudo" in out


def test_a_namespace_switched_off_in_the_kernel_is_named():
    # This machine's root may not change the host's sysctl, but it is per user namespace: switch
    # user namespaces off inside a throwaway one and let the engine's own unshare(2) meet that.
    code = (
        "from engine import syscalls, namespaces\n"
        "from engine.errors import SyscallError\n"
        "open('/proc/sys/user/max_user_namespaces', 'w').write('0')\n"
        "try:\n"
        "    syscalls.unshare(syscalls.CLONE_NEWUSER)\n"
        "except SyscallError as e:\n"
        "    print(namespaces.explain_unshare_failure({'user', 'pid'}, e.errno).one_line())\n"
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", code], capture_output=True, text=True
    )
    assert "this kernel lacks user namespaces" in result.stdout, result.stderr
    assert "max_user_namespaces is 0" in result.stdout and "sysctl" in result.stdout


def test_parsers_accept_what_docker_accepts():
    assert parse_memory("64m") == 64 * 1024**2
    assert parse_memory("1g") == 1024**3
    assert parse_memory("8MiB") == 8 * 1024**2
    assert parse_cpus("0.5") == 0.5


def test_rm_never_deletes_through_a_mount_left_inside_a_container(name, tmp_path):
    precious = tmp_path / "host-files"
    precious.mkdir()
    (precious / "keep-me").write_text("important")
    minibox("run", "--name", name, "busybox", "true", check=True)
    from conftest import inspect

    inside = os.path.join(os.path.dirname(inspect(name)["Paths"]["State"]), "upper", "mnt")
    os.makedirs(inside, exist_ok=True)
    subprocess.run(["mount", "--bind", str(precious), inside], check=True)
    try:
        refused = minibox("rm", name)
        assert refused.returncode != 0 and "is a mount point" in refused.stderr and "minibox gc" in refused.stderr
        assert (precious / "keep-me").read_text() == "important"
        assert f"mount {inside}: unmounted" in minibox("gc", check=True).stdout  # the advice works
        minibox("rm", name, check=True)
        assert (precious / "keep-me").read_text() == "important"
    finally:
        subprocess.run(["umount", inside], capture_output=True)


def test_user_lookup_in_the_images_own_files(tmp_path):
    from engine.users import resolve

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("ann:x:1000:\nwheel:x:10:ann,bob\naudio:x:29:bob\n")
    assert resolve(str(tmp_path), "ann") == (1000, 1000, [10])
    assert resolve(str(tmp_path), "ann:audio") == (1000, 29, [10])
    assert resolve(str(tmp_path), "4242") == (4242, 4242, [])


def test_a_signal_out_of_range_is_a_bad_value(tmp_path):
    name = f"t-sig-{os.urandom(2).hex()}"
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    try:
        for bad in ("99", "100000000000000000000000", "BOGUS"):
            result = minibox("kill", "-s", bad, name)
            assert result.returncode != 0 and result.stderr.startswith(f"minibox: bad value '{bad}' for -s/--signal")
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert minibox("inspect", "-f", "State.Status", name, check=True).stdout.strip() == "running"
    finally:
        minibox("rm", "-f", name)


def test_a_bad_tag_for_commit_or_import_makes_no_image(tmp_path):
    name = f"t-tag-{os.urandom(2).hex()}"
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "file").write_text("x")
    subprocess.run(["tar", "-cf", str(tmp_path / "root.tar"), "-C", str(tmp_path / "root"), "."], check=True)
    minibox("run", "--name", name, "busybox", "touch", "/made", check=True)
    try:
        images_before = minibox("images", check=True).stdout
        for args in (("commit", name, "Bad:Tag"), ("import", str(tmp_path / "root.tar"), "BAD")):
            result = minibox(*args)
            assert result.returncode != 0 and "for TAG" in result.stderr and "lower case" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert minibox("images", check=True).stdout == images_before  # no <none> image left
    finally:
        minibox("rm", "-f", name)


def test_env_without_a_value_passes_this_shells_value_on():
    env = {**os.environ, "MINIBOX_T_FOO": "from the host"}
    env.pop("MINIBOX_T_UNSET", None)
    script = 'echo "$MINIBOX_T_FOO" "${MINIBOX_T_UNSET-unset}"'
    command = ["run", "--rm", "-e", "MINIBOX_T_FOO", "-e", "MINIBOX_T_UNSET", "busybox", "sh", "-c", script]
    result = subprocess.run([*__import__("conftest").MINIBOX, *command], capture_output=True, text=True, env=env)
    assert result.returncode == 0 and result.stdout == "from the host unset\n", result.stderr
