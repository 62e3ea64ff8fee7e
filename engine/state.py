"""Container records on disk: where state lives, the lifecycle's states and their guards.

Layout (``MINIBOX_ROOT=X`` puts both under ``X/run`` and ``X/lib``, which is how tests isolate):

- ``/run/minibox/lock`` a lock file; ``flock(2)`` on it serialises commands that change records,
  so two ``minibox`` commands at once never both take a name, and ``gc`` never sees a container
  half made (``create`` and ``gc`` hold it throughout; ``finalize`` while it changes a record).
- ``/var/lib/minibox/containers/ID/state.json`` the record: spec, state, PIDs, exit code.
  Written to a temporary file and ``rename(2)``d over the old one, which is atomic: a reader (or
  a crash) sees the old record or the new one, never half of one. A container made with ``--rm``
  keeps its record under ``/run`` instead (below): it is removed when it stops, so its record is
  runtime state only, as runc's ``state.json`` under ``/run/runc``, and a reboot forgets it.
- ``.../containers/ID/{upper,work}`` the overlay's writable layer (and the work directory
  overlayfs needs beside it), ``.../containers/ID/container.log`` what a detached container printed.
- ``/var/lib/minibox/trash/ID`` the layer of an ``--rm`` container that wrote nothing (empty
  directories: its upper, overlayfs's work directory), moved there in one ``rename(2)`` when it
  exits and deleted by the next container's ``start`` while that one runs, or by ``gc``
  (see ``empty_trash``).
- ``/run/minibox/containers/ID/{init,rootfs}`` what exists only while the container may run,
  as runc and containerd keep theirs under ``/run``: the init layer (hostname, hosts), made
  anew for each container, and the overlay's mount point. ``/run`` is a tmpfs on a standard
  machine, so these cost no disk writes; what the container changes stays on disk in ``upper``.

States: ``created`` -> ``running`` -> ``stopped`` (runc's lifecycle without pause). A record says
``running`` only while its init process really exists: the init's start time (field 22 of
``/proc/PID/stat``) is stored with its PID, so a recycled PID is never mistaken for the container.
"""

from __future__ import annotations

import _thread
import fcntl
import os
import time

from engine import fastjson
from engine.errors import ContainerNotFound, InvalidState, MiniboxError

CREATED, RUNNING, STOPPED = "created", "running", "stopped"
# The lifecycle's guards: which states an operation may start from.
ALLOWED = {
    "start": {CREATED},
    "exec": {RUNNING},
    "stop": {CREATED, RUNNING, STOPPED},  # stopping a stopped container is a no-op, as in docker
    "remove": {CREATED, STOPPED},  # a running one needs force
}


def prefix() -> str:
    """The name every kernel object minibox makes starts with (cgroup dirs, later bridges...)."""
    return os.environ.get("MINIBOX_PREFIX", "minibox")


class Paths:
    """Where minibox keeps its state (see the module docstring)."""

    def __init__(self, root: str | None = None) -> None:
        root = root or os.environ.get("MINIBOX_ROOT")
        self.run = os.path.join(root, "run") if root else "/run/minibox"
        self.lib = os.path.join(root, "lib") if root else "/var/lib/minibox"
        self.containers = os.path.join(self.lib, "containers")
        self.images = os.path.join(self.lib, "images")
        self.trash = os.path.join(self.lib, "trash")  # emptied layers waiting to be deleted: see empty_trash
        self.runtime = os.path.join(self.run, "containers")  # per container: init layer, mount point

    def container(self, container_id: str, *parts: str) -> str:
        return os.path.join(self.containers, container_id, *parts)

    def container_runtime(self, container_id: str, *parts: str) -> str:
        return os.path.join(self.runtime, container_id, *parts)

    def ensure(self) -> None:
        for path in (self.run, self.runtime, self.containers, self.images, self.trash):
            if not os.path.isdir(path):  # one stat(2) when it is there, as it is after the first run
                os.makedirs(path, mode=0o711, exist_ok=True)


