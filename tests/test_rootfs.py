"""The container's filesystem: overlay root, a minimal /dev, read-only /sys, protected /proc."""

from __future__ import annotations

import os

from conftest import minibox


def inside(*command: str) -> str:
    result = minibox("run", "--rm", "-h", "fsbox", "busybox", *command)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_dev_holds_only_the_minimal_devices():
    listing = set(inside("ls", "/dev").split())
    assert listing == {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "mqueue",
                       "fd", "stdin", "stdout", "stderr"}  # fmt: skip
    assert inside("sh", "-c", "head -c 4 /dev/zero | od -An -tx1").split() == ["00"] * 4
    assert inside("sh", "-c", "echo hi > /dev/full; echo $?").strip() != "0"  # ENOSPC, as on any Linux


def test_sys_is_read_only_and_proc_sys_is_protected():
    out = inside("sh", "-c", "touch /sys/x; echo 1 > /proc/sys/vm/drop_caches; echo done")
    assert out.strip() == "done"  # both writes failed, the script went on
    errors = minibox("run", "--rm", "busybox", "sh", "-c", "touch /sys/x; echo 1 > /proc/sys/vm/drop_caches").stderr
    assert errors.count("Read-only file system") == 2


def test_hostname_and_hosts_come_from_the_init_layer():
    assert inside("cat", "/etc/hostname").strip() == "fsbox"
    assert "127.0.1.1\tfsbox" in inside("cat", "/etc/hosts")


def test_writes_land_in_the_containers_upper_layer_not_the_image(name):
    minibox("run", "--name", name, "busybox", "sh", "-c", "echo changed > /etc/motd; rm /bin/vi", check=True)
    info = __import__("conftest").inspect(name)
    upper, lower = info["Rootfs"]["upper"], info["Rootfs"]["layers"][-1]
    with open(os.path.join(upper, "etc/motd")) as f:
        assert f.read() == "changed\n"
    assert not os.path.exists(os.path.join(lower, "etc/motd"))
    assert os.path.lexists(os.path.join(lower, "bin/vi"))  # the image is untouched...
    assert os.stat(os.path.join(upper, "bin/vi"), follow_symlinks=False).st_rdev == 0  # ...a whiteout hides it
    assert inside("sh", "-c", "test -e /etc/motd || echo fresh").strip() == "fresh"  # next container: clean


def test_an_rm_containers_layer_skips_syncs_and_a_kept_ones_does_not(name):
    def volatile(*run_options: str) -> bool:
        script = "grep ' / / ' /proc/self/mountinfo"  # the root, from inside: the overlay
        line = minibox("run", *run_options, "busybox", "sh", "-c", script, check=True).stdout
        fstype, _source, options = line.split(" - ")[1].split()
        assert fstype == "overlay"
        return bool({"volatile", "fsync=volatile"} & set(options.split(",")))  # Linux 6.12+ says the latter

    assert volatile("--rm")  # thrown away at exit: nothing to sync
    assert not volatile("--name", name)  # kept: `minibox commit` may read it after a crash


def test_masking_skips_paths_it_cannot_reach(tmp_path):
    # An OCI bundle's maskedPaths may name paths behind a file or a loop of links: nothing to mask
    # there (and nothing is mounted), as for a path that does not exist.
    from engine.rootfs.mounts import protect_kernel_files

    (tmp_path / "file").write_text("")
    os.symlink("loop", tmp_path / "loop")
    protect_kernel_files(str(tmp_path), ["file/sub", "loop", "missing"], ["file/sub", "loop"])
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()
