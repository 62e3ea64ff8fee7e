"""The container lifecycle through the real CLI: run, exec, logs, stop, kill, rm, gc, ps, -it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import MINIBOX, inspect, minibox, start_detached, wait_for

from engine import ContainerSpec, Paths, run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def state_of(name: str) -> str:
    return inspect(name)["State"]["Status"]


def test_foreground_run_returns_the_exit_code_and_output():
    result = minibox(
        "run", "--rm", "-e", "GREETING=hi", "-w", "/tmp/work", "busybox", "sh", "-c", "echo $GREETING; pwd; exit 7"
    )
    assert result.returncode == 7
    assert result.stdout == "hi\n/tmp/work\n"


def test_user_switch_by_name_and_number():
    assert minibox("run", "--rm", "-u", "nobody", "busybox", "id", "-u", check=True).stdout.strip() == "65534"
    assert minibox("run", "--rm", "-u", "1000:1000", "busybox", "id", check=True).stdout.startswith("uid=1000 gid=1000")


def test_detached_container_exec_and_logs(name):
    cid = minibox(
        "run",
        "-d",
        "--name",
        name,
        "-h",
        "logbox",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 60; echo done",
        check=True,
    )
    assert len(cid.stdout.strip()) == 64
    assert state_of(name) == "running"
    # exec enters every namespace: same hostname, same PID namespace (PID 1 is the container's sh)
    out = minibox("exec", name, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '", check=True).stdout
    assert out.split("\n")[:2] == ["logbox", "sh -c echo started; sleep 60; echo done "]
    assert minibox("exec", name, "sh", "-c", "exit 3").returncode == 3
    assert wait_for(lambda: minibox("logs", name).stdout == "started\n")


def test_logs_survive_the_container_and_follow_ends_with_it(name):
    start_detached(name, "busybox", "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.3; done")
    followed = minibox("logs", "-f", name, timeout=20)
    assert followed.stdout == "line 1\nline 2\nline 3\n"
    assert state_of(name) == "stopped" and inspect(name)["State"]["ExitCode"] == 0
    assert minibox("logs", name).stdout == "line 1\nline 2\nline 3\n"
    assert minibox("logs", "--tail", "2", name).stdout == "line 2\nline 3\n"  # as docker logs --tail
    assert minibox("logs", "-n", "0", name).stdout == "" and minibox("logs", "-n", "9", name).stdout.count("line") == 3
    busybox_id = minibox("inspect", "-f", "Id", "busybox", check=True).stdout.strip()
    assert busybox_id[7:19] in minibox("images", "-q", check=True).stdout.split()


def test_stop_sends_term_first_and_a_trapping_container_exits_cleanly(name):
    start_detached(name, "busybox", "sh", "-c", 'trap "exit 3" TERM; while true; do sleep 0.1; done')
    started = time.monotonic()
    stopped = minibox("stop", name, check=True)
    took = time.monotonic() - started
    assert took < 5
    assert inspect(name)["State"]["ExitCode"] == 3
    if took < 1:  # (the wait is explained after a second: a loaded machine may take that long)
        assert stopped.stderr == ""  # it exited at once: nothing to explain


def test_stop_kills_after_the_timeout_when_pid_1_ignores_term(name):
    # A PID 1 without a handler ignores SIGTERM: stop must fall back to SIGKILL.
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    started = time.monotonic()
    minibox("stop", "-t", "1", name, check=True)
    assert 1 <= time.monotonic() - started < 8
    assert inspect(name)["State"]["ExitCode"] == 137
    # A longer wait is explained after a second, so that the learner does not think it hangs.
    minibox("run", "-d", "--name", f"{name}-2", "busybox", "sleep", "60", check=True)
    try:
        stopped = minibox("stop", "-t", "2.5", f"{name}-2", check=True)
        assert "still running 1 s after SIGTERM" in stopped.stderr and "SIGKILL in 1.5 s" in stopped.stderr
        assert inspect(f"{name}-2")["State"]["ExitCode"] == 137
    finally:
        minibox("rm", "-f", f"{name}-2")


def test_init_reaps_orphaned_zombies_and_a_plain_pid_1_does_not(name):
    script = "(sleep 0.1 &); exec sleep 60"  # the orphaned sleep is re-parented to PID 1
    for with_init in (False, True):
        ref = f"{name}-{with_init}"
        minibox(
            "run", "-d", "--name", ref, *(["--init"] if with_init else []), "busybox", "sh", "-c", script, check=True
        )
        time.sleep(0.6)
        ps = minibox("exec", ref, "ps", "-o", "pid,stat,comm", check=True).stdout
        zombies = [line for line in ps.splitlines() if line.split()[1].startswith("Z")]
        assert bool(zombies) == (not with_init), ps
        if with_init:
            assert "minibox-init" in ps.splitlines()[1]
        minibox("rm", "-f", ref, check=True)


def test_rm_refuses_a_running_container_and_rm_f_removes_everything(name):
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    info = inspect(name)
    refused = minibox("rm", name)
    assert refused.returncode != 0 and "is running" in refused.stderr and "rm -f" in refused.stderr
    minibox("rm", "-f", name, check=True)
    assert not os.path.exists(os.path.dirname(info["Paths"]["State"]))
    assert not any(os.path.exists(d) for d in info["Cgroup"]["Directories"].values())
    from engine.state import process_alive

    assert not process_alive(info["State"]["Pid"], None) or _is_other_process(info["State"]["Pid"])
    assert minibox("inspect", name).returncode != 0


def _is_other_process(pid: int) -> bool:
    """A PID reused by another process since (its cgroup is not the container's)."""
    with open(f"/proc/{pid}/cgroup") as f:
        return os.environ["MINIBOX_PREFIX"] not in f.read()


def container_directories() -> set[str]:
    """Every container's directories: on disk (layer, record) and under run/ (init layer, mount point)."""
    paths = Paths()
    return {f"{d}/{e}" for d in (paths.containers, paths.runtime) if os.path.isdir(d) for e in os.listdir(d)}


def test_run_rm_leaves_no_record_directory_or_cgroup():
    before = container_directories()
    minibox("run", "--rm", "-m", "32m", "busybox", "true", check=True)
    assert container_directories() == before
    minibox("run", "-d", "--rm", "busybox", "true", check=True)
    assert wait_for(lambda: container_directories() == before)


def test_an_rm_container_that_wrote_nothing_leaves_its_empty_layer_to_the_next_start():
    # Deleting directories costs more than making them: an --rm container that wrote nothing has
    # only empty ones left, moved aside in one rename and deleted by the next start meanwhile.
    trash = os.path.join(Paths().lib, "trash")
    before = container_directories()

    def in_trash() -> list[str]:
        return os.listdir(trash) if os.path.isdir(trash) else []

    minibox("run", "--rm", "busybox", "true", check=True)
    first = in_trash()
    assert len(first) == 1 and container_directories() == before  # earlier ones went meanwhile
    assert os.listdir(os.path.join(trash, first[0], "upper")) == []
    # A container that wrote something: its start empties the trash, its files go at once.
    minibox("run", "--rm", "busybox", "sh", "-c", "head -c 1000000 /dev/zero > /big", check=True)
    assert in_trash() == [] and container_directories() == before
    minibox("run", "--rm", "busybox", "true", check=True)
    assert len(in_trash()) == 1
    minibox("gc", check=True)
    assert in_trash() == []


def test_a_detached_rm_containers_log_goes_at_once_not_to_the_trash():
    trash = os.path.join(Paths().lib, "trash")
    before = container_directories()
    minibox("run", "-d", "--rm", "busybox", "echo", "logged", check=True)
    assert wait_for(lambda: container_directories() == before)
    assert not [e for e in os.listdir(trash) if os.path.exists(os.path.join(trash, e, "container.log"))]


def test_a_trash_entry_that_cannot_be_deleted_never_stops_a_start_and_gc_names_it():
    stuck = os.path.join(Paths().lib, "trash", "stuck")
    os.makedirs(stuck)
    with open(os.path.join(stuck, "file"), "w") as f:
        f.write("immutable")
    subprocess.run(["chattr", "+i", os.path.join(stuck, "file")], check=True)  # even root cannot unlink it
    with open(os.path.join(Paths().lib, "trash", "stray"), "w"):  # not minibox's doing: a file, deleted too
        pass
    try:
        assert minibox("run", "--rm", "busybox", "echo", "started").stdout == "started\n"
        assert not os.path.exists(os.path.join(Paths().lib, "trash", "stray"))
        assert f"trash {stuck}: could not delete it ([Errno 1] Operation not permitted" in minibox("gc").stdout
    finally:
        subprocess.run(["chattr", "-i", os.path.join(stuck, "file")], check=True)
        shutil.rmtree(stuck)


def test_an_rm_containers_record_is_runtime_state_that_a_reboot_forgets(name):
    # --rm: the container is removed when it stops, so its record lives under run/ (a tmpfs on a
    # standard machine), as runc's state.json does under /run/runc; its upper layer is on disk.
    minibox("create", "--rm", "--name", name, "busybox", "true", check=True)
    info = inspect(name)
    assert info["Paths"]["State"].startswith(Paths().runtime + "/")
    assert name in minibox("ps", "-a", check=True).stdout
    shutil.rmtree(os.path.dirname(info["Paths"]["State"]))  # as a reboot empties /run
    assert name not in minibox("ps", "-a", check=True).stdout
    assert f"directory {Paths().containers}/{info['Id']}: removed (no record)" in minibox("gc", check=True).stdout


def test_removing_a_container_never_follows_its_symbolic_links_out_of_it(tmp_path):
    # A container's upper layer may hold links to anywhere (here to a host directory by its host
    # path): removing the container must delete the links, not what they point to.
    host_dir = tmp_path / "precious"
    host_dir.mkdir()
    (host_dir / "file").write_text("keep me")
    script = f"ln -s {host_dir} /root/to-dir; ln -s {host_dir}/file /root/to-file; mkdir -p /root/a/b; " \
             f"ln -s {host_dir} /root/a/b/deeper"  # fmt: skip
    minibox("run", "--rm", "busybox", "sh", "-c", script, check=True)
    assert (host_dir / "file").read_text() == "keep me" and sorted(os.listdir(host_dir)) == ["file"]


def test_removing_a_container_whose_tree_is_deeper_than_python_recurses():
    before = container_directories()
    deep = "cd /root; i=0; while [ $i -lt 1200 ]; do mkdir d; cd d; i=$((i+1)); done; touch last"
    minibox("run", "--rm", "busybox", "sh", "-c", deep, check=True)
    assert container_directories() == before


def test_the_init_layer_and_mount_point_live_under_run_the_layer_on_disk(name):
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    rootfs = json.loads(minibox("inspect", "-f", "{{json .Rootfs}}", name, check=True).stdout)
    paths = Paths()
    assert rootfs["init"].startswith(paths.runtime + "/") and rootfs["target"].startswith(paths.runtime + "/")
    assert rootfs["upper"].startswith(paths.containers + "/") and rootfs["work"].startswith(paths.containers + "/")
    with open(os.path.join(rootfs["init"], "etc", "hostname")) as f:
        assert f.read() == minibox("exec", name, "hostname", check=True).stdout
    minibox("rm", "-f", name, check=True)
    assert not os.path.exists(os.path.dirname(rootfs["init"])) and not os.path.exists(os.path.dirname(rootfs["upper"]))


def test_gc_cleans_up_after_a_killed_supervisor(name):
    minibox("run", "-d", "--name", name, "-m", "32m", "busybox", "sleep", "60", check=True)
    info = inspect(name)
    record = __import__("engine").get(name)
    os.kill(record.data["supervisor_pid"], signal.SIGKILL)  # the shim dies: nobody will clean up
    os.kill(info["State"]["Pid"], signal.SIGKILL)
    assert wait_for(lambda: state_of(name) == "stopped")
    assert any(os.path.exists(d) for d in info["Cgroup"]["Directories"].values())  # left behind...
    report = minibox("gc", check=True).stdout
    assert name in report
    assert not any(os.path.exists(d) for d in info["Cgroup"]["Directories"].values())  # ...until gc


def test_ps_lists_running_and_all(name):
    long_image = f"127.0.0.1:5055/workshop/{name}-image:v1"  # a registry's name: longer than a column
    minibox("tag", "busybox", long_image, check=True)
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    minibox("run", "--name", f"{name}-done", long_image, "true", check=True)
    try:
        running, everything = minibox("ps").stdout, minibox("ps", "-a").stdout
        assert name in running and f"{name}-done" not in running
        assert f"{name}-done" in everything and "Exited (0) " in everything
        done = next(line for line in everything.splitlines() if line.endswith(f"{name}-done"))
        columns = rf'{re.escape(long_image)}  +"true" +\d+ seconds? ago  +Exited \(0\) \d+ seconds? ago'
        assert re.search(columns, done), done
    finally:
        minibox("rm", f"{name}-done")
        minibox("rmi", long_image)


def test_two_commands_at_once_never_share_a_name(name):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: minibox("run", "-d", "--name", name, "busybox", "sleep", "60"), range(4)))
    assert sum(r.returncode == 0 for r in results) == 1
    assert all("already used" in r.stderr for r in results if r.returncode)
    assert len([line for line in minibox("ps", "-a").stdout.splitlines() if line.endswith(name)]) == 1