class Lock:
    """An exclusive ``flock(2)`` on ``run/lock``, held for the ``with`` block.

    Re-entrant: code holding it may call code that takes it again (``gc`` calls ``finalize``).
    A thread lock comes first, so threads of one process (the TUI's workers) also take turns.
    """

    _threads = _thread.RLock()  # threading's, without importing threading (~1 ms at every start)
    _depth: dict[str, int] = {}
    _fds: dict[str, int] = {}

    def __init__(self, paths: Paths | str) -> None:
        # a Paths (minibox's state), or a directory of its own (the OCI runtime's --root)
        self.path = os.path.join(paths if isinstance(paths, str) else paths.run, "lock")

    def __enter__(self) -> Lock:
        Lock._threads.acquire()
        if Lock._depth.get(self.path, 0) == 0:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:  # the first command on this machine: no run directory yet
                os.makedirs(os.path.dirname(self.path), mode=0o711, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            Lock._fds[self.path] = fd
        Lock._depth[self.path] = Lock._depth.get(self.path, 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        Lock._depth[self.path] -= 1
        if Lock._depth[self.path] == 0:
            os.close(Lock._fds.pop(self.path))  # closing the file releases the flock
        Lock._threads.release()


def write_json_atomic(path: str, data: dict, indent: int | None = 2) -> None:
    """Write ``path`` whole or not at all: a temporary file, then rename(2) over the old one."""
    tmp = f"{path}.tmp{os.getpid()}-{_thread.get_ident()}"  # unique per thread: the TUI has several
    if indent is None:
        text = fastjson.dumps(data)
    else:
        import json  # indented, for people to read: json's own encoder

        text = json.dumps(data, indent=indent)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, f"{text}\n".encode())
    except BaseException:
        os.unlink(tmp)  # a full disk: the old record stays, whole
        raise
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_all(fd: int, data: bytes) -> None:
    """os.write until all of ``data`` is written: a write may take less (a file-size limit, a
    disk filling up), and the next one then raises the error instead of losing the rest."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_file(path: str, data: bytes, new: bool = False) -> None:
    """Write a small file with open/write/close and no more (see read_file): a cgroup knob, or
    with ``new`` a file that must not exist yet (O_EXCL), as a container's init layer files."""
    flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if new else 0)
    fd = os.open(path, flags, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def read_file(path: str) -> bytes:
    """A small file's whole content with open/read/close and no more: Python's ``open()`` adds
    five system calls (fstat, isatty's ioctl, two lseeks, another fstat) to every read, and a
    container's start and stop read a dozen small files."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = [os.read(fd, 65536)]
        while chunks[-1]:  # /proc files report size 0: read until the end, whatever stat says
            chunks.append(os.read(fd, 65536))
        return b"".join(chunks)
    finally:
        os.close(fd)


def remove_tree(*paths: str) -> None:
    """rm -rf of a container's directories (upper layer, log, record; its runtime state).

    It works through directory file descriptors, each opened with ``O_NOFOLLOW``, and removes a
    symbolic link instead of following it: a link a container left in its upper layer cannot
    redirect the removal outside it (the guarantee ``shutil.rmtree`` gives, whose import would cost
    every ``minibox run --rm`` 2 ms; ``os.fwalk`` gives it too, with twice the system calls).

    It refuses when anything is still mounted below them (a cleanup that failed): deleting
    through a mount, a bind mount of a host directory say, would destroy the host's files.
    """
    _refuse_if_mounted(*paths)
    for path in paths:
        _remove_one_tree(path)


def _refuse_if_mounted(*paths: str) -> None:
    mounted = mounts_under(*paths)  # one read of the mount table for all of them
    if mounted:
        tree = next((p for p in paths if mounted[0].startswith(os.path.realpath(p).rstrip("/") + "/")), paths[0])
        raise MiniboxError(f"not removing {tree}: {mounted[0]} is a mount point", "run `minibox gc`, then try again")


def empty_trash(paths: Paths, wait: bool = False) -> list[tuple[str, str]]:
    """Delete what ``Record.remove_directories(defer_empty_layer=True)`` left in ``lib/trash/``.

    ``start`` calls it while the new container's init builds its root filesystem (see
    process.LaunchPlan.meanwhile), and ``gc`` too. One process at a time: a ``flock(2)`` on the
    trash directory; a start that finds it held leaves the work to the holder, ``gc`` (``wait``)
    waits for it. It never raises, so it never stops a container's start: it returns what it
    could not delete, and why (``gc`` says so).
    """
    try:
        fd = os.open(paths.trash, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:  # state made by an older minibox: nothing was ever put there
        return []
    except OSError as e:
        return [(paths.trash, str(e))]
    failed: list[tuple[str, str]] = []
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        _refuse_if_mounted(paths.trash)  # as remove_tree: never delete through a mount
        for name, is_directory in _entries(fd):
            try:
                if is_directory:
                    _remove_one_tree(os.path.join(paths.trash, name))
                else:  # not something minibox puts there, but nothing to keep either
                    os.unlink(name, dir_fd=fd)
            except Exception as e:  # noqa: BLE001 -- OSError, or rm's CalledProcessError: leave it to gc
                failed.append((os.path.join(paths.trash, name), str(e)))
    except BlockingIOError:  # another start is emptying it
        pass
    except (OSError, MiniboxError) as e:
        failed.append((paths.trash, str(e)))
    finally:
        os.close(fd)  # and the lock with it
    return failed


def _remove_one_tree(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _empty_directory(fd)
        finally:
            os.close(fd)
        os.rmdir(path)
    except FileNotFoundError:  # removed already (or meanwhile, by another cleanup)
        pass
    except (RecursionError, OSError) as e:  # a tree deeper than Python's recursion or open files
        if isinstance(e, OSError) and e.errno != 24:  # 24: EMFILE, one descriptor per level
            raise
        # A container can make one (`mkdir a; cd a` a thousand times): coreutils' rm walks any
        # depth, and never follows a symbolic link either.
        import subprocess

        subprocess.run(["rm", "-rf", "--one-file-system", "--", path], check=True, stderr=subprocess.PIPE)


def _empty_directory(dir_fd: int) -> None:
    """Delete everything inside the open directory ``dir_fd``, depth first."""
    for name, is_directory in _entries(dir_fd):
        if not is_directory:  # a file, or a symbolic link (to a directory too): unlinked, not followed
            os.unlink(name, dir_fd=dir_fd)
            continue
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            _empty_directory(fd)
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dir_fd)


def _entries(dir_fd: int) -> list[tuple[str, bool]]:
    """(name, is a directory) of each entry of the open directory ``dir_fd``; links are not followed."""
    with os.scandir(dir_fd) as entries:  # the entries' types come with the listing: no stat each
        return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]


def mounts_under(*directories: str) -> list[str]:
    """Mount points strictly below any of ``directories``, from this process's /proc/self/mountinfo."""
    prefixes = tuple(os.path.realpath(directory).rstrip("/") + "/" for directory in directories)
    points = [line.split()[4].decode() for line in read_file("/proc/self/mountinfo").splitlines()]
    return [p for p in points if p.startswith(prefixes)]


