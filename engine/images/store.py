"""The content-addressed image store, on disk under ``/var/lib/minibox/images``.

    blobs/sha256/HEX          layer tars (gzip), image configs, manifests: named by their digest
    layers/HEX/diff/          a layer unpacked for overlayfs, named by its diff_id (sha256 of the tar);
                              a pulled image's, when its first container is made (images.unpack_layers)
    layers/HEX/layer.json     which blob it came from, its size
    manifests/HEX.json        per image (HEX = the config's digest, the image ID): its manifest
    repositories.json         NAME:TAG -> image ID

The same layer (same diff_id) is stored once, however many images use it. Everything is written
to a temporary name and renamed into place: a reader sees a blob or layer whole or not at all.
What an interrupted import leaves is never used: its temporary files go with `minibox gc`, and
whole blobs and layers no image uses with `minibox prune`.

Adding and deleting take turns through ``StoreLock`` (see there): a pull writes its blobs first
and the image that ties them together last, and a ``prune`` in between must not see them as unused.
"""

from __future__ import annotations

import errno
import fcntl
import os

from engine import fastjson
from engine.errors import MiniboxError
from engine.state import Paths, read_file, write_json_atomic


class InterruptedDownload(MiniboxError):
    """A blob's transfer broke off: what arrived stays as ``BLOB.partial``, and the next pull resumes it."""

    def __init__(self, digest: str, received: int, cause: BaseException) -> None:
        why = str(cause) or type(cause).__name__
        super().__init__(f"the download of {digest[7:19]} broke off after {received} bytes ({why})",
                         "run the same pull again: it resumes where this one stopped")  # fmt: skip


class DigestMismatch(MiniboxError):
    def __init__(self, what: str, expected: str, got: str,
                 fix: str = "the download was corrupted or tampered with; pull it again") -> None:  # fmt: skip
        super().__init__(f"{what}: digest {got[:19]}… does not match the expected {expected[:19]}…", fix)


class NoSpace(MiniboxError):
    """The disk (or a quota) is full while writing to the store."""