def talk_through_a_pty(argv: list[str], typed: bytes) -> tuple[bytes, int]:
    """Run ``argv`` on a new pseudo-terminal, type a line at the first prompt, return (output, exit code)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(argv[0], argv)
    output = b""
    sent = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the program exited and closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not sent and b"# " in output:
            os.write(fd, typed)
            sent = True
    _, status = os.waitpid(pid, 0)
    return output, os.waitstatus_to_exitcode(status)


def test_interactive_terminal_is_a_real_pty():
    output, code = talk_through_a_pty([*MINIBOX, "run", "--rm", "-it", "busybox", "sh"], b"tty; stty size; exit 5\n")
    assert b"/dev/pts/0" in output  # the container's own devpts instance
    assert code == 5


def test_exec_it_gets_a_terminal_in_the_container(name):
    minibox("run", "-d", "--name", name, "busybox", "sleep", "60", check=True)
    output, code = talk_through_a_pty([*MINIBOX, "exec", "-it", name, "sh"], b"tty; hostname; exit\n")
    assert b"/dev/pts/" in output and code == 0


def test_library_run_in_process_with_captured_output():
    read_end, write_end = os.pipe()
    code = run(
        ContainerSpec("busybox", ["sh", "-c", "echo from-the-library"], auto_remove=True),
        stdio=(0, write_end, write_end),
    )
    os.close(write_end)
    with os.fdopen(read_end) as f:
        assert f.read() == "from-the-library\n"
    assert code == 0


FORK_SCRIPT = """
import ctypes, os, sys, threading
import engine
handlers_r, handlers_w = os.pipe2(os.O_NONBLOCK)
os.register_at_fork(after_in_child=lambda: os.write(handlers_w, b"x"))
stop = threading.Event()