def _read_stat(pid: int) -> tuple[bytes, int] | None:
    """(state letter, start time) from /proc/PID/stat, or None if there is no such process."""
    try:
        stat = read_file(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return fields[0], int(fields[19])  # fields 3 and 22 of the whole line


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks after boot): with the PID, a unique process id."""
    stat = _read_stat(pid)
    return stat[1] if stat else None


_own_start_time: tuple[int, int | None] = (0, None)


def own_start_time() -> int | None:
    """``process_start_time(os.getpid())``, read once per process (a forked child reads its own)."""
    global _own_start_time
    pid = os.getpid()
    if _own_start_time[0] != pid:
        _own_start_time = (pid, process_start_time(pid))
    return _own_start_time[1]


def process_alive(pid: int | None, start_time: int | None) -> bool:
    """True if ``pid`` is the same process as when ``start_time`` was read and has not exited.

    One read of /proc/PID/stat: the process may be reaped at any moment, between two reads too.
    """
    stat = _read_stat(pid) if pid else None
    if stat is None:
        return False
    state, started = stat
    return state != b"Z" and (start_time is None or started == start_time)  # a zombie has exited


class Record:
    """One container's state.json, loaded as a dict with helpers. ``data`` is what is saved."""

    def __init__(self, paths: Paths, data: dict) -> None:
        self.paths = paths
        self.data = data

    # fields used everywhere
    id = property(lambda self: self.data["id"])
    name = property(lambda self: self.data["name"])
    pid = property(lambda self: self.data.get("pid"))

    @property
    def state(self) -> str:
        """The recorded state, corrected if its init died without anyone recording it."""
        state = self.data["state"]
        if state == RUNNING and not process_alive(self.pid, self.data.get("pid_start_time")):
            return STOPPED
        return state

    def dir(self, *parts: str) -> str:
        return self.paths.container(self.id, *parts)

    def runtime_dir(self, *parts: str) -> str:
        return self.paths.container_runtime(self.id, *parts)

    def remove_directories(self, defer_empty_layer: bool = False) -> None:
        """Delete the container's directories: its state under /run, its layer and record on disk.

        ``defer_empty_layer`` (an ``--rm`` container that exited): if it wrote nothing, what is
        left on disk is empty directories (its upper layer, overlayfs's work directory with its
        markers, its own): they go to ``lib/trash/`` in one ``rename(2)``, to be deleted by the
        next container's start while that one sets itself up (see empty_trash). Deleting a
        directory costs more than making one (on this project's development VM each ``rmdir``
        waits for the disk to discard the directory's block), and the caller gets its exit code
        without waiting for that. Anything else (files it wrote, a detached container's log) is
        deleted at once: its disk space is back when ``run`` returns.
        """
        _refuse_if_mounted(self.runtime_dir(), self.dir())
        _remove_one_tree(self.runtime_dir())
        if defer_empty_layer and self._only_an_empty_layer():
            try:
                os.rename(self.dir(), os.path.join(self.paths.trash, self.id))
                return
            except OSError:  # no trash (state made by an older minibox), or EXDEV: delete it now
                pass
        _remove_one_tree(self.dir())

    def _only_an_empty_layer(self) -> bool:
        try:
            return sorted(os.listdir(self.dir())) == ["upper", "work"] and not os.listdir(self.dir("upper"))
        except FileNotFoundError:
            return False

    def record_file(self) -> str:
        """Where the record is saved: under run/ for an --rm container (see the module's docstring)."""
        if self.data["spec"].get("auto_remove"):
            return self.runtime_dir(RECORD)
        return self.dir(RECORD)

    def save(self) -> None:
        # One line: json's C encoder is used only by dumps() without indent, and a record is written on every
        # start and stop (an indented one cost 0.4 ms each time). `minibox inspect` pretty-prints it.
        write_json_atomic(self.record_file(), self.data, indent=None)

    def guard(self, operation: str, fix: str) -> None:
        """Raise InvalidState unless the lifecycle allows ``operation`` in the current state."""
        state = self.state
        if state not in ALLOWED[operation]:
            raise InvalidState(self.name, state, operation, fix)

    def mark(self, state: str, **fields: object) -> None:
        """Reload, move to ``state``, update fields, save: other commands may have written since."""
        fresh = load(self.paths, self.id)
        self.data = fresh.data if fresh else self.data
        self.data.update(fields, state=state)
        if state == STOPPED and "finished_at" not in fields:
            self.data["finished_at"] = time.time()
        self.save()


