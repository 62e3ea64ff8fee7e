"""Build the built-in ``busybox`` image from the host's static busybox binary, with no download.

One statically linked binary (it needs no shared libraries, so it runs in an empty root) plus a
symlink per applet (``/bin/sh``, ``/bin/ls`` ... all pointing at ``/bin/busybox``), a minimal
``/etc/passwd`` and the empty directories the kernel filesystems are mounted on.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

from engine.errors import MiniboxError
from engine.spec import DEFAULT_PATH
from engine.state import Paths

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
# Tools the labs need that Debian's busybox lacks: System V IPC (the IPC namespace lesson runs
# `ipcmk -Q` inside and `ipcs` on both sides). They come from the host's util-linux, with the
# shared libraries they load, found by asking the dynamic loader (`ldd`).
EXTRA_TOOLS = ("ipcmk", "ipcs", "ipcrm")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
nogroup:x:65534:
"""


def is_static_elf(path: str) -> bool:
    """True if the ELF file has no PT_INTERP program header (no dynamic loader needed)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
            return False
        (e_phoff,) = struct.unpack_from("<Q", head, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", head, 54)
        f.seek(e_phoff)
        table = f.read(e_phentsize * e_phnum)
    return all(struct.unpack_from("<I", table, i * e_phentsize)[0] != 3 for i in range(e_phnum))


def find_static_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.exists(path) and is_static_elf(path):
            return path
    raise MiniboxError(
        "no statically linked busybox on this machine",
        "install it with `apt-get install busybox-static` (or run `make workshop`)",
    )


def copy_with_libraries(binary: str, rootfs: str, target: str) -> None:
    """Copy a dynamically linked program and every shared library it loads into ``rootfs``."""
    output = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libraries = []
    for line in output.splitlines():
        words = line.replace("=>", " ").split()
        libraries += [w for w in words if w.startswith("/")]  # skip linux-vdso: it is in the kernel
    for source, dest in [(binary, target), *((lib, lib) for lib in libraries)]:
        path = os.path.join(rootfs, dest.lstrip("/"))
        if not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copy(os.path.realpath(source), path)


def build_busybox(paths: Paths) -> str:
    """Make the image ``busybox:latest`` (one layer) in the store; return its ID."""
    from engine.images import add_layer_from_directory, create_image, timestamp

    binary = find_static_busybox()
    tmp = os.path.join(paths.images, f"busybox-build-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    # Every file gets the busybox binary's own time, and so does the image: the same busybox
    # package makes the same image ID, in every state root and on every learner's machine.
    when = int(os.stat(binary).st_mtime)
    try:
        _build_rootfs(binary, tmp)
        _set_times(tmp, when)
        diff_id, blob = add_layer_from_directory(paths, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    settings = {"Cmd": ["sh"], "Env": [f"PATH={DEFAULT_PATH}"], "WorkingDir": "/"}
    history = [{"created": timestamp(when),
                "created_by": f"minibox: built-in image from this machine's {binary} (busybox-static)"}]  # fmt: skip
    return create_image(paths, [diff_id], [blob], settings, history, tag="busybox:latest", created=timestamp(when))


def _set_times(root: str, when: int) -> None:
    for directory, dirnames, filenames in os.walk(root, topdown=False):
        for name in dirnames + filenames:
            os.utime(os.path.join(directory, name), (when, when), follow_symlinks=False)
    os.utime(root, (when, when))


def _build_rootfs(binary: str, rootfs: str) -> None:
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(rootfs, d), mode=0o755)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    os.chmod(os.path.join(rootfs, "root"), 0o700)
    shutil.copy2(binary, os.path.join(rootfs, "bin/busybox"))
    applets = subprocess.run([binary, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = os.path.join(rootfs, applet)
        if applet != "bin/busybox" and not os.path.lexists(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("/bin/busybox", link)
    for tool in EXTRA_TOOLS:
        path = shutil.which(tool)
        if path:
            copy_with_libraries(path, rootfs, f"/usr/bin/{tool}")
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("hostname", "busybox\n")):
        with open(os.path.join(rootfs, "etc", name), "w") as f:
            f.write(text)