def spin(_=None):
    while not stop.is_set():
        pass


if sys.argv[1] == "thread":  # a thread that keeps asking for the GIL while the container starts
    threading.Thread(target=spin, daemon=True).start()
elif sys.argv[1] == "C thread":  # the same, started by C: Python's own thread count misses it
    libc = ctypes.CDLL(None)
    body = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(spin)
    c_thread = ctypes.c_ulong()
    libc.pthread_create(ctypes.byref(c_thread), None, body, None)
out_r, out_w = os.pipe()
try:
    code = engine.run(engine.ContainerSpec("busybox", ["echo", "started"], auto_remove=True), stdio=(0, out_w, out_w))
finally:
    stop.set()
    if sys.argv[1] == "C thread":
        libc.pthread_join(c_thread, None)
os.close(out_w)
try:
    ran = os.read(handlers_r, 100).decode()
except BlockingIOError:
    ran = ""
print(code, os.read(out_r, 100).decode().strip(), "handlers ran" if ran else "no handlers")
"""


def test_a_process_alone_forks_the_init_without_pythons_handlers_one_with_threads_with_them():
    """The init is forked by libc (no at-fork handlers: they cost ~0.6 ms in a process carrying
    textual) only when no other thread, Python's or C's, could be waiting for the GIL (a child
    forked so then waits for it forever); every way, the container runs."""
    cases = (("alone", "no handlers"), ("thread", "handlers ran"), ("C thread", "handlers ran"))
    for threads, handlers in cases:
        result = subprocess.run(
            [sys.executable, "-c", FORK_SCRIPT, threads], capture_output=True, text=True, timeout=30, cwd=REPO
        )
        assert result.stdout.strip() == f"0 started {handlers}", (threads, result.stdout, result.stderr)


def test_detached_interactive_keeps_stdin_open(name):
    minibox("run", "-d", "-i", "--name", name, "busybox", "sh", check=True)
    time.sleep(0.5)
    assert state_of(name) == "running"  # sh waits on its (open, empty) stdin instead of exiting


def test_minibox_run_d_returns_even_when_its_output_is_a_pipe(name):
    proc = subprocess.run(
        [*MINIBOX, "run", "-d", "--name", name, "busybox", "sleep", "60"], capture_output=True, timeout=10
    )
    assert proc.returncode == 0  # the shim does not hold the caller's stdout pipe open


def test_stdin_reaches_the_container_only_with_i():
    without = subprocess.run([*MINIBOX, "run", "--rm", "busybox", "cat"], input=b"piped\n", capture_output=True)
    with_i = subprocess.run([*MINIBOX, "run", "--rm", "-i", "busybox", "cat"], input=b"piped\n", capture_output=True)
    assert (without.stdout, with_i.stdout) == (b"", b"piped\n")


def test_detached_with_a_terminal_logs_its_output_and_stays_up(name):
    minibox("run", "-dit", "--name", name, "busybox", "sh", check=True)
    assert wait_for(lambda: "# " in minibox("logs", name).stdout)  # the shell's prompt, through the pty
    assert state_of(name) == "running"
    assert minibox("exec", name, "sh", "-c", "tty < /proc/1/fd/0").stdout.strip() == "/dev/pts/0"


def test_a_killed_minibox_run_leaves_a_container_that_stop_and_gc_clean_up(name):
    # kill -9 the foreground `minibox run` itself: nothing waits for the container any more
    runner = subprocess.Popen([*MINIBOX, "run", "--name", name, "-m", "32m", "busybox", "sleep", "60"])
    assert wait_for(lambda: minibox("inspect", name).returncode == 0 and state_of(name) == "running")
    info = inspect(name)
    runner.kill()
    runner.wait()
    assert "container" not in minibox("gc", check=True).stdout  # still running: gc leaves it alone
    assert state_of(name) == "running"
    minibox("stop", "-t", "1", name, check=True)  # stop finds no supervisor and finalizes itself
    assert state_of(name) == "stopped"
    assert not any(os.path.exists(d) for d in info["Cgroup"]["Directories"].values())


def test_minibox_own_cgroup_stays_between_containers_and_gc_removes_it_once_empty(name):
    # as docker's `docker` group: each container's group goes with it, their parent stays
    from engine import cgroups, state

    drv = cgroups.driver()
    minibox("run", "--rm", "busybox", "true", check=True)
    assert drv.exists(state.prefix()) and not drv.children(state.prefix())
    start_detached(name, "busybox", "sleep", "60")
    minibox("gc", check=True)
    assert drv.exists(state.prefix()) and len(drv.children(state.prefix())) == 1  # in use: kept
    minibox("rm", "-f", name, check=True)
    minibox("gc", check=True)
    assert not drv.exists(state.prefix())


def test_gc_removes_a_cgroup_and_a_directory_that_no_record_owns():
    from engine import cgroups, state

    orphan = f"{state.prefix()}/{'0' * 64}"  # as if minibox died between mkdir and writing its record
    cgroups.driver().create(orphan, cgroups.Limits())
    stray = os.path.join(Paths().containers, "f" * 64)
    os.makedirs(os.path.join(stray, "upper"))
    stray_runtime = Paths().container_runtime("e" * 64)  # its init layer under run/
    os.makedirs(os.path.join(stray_runtime, "init", "etc"))
    report = minibox("gc", check=True).stdout
    assert f"cgroup {orphan}: removed" in report and "no record" in report
    assert f"directory {stray_runtime}: removed (no record)" in report
    assert not cgroups.driver().exists(orphan) and not os.path.exists(stray) and not os.path.exists(stray_runtime)


def test_exec_joins_every_cgroup_of_the_container(name):
    minibox("run", "-d", "--name", name, "-m", "32m", "busybox", "sleep", "60", check=True)
    init = minibox("exec", name, "cat", "/proc/1/cgroup", check=True).stdout
    own = minibox("exec", name, "cat", "/proc/self/cgroup", check=True).stdout
    assert own == init and "/.." not in own


def test_the_command_leaves_quickly_yet_flushes_all_it_printed(name):
    # minibox ends with _exit(2) once its work is done (engine/quick_exit.py): what it printed
    # into its output buffer must still all arrive, and the exit status must be the command's.
    start_detached(name, "busybox", "sleep", "60")
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # as a user's shell has it

    def cli(*args: str, shell_tail: str = "") -> subprocess.CompletedProcess:
        command = " ".join([*MINIBOX, *args]) + shell_tail
        return subprocess.run(command, shell=True, capture_output=True, text=True, env=buffered, timeout=60)

    many = cli("inspect", *[name] * 40)
    assert many.returncode == 0 and len(many.stdout) > 3 * 8192  # well past one buffer of a pipe
    assert [c["Name"] for c in json.loads(many.stdout)] == [name] * 40 and many.stdout.endswith("]\n")
    assert cli("inspect", "--format", "Name", *[name] * 40).stdout == f"{name}\n" * 40
    missing = cli("inspect", name, "no-such-container-here")
    assert missing.returncode == 125 and "no-such-container-here" in missing.stderr
    # a reader that stops early: no traceback
    reader = cli("inspect", *[name] * 40, shell_tail=" | head -c 10")
    assert reader.stdout == many.stdout[:10]
    assert "Traceback" not in reader.stderr and "Exception" not in reader.stderr


def test_inspect_format_takes_docker_templates(name):
    start_detached(name, "busybox", "sleep", "60")
    pid = inspect(name)["State"]["Pid"]
    out = minibox("inspect", "-f", "{{.Name}} is {{.State.Status}} (pid {{.State.Pid}})", name, check=True).stdout
    assert out == f"{name} is running (pid {pid})\n"
    assert json.loads(minibox("inspect", "-f", "{{json .State}}", name, check=True).stdout)["Pid"] == pid
    assert minibox("inspect", "-f", "State.Pid", name, check=True).stdout == f"{pid}\n"  # a bare path, as before
    bad = minibox("inspect", "-f", "{{.Nope}}", name)
    assert bad.returncode != 0 and "'Nope' is not there" in bad.stderr and len(bad.stderr.splitlines()) == 1


# --- create, then start (docker's two halves of `run`) -----------------------------------------


def test_create_makes_a_container_that_waits_then_start_runs_it_in_the_background(name):
    container_id = minibox("create", "--name", name, "-m", "32m", "busybox", "sleep", "60", check=True).stdout.strip()
    assert len(container_id) == 64
    info = inspect(name)
    assert info["State"]["Status"] == "created" and info["State"]["Pid"] == 0
    # as docker create: no cgroup yet (start makes it, as runc does), the limit is in the record
    assert info["Cgroup"]["Stats"] == {} and not any(os.path.exists(d) for d in info["Cgroup"]["Directories"].values())
    row = next(line for line in minibox("ps", "-a", check=True).stdout.splitlines() if line.endswith(name))
    assert "Created" in row and name not in minibox("ps").stdout
    minibox("gc", check=True)  # nobody supervises it, yet it is no leftover: it waits for `start`
    assert state_of(name) == "created"
    assert minibox("start", name, name, check=True).stdout == f"{name}\n{name}\n"  # started once, then a no-op
    assert state_of(name) == "running" and minibox("exec", name, "ps", check=True).stdout.count("sleep 60") == 1
    assert inspect(name)["Cgroup"]["Stats"]["memory_limit"] == 32 * 1024 * 1024
    minibox("stop", "-t", "1", name, check=True)
    assert state_of(name) == "stopped"


def test_start_attached_gives_the_output_and_exit_code_and_a_container_starts_once(name):
    minibox("create", "--name", name, "busybox", "sh", "-c", "echo hi; exit 3", check=True)
    started = minibox("start", "-a", name)
    assert (started.returncode, started.stdout) == (3, "hi\n")
    assert inspect(name)["State"]["ExitCode"] == 3
    again = minibox("start", name)
    assert again.returncode != 0 and again.stderr.count("\n") == 1 and "is stopped, cannot start" in again.stderr


def test_a_start_that_fails_leaves_the_container_created_and_rm_removes_it_all(name):
    before = container_directories()
    minibox("create", "--name", name, "busybox", "no-such-command", check=True)
    failed = minibox("start", name)
    assert failed.returncode == 127 and "command 'no-such-command' not found" in failed.stderr
    assert state_of(name) == "created" and minibox("start", "-a", name).returncode == 127  # and again
    minibox("rm", name, check=True)
    assert container_directories() == before


def test_create_rm_then_start_attached_removes_the_container_when_it_exits(name):
    before = container_directories()
    minibox("create", "--rm", "--name", name, "busybox", "true", check=True)
    assert minibox("start", "-a", name).returncode == 0
    assert container_directories() == before and name not in minibox("ps", "-a").stdout


def test_two_starts_at_once_start_one_init(name):
    minibox("create", "--name", name, "busybox", "sleep", "60", check=True)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: minibox("start", name), range(4)))
    assert any(r.returncode == 0 for r in results)
    from engine import cgroups

    group = inspect(name)["Cgroup"]["Group"]
    assert wait_for(lambda: len(cgroups.driver().processes(group)) == 1, timeout=2)
    time.sleep(0.3)  # a second init would have joined by now
    assert len(cgroups.driver().processes(group)) == 1


def test_a_created_container_starts_after_a_reboot_emptied_run(name):
    # (a created container has no cgroup yet: start makes it, reboot or not)
    minibox("create", "--name", name, "-m", "32m", "busybox", "cat", "/etc/hostname", check=True)
    info = inspect(name)
    shutil.rmtree(os.path.dirname(info["Rootfs"]["init"]))  # what a reboot does to /run (a tmpfs)
    started = minibox("start", "-a", "--trace", name)
    assert started.returncode == 0 and started.stdout == info["Id"][:12] + "\n", started.stderr
    assert "pivot_root" in started.stderr and "execve" in started.stderr  # start --trace: the second half


def test_a_failed_start_without_a_mount_namespace_leaves_no_mount_on_the_host(name):
    minibox("create", "--name", name, "--mntns", "host", "--chroot", "busybox", "no-such-command", check=True)
    target = inspect(name)["Rootfs"]["target"]
    for _ in range(2):
        assert minibox("start", name).returncode == 127
        with open("/proc/self/mountinfo") as f:
            assert target not in f.read()


def test_a_created_rm_container_whose_start_fails_is_removed(name):
    before = container_directories()
    minibox("create", "--rm", "--name", name, "busybox", "no-such-command", check=True)
    assert minibox("start", name).returncode == 127
    assert container_directories() == before and name not in minibox("ps", "-a").stdout


def test_a_start_killed_before_its_shim_took_over_leaves_the_container_startable(name):
    minibox("create", "--name", name, "busybox", "true", check=True)
    claim = f"from engine.container import _claim_for_start; import os; _claim_for_start({name!r}, None); os._exit(9)"
    assert subprocess.run([sys.executable, "-c", claim], cwd=REPO).returncode == 9
    minibox("gc", check=True)
    assert state_of(name) == "created"
    assert minibox("start", "-a", name).returncode == 0


def test_created_containers_say_how_to_start_them(name):
    minibox("create", "--name", name, "busybox", "true", check=True)
    assert f"has not started yet: `minibox start {name}`" in minibox("logs", name).stderr
    killed = minibox("kill", name)
    assert killed.returncode != 0 and f"`minibox start {name}`" in killed.stderr


def test_a_record_too_big_for_the_disk_leaves_the_old_one_whole(tmp_path):
    # A write may take only part of the data (a full disk, a file-size limit): the record must
    # then fail to be replaced, never be replaced by its first half.
    record = tmp_path / "state.json"
    record.write_text('{"old": true}\n')
    script = f"""
import resource, signal
from engine.state import write_json_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
try:
    write_json_atomic({str(record)!r}, {{"new": "x" * 500}}, indent=None)
except OSError as e:
    print(e.errno)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.strip() == "27", result  # EFBIG
    assert record.read_text() == '{"old": true}\n' and os.listdir(tmp_path) == ["state.json"]


def test_a_shim_whose_start_lost_its_claim_does_not_take_the_container_over(name):
    # A start is killed after forking its shim but before the shim took over; another start
    # claims the container and runs it. The first shim, late, must leave it to the second.
    minibox("create", "--name", name, "busybox", "sleep", "60", check=True)
    claim = f"from engine.container import _claim_for_start; import os; _claim_for_start({name!r}, None); os._exit(0)"
    subprocess.run([sys.executable, "-c", claim], cwd=REPO, check=True)
    from engine import state
    from engine.supervisor import _take_over

    late = state.find(Paths(), name)  # the record as the killed start's shim holds it
    minibox("start", name, check=True)
    running = state.find(Paths(), name)
    assert running.state == "running"
    assert _take_over(late) is False
    assert state.find(Paths(), name).data["supervisor_pid"] == running.data["supervisor_pid"]