def disk_error(error: OSError, doing: str) -> BaseException:
    """A full disk (or quota) as a one-line error; any other OSError as it is."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(f"no space left on the device while {doing} ({error.filename or 'the image store'})",
                       "free some space (`minibox rmi` unused images, `minibox gc`), then try again")  # fmt: skip
    return error


class StoreLock:
    """``flock(2)`` on ``run/images.lock``: shared while adding to the store, exclusive while deleting.

    Pull, build, commit, import and load hold it *shared* for their whole run (any number at
    once): they write blobs and layers, or find them already there, well before the image that
    uses them exists. ``rmi`` and ``prune`` hold it *exclusive*: they wait until no addition is
    under way, so nothing they see as unused is about to be used. Taken before the engine's
    state lock (``engine.state.Lock``), never while holding it: one order, no deadlock.
    Each ``with`` opens the file anew, so threads of one process (the TUI's) take turns as well.
    """

    def __init__(self, paths: Paths, exclusive: bool = False) -> None:
        self.path = os.path.join(paths.run, "images.lock")
        self.mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        self.fd = -1

    def __enter__(self) -> StoreLock:
        os.makedirs(os.path.dirname(self.path), mode=0o711, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, self.mode)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the file releases the flock


def unpacked_size(directory: str) -> int:
    """Bytes of the files under ``directory`` (a layer's diff), as ``images`` and ``history`` show:
    every entry but a directory, by its lstat size (a symbolic link's is its target's text)."""
    total = 0
    for parent, directories, files in os.walk(directory):  # (a link to a directory is in directories)
        links = [name for name in directories if os.path.islink(os.path.join(parent, name))]
        total += sum(os.lstat(os.path.join(parent, name)).st_size for name in files + links)
    return total


_HEX_DIGITS = frozenset("0123456789abcdef")


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not set(value) <= _HEX_DIGITS:
        raise MiniboxError(f"unsupported or malformed digest {digest!r}", "only sha256 digests are supported")
    return value


class Store:
    def __init__(self, paths: Paths) -> None:
        self.root = paths.images

    # --- blobs ---------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> str:
        return os.path.join(self.root, "blobs", "sha256", _hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.exists(self.blob_path(digest))

    def put_blob(self, data: bytes) -> str:
        import hashlib  # 2 ms to import: not on the path of `minibox run`, which only reads the store

        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        path = self.blob_path(digest)
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, path)
        return digest

    def adopt_blob(self, tmp_path: str, digest: str) -> str:
        """Move a verified temporary file into the store as the blob ``digest``."""
        path = self.blob_path(digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.rename(tmp_path, path)
        return path

    def read_json(self, digest: str) -> dict:
        return fastjson.loads(read_file(self.blob_path(digest)))

    # --- layers --------------------------------------------------------------------------------

    def layer_dir(self, diff_id: str) -> str:
        return os.path.join(self.root, "layers", _hex(diff_id))

    def layer_diff(self, diff_id: str) -> str:
        return os.path.join(self.layer_dir(diff_id), "diff")

    def has_layer(self, diff_id: str) -> bool:
        return os.path.exists(os.path.join(self.layer_dir(diff_id), "layer.json"))

    def blob_media_type(self, digest: str) -> str:
        """An OCI layer media type, from the blob's first bytes: gzip, zstd or a plain tar."""
        with open(self.blob_path(digest), "rb") as f:
            head = f.read(4)
        kind = "+gzip" if head[:2] == b"\x1f\x8b" else "+zstd" if head == b"\x28\xb5\x2f\xfd" else ""
        return f"application/vnd.oci.image.layer.v1.tar{kind}"

    def layer_descriptor(self, diff_id: str) -> dict | None:
        """The manifest entry (media type, digest, size) of the blob this store keeps for a layer
        it has; None if that blob is gone."""
        try:
            with open(os.path.join(self.layer_dir(diff_id), "layer.json")) as f:
                blob = fastjson.load(f)["blob"]
            return {"mediaType": self.blob_media_type(blob), "digest": blob,
                    "size": os.path.getsize(self.blob_path(blob))}  # fmt: skip
        except (OSError, KeyError, ValueError):
            return None

    def add_layer(self, blob_digest: str, diff_id: str | None = None) -> str:
        """Unpack blob ``blob_digest`` as a layer (nothing to do if its diff_id is known); any
        error leaves nothing (it is unpacked aside, then renamed into place)."""
        import shutil

        from engine.images.layers import unpack

        if diff_id and self.has_layer(diff_id):
            return diff_id
        staging = os.path.join(self.root, "layers", f"staging-{os.getpid()}-{blob_digest[7:19]}")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(staging)
        diff = os.path.join(staging, "diff")
        try:
            got = unpack(self.blob_path(blob_digest), diff, blob_digest, diff_id)
            if self.has_layer(got):
                return got
            info = {"diff_id": got, "blob": blob_digest, "size": os.path.getsize(self.blob_path(blob_digest)),
                    "unpacked_size": unpacked_size(diff)}  # fmt: skip
            write_json_atomic(os.path.join(staging, "layer.json"), info)
            try:
                os.rename(staging, self.layer_dir(got))
            except OSError:
                if not self.has_layer(got):  # not another pull unpacking the same layer at once
                    raise
            return got
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def layer_info(self, diff_id: str) -> dict:
        with open(os.path.join(self.layer_dir(diff_id), "layer.json")) as f:
            return fastjson.load(f)

    def all_layers(self) -> list[str]:
        try:
            return [f"sha256:{n}" for n in os.listdir(os.path.join(self.root, "layers")) if len(n) == 64]
        except FileNotFoundError:
            return []

    # --- images and names ----------------------------------------------------------------------

    def manifest_path(self, image_id: str) -> str:
        return os.path.join(self.root, "manifests", f"{_hex(image_id)}.json")

    def save_manifest(self, image_id: str, manifest: dict) -> None:
        os.makedirs(os.path.join(self.root, "manifests"), exist_ok=True)
        write_json_atomic(self.manifest_path(image_id), manifest)

    def manifest(self, image_id: str) -> dict:
        return fastjson.loads(read_file(self.manifest_path(image_id)))

    def image_ids(self) -> list[str]:
        try:
            names = os.listdir(os.path.join(self.root, "manifests"))
        except FileNotFoundError:
            return []
        return [f"sha256:{n[:-5]}" for n in names if n.endswith(".json") and len(n) == 69]

    def repositories(self) -> dict[str, str]:
        try:
            return fastjson.loads(read_file(os.path.join(self.root, "repositories.json")))
        except FileNotFoundError:
            return {}

    def leftovers(self) -> list[str]:
        """Temporary files and directories of imports whose process is gone (killed, crashed)."""
        import re

        found = []
        for base in (self.root, os.path.join(self.root, "layers"), os.path.join(self.root, "blobs", "sha256")):
            try:
                names = os.listdir(base)
            except FileNotFoundError:
                continue
            for name in names:
                match = re.match(r"(staging|incoming|new-blob|load|busybox-build)-(\d+)", name) or re.search(
                    r"\.(?:tmp|unpacking)(\d+)$", name
                )
                if match and not os.path.exists(f"/proc/{match.groups()[-1]}"):
                    found.append(os.path.join(base, name))
        return sorted(set(found))

    def save_repositories(self, names: dict[str, str]) -> None:
        os.makedirs(self.root, exist_ok=True)
        write_json_atomic(os.path.join(self.root, "repositories.json"), dict(sorted(names.items())))