RECORD = "state.json"


def load(paths: Paths, container_id: str) -> Record | None:
    """A container's record, on disk or (``--rm``) under run/; None if it has none (or a torn one).

    run/ first: a ``--rm`` container made by an older minibox has its record on disk, and the
    first save moves it to run/ (Record.record_file); the one under run/ is the newer."""
    for path in _record_files(paths, container_id):
        try:
            return Record(paths, fastjson.loads(read_file(path)))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except ValueError:  # not JSON (a torn file)
            return None
    return None


def has_record(paths: Paths, container_id: str) -> bool:
    return any(os.path.exists(path) for path in _record_files(paths, container_id))


def _record_files(paths: Paths, container_id: str) -> tuple[str, str]:
    """Where a container's record may be: under run/ (``--rm``), then on disk."""
    return paths.container_runtime(container_id, RECORD), paths.container(container_id, RECORD)


def all_records(paths: Paths) -> list[Record]:
    ids: set[str] = set()
    for base in (paths.containers, paths.runtime):  # records on disk, and --rm ones under run/
        try:
            ids.update(os.listdir(base))
        except FileNotFoundError:
            pass
    records = [r for r in (load(paths, i) for i in ids) if r]
    return sorted(records, key=lambda r: r.data.get("created", 0))


def find(paths: Paths, ref: str) -> Record:
    """A container by exact name, full ID or unique ID prefix (as docker accepts them)."""
    records = all_records(paths)
    for record in records:
        if ref in (record.name, record.id):
            return record
    matches = [r for r in records if len(ref) >= 3 and r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    raise ContainerNotFound(ref)
