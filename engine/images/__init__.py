"""Images: a root filesystem directory plus its config (default command, environment).

This is the minimal store the runtime core needs: ``images/NAME/rootfs`` and
``images/NAME/config.json`` under the state root. The built-in ``busybox`` image is made on
first use from the host's statically linked busybox (Debian's ``busybox-static``), so the
workshop needs no download. Content-addressed layers and registry pulls build on this.
"""

from __future__ import annotations

import json
import os
import re

from engine.errors import ImageNotFound
from engine.state import Lock, Paths

BUILTIN = "busybox"


def normalize(ref: str) -> str:
    """``busybox:latest`` and ``library/busybox`` name the same local image as ``busybox``."""
    name = ref.removesuffix(":latest").removeprefix("docker.io/").removeprefix("library/")
    return name


class Image:
    __slots__ = ("name", "rootfs", "config")

    def __init__(self, name: str, rootfs: str, config: dict) -> None:
        self.name = name
        self.rootfs = rootfs
        self.config = config

    @property
    def default_command(self) -> list[str]:
        return list(self.config.get("Entrypoint") or []) + list(self.config.get("Cmd") or [])


def get(paths: Paths, ref: str) -> Image:
    """Look an image up by name; build the built-in busybox image the first time it is asked for."""
    name = normalize(ref)
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*", name) or ".." in name:
        raise ImageNotFound(ref)  # also keeps a reference like ../x from naming a path outside the store
    directory = os.path.join(paths.images, name)
    config_path = os.path.join(directory, "config.json")
    if not os.path.exists(config_path):
        if name != BUILTIN:
            raise ImageNotFound(ref)
        with Lock(paths):
            if not os.path.exists(config_path):
                from engine.images.builtin import build_busybox

                build_busybox(directory)
    with open(config_path) as f:
        return Image(name, os.path.join(directory, "rootfs"), json.load(f))


def list_images(paths: Paths) -> list[Image]:
    try:
        names = sorted(os.listdir(paths.images))
    except FileNotFoundError:
        return []
    return [get(paths, n) for n in names if os.path.exists(os.path.join(paths.images, n, "config.json"))]


def shifted_rootfs(image: Image, uid_offset: int, gid_offset: int) -> str:
    """A copy of the image's rootfs with every owner shifted into a user namespace's ID range.

    Inside a user namespace, files owned by host root (uid 0) belong to nobody the container knows,
    so the container's root could not change them. As docker's ``userns-remap`` does, minibox keeps
    one copy per mapping whose uid 0 files are owned by the mapped root (e.g. 100000) instead.
    """
    target = f"{image.rootfs}-shifted-{uid_offset}-{gid_offset}"
    if os.path.isdir(target):
        return target
    import shutil  # not at the top: `minibox run` without a user namespace never needs it

    tmp = f"{target}.tmp{os.getpid()}"
    shutil.copytree(image.rootfs, tmp, symlinks=True)

    def shift(entry: str) -> None:
        st = os.lstat(entry)
        os.lchown(entry, st.st_uid + uid_offset, st.st_gid + gid_offset)
        if not os.path.islink(entry):
            os.chmod(entry, st.st_mode & 0o7777)  # chown clears setuid bits; keep the mode

    shift(tmp)
    for directory, dirnames, filenames in os.walk(tmp):
        for name in dirnames + filenames:  # each entry exactly once (a directory is not shifted again)
            shift(os.path.join(directory, name))
    try:
        os.rename(tmp, target)
    except OSError:  # another command made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target
