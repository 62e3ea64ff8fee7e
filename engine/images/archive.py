"""Images in and out of files: ``minibox import`` (a root filesystem tar), ``save`` and ``load``.

``save`` writes an **OCI image layout** as a tar (``oci-layout``, ``index.json``, ``blobs/sha256/``),
and in the same tar a docker-style ``manifest.json``, so both ``minibox load`` and ``docker load``
read it (docker 25 writes the same pair). ``load`` reads either kind: an OCI layout, or a
``docker save`` tar whose ``manifest.json`` lists a config and uncompressed layer tars.

Every blob is checked against its digest before it is used, and an image is recorded only when
all of its layers are in the store: a bad archive adds nothing but blobs that ``rmi`` or the next
load can use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile

from engine import images
from engine.errors import MiniboxError
from engine.images.store import Store, StoreLock
from engine.spec import DEFAULT_PATH
from engine.state import Lock, Paths

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


def _copy_as_blob(store: Store, source: str) -> tuple[str, str]:
    """Copy a file into the store as a blob; returns (digest, media type by its first bytes)."""
    os.makedirs(store.root, exist_ok=True)
    tmp = os.path.join(store.root, f"incoming-{os.getpid()}")
    digest = hashlib.sha256()
    with _open_input(source) as src, open(tmp, "wb") as dst:
        head = src.read(2)
        digest.update(head)
        dst.write(head)
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
    blob = f"sha256:{digest.hexdigest()}"
    if store.has_blob(blob):
        os.unlink(tmp)
    else:
        store.adopt_blob(tmp, blob)
    return blob, store.blob_media_type(blob)


def _open_input(path: str) -> BinaryIO:
    """The file, or standard input for ``-`` (as docker's ``load`` and ``import -``)."""
    return os.fdopen(os.dup(0), "rb") if path == "-" else open(path, "rb")


def _require_file(path: str, fix: str) -> None:
    if path == "-":  # standard input: a tar piped in, never a terminal (nothing would come)
        if os.isatty(0):
            raise MiniboxError("refusing to read a tar from a terminal", f"pipe one in (< FILE), or {fix}")
        return
    if not os.path.exists(path):
        raise MiniboxError(f"no such file: {path}", fix)
    if not os.path.isfile(path):  # /dev/null, a directory, a fifo: nothing a tar could be read from
        raise MiniboxError(f"{path} is not a regular file", fix)


def import_rootfs(paths: Paths, tar_path: str, tag: str = "", command: list[str] | None = None) -> str:
    """``minibox import ROOTFS.tar [NAME[:TAG]]``: a one-layer image of a root filesystem tar."""
    _require_file(tar_path, "give the path of a .tar or .tar.gz of a root filesystem")
    store = Store(paths)
    with StoreLock(paths), Lock(paths):
        try:
            blob, media = _copy_as_blob(store, tar_path)
        except OSError as e:
            from engine.images.layers import disk_error

            if os.path.exists(os.path.join(store.root, f"incoming-{os.getpid()}")):
                os.unlink(os.path.join(store.root, f"incoming-{os.getpid()}"))
            raise disk_error(e, "copying the tar into the image store") from None
        from engine.images.layers import NotATar

        try:
            diff_id = store.add_layer(blob)
        except NotATar as e:
            where = "standard input" if tar_path == "-" else tar_path
            raise MiniboxError(
                f"{where} is not a tar of a root filesystem ({e.detail})",
                "give a .tar or .tar.gz, e.g. made with `tar -C ROOTFS -cf rootfs.tar .`",
            ) from None
        settings = {"Cmd": command or ["sh"], "Env": [f"PATH={DEFAULT_PATH}"]}
        history = [{"created": images.timestamp(), "created_by": f"minibox import {os.path.basename(tar_path)}"}]
        return images.create_image(paths, [diff_id], [blob], settings, history, tag, media_types=[media])


# --- save ----------------------------------------------------------------------------------------


def save(paths: Paths, refs: list[str], out_path: str) -> None:
    """``minibox save -o FILE IMAGE...``: an OCI layout (plus docker's manifest.json) in a tar."""
    store = Store(paths)
    chosen = [(ref, images.get(paths, ref)) for ref in refs]
    manifests, docker_manifest, blobs = [], [], set()
    for ref, image in chosen:
        manifest = store.manifest(image.id)
        manifest_bytes = json.dumps(manifest, indent=2).encode()
        manifest_digest = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}"
        entry = {"mediaType": images.MEDIA_MANIFEST, "digest": manifest_digest, "size": len(manifest_bytes)}
        by_id = ref.startswith("sha256:") or re.fullmatch(r"[0-9a-f]{6,64}", ref)  # an ID names no repository
        tag = "" if by_id else images.normalize(ref)
        if tag:
            entry["annotations"] = {
                "io.containerd.image.name": tag,
                "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[1],
            }
        manifests.append((entry, manifest_bytes))
        blobs.add(image.id)
        blobs.update(layer["digest"] for layer in manifest["layers"])
        docker_manifest.append({
            "Config": f"blobs/sha256/{image.id[7:]}", "RepoTags": [tag] if tag else [],
            "Layers": [f"blobs/sha256/{layer['digest'][7:]}" for layer in manifest["layers"]],
        })  # fmt: skip
    if out_path == "-":  # as `docker save`: the tar on standard output
        import sys

        if sys.stdout.isatty():
            raise MiniboxError("refusing to write a tar to a terminal", "redirect it (> images.tar) or use -o FILE")
        sys.stdout.flush()
        try:
            with os.fdopen(os.dup(sys.stdout.fileno()), "wb") as out, tarfile.open(fileobj=out, mode="w|") as tar:
                _write_layout(tar, store, manifests, docker_manifest, blobs)
        except OSError as e:
            from engine.images.layers import disk_error

            raise disk_error(e, "writing the tar to standard output") from None
        return
    _check_output(out_path)
    tmp = f"{out_path}.tmp{os.getpid()}"
    try:
        with tarfile.open(tmp, "w") as tar:
            _write_layout(tar, store, manifests, docker_manifest, blobs)
        os.rename(tmp, out_path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            from engine.images.layers import disk_error

            raise disk_error(e, f"writing {out_path}") from None
        raise


def _check_output(out_path: str) -> None:
    """A new file in an existing directory, or an old regular file: never a device, pipe or link."""
    import stat

    from engine.errors import BadValue

    try:
        st = os.lstat(out_path)
    except FileNotFoundError:
        if not os.path.isdir(os.path.dirname(os.path.abspath(out_path))):
            raise BadValue("-o", out_path, "a file in a directory that exists") from None
        return
    if not stat.S_ISREG(st.st_mode):
        raise BadValue("-o", out_path, "a new file or a regular one to replace (not a device, pipe, link or directory)")


def _write_layout(tar: tarfile.TarFile, store: Store, manifests: list, docker_manifest: list, blobs: set) -> None:
    _add_bytes(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [e for e, _ in manifests]}
    _add_bytes(tar, "index.json", json.dumps(index, indent=2).encode())
    _add_bytes(tar, "manifest.json", json.dumps(docker_manifest, indent=2).encode())
    for entry, manifest_bytes in manifests:
        _add_bytes(tar, f"blobs/sha256/{entry['digest'][7:]}", manifest_bytes)
    for blob in sorted(blobs):
        tar.add(store.blob_path(blob), arcname=f"blobs/sha256/{blob[7:]}")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    import io

    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


# --- load ----------------------------------------------------------------------------------------


def load(paths: Paths, archive: str) -> list[str]:
    """``minibox load -i FILE``: the images of an OCI layout tar or a ``docker save`` tar."""
    _require_file(archive, "give the path of a tar made by `minibox save` or `docker save`")
    store = Store(paths)
    os.makedirs(store.root, exist_ok=True)
    work = tempfile.mkdtemp(prefix=f"load-{os.getpid()}-", dir=store.root)
    try:
        try:
            with _open_input(archive) as source, tarfile.open(fileobj=source, mode="r|*") as tar:
                for member in tar:
                    if member.isfile() and _plain_name(member.name):
                        target = os.path.join(work, member.name)
                        os.makedirs(os.path.dirname(target), exist_ok=True)
                        with open(target, "wb") as out:
                            shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
        except tarfile.TarError as e:
            detail = (str(e).splitlines() or ["?"])[0].rstrip(":")
            where = "standard input" if archive == "-" else archive
            raise MiniboxError(f"{where} is not a readable tar ({detail})", "save the image again") from None
        before: set[str] | None = None
        try:
            with StoreLock(paths), Lock(paths):
                before = _contents(store)
                if os.path.exists(os.path.join(work, "index.json")):
                    return _load_oci(paths, store, work)
                if os.path.exists(os.path.join(work, "manifest.json")):
                    return _load_docker(paths, store, work)
        except BaseException:  # Ctrl-C or a bad image half-way: take back what this load added
            if before is not None:
                _take_back(paths, store, before)
            raise
        raise MiniboxError(
            f"{'standard input' if archive == '-' else archive} holds neither index.json (OCI layout) nor "
            "manifest.json (docker save)",
            "give a tar made by `minibox save`, `docker save` or `skopeo copy ... oci-archive:`",
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _contents(store: Store) -> set[str]:
    blobs = os.path.join(store.root, "blobs", "sha256")
    return {f"sha256:{n}" for n in (os.listdir(blobs) if os.path.isdir(blobs) else [])} | set(store.all_layers())


def _take_back(paths: Paths, store: Store, before: set[str]) -> None:
    """Remove the blobs and layers that appeared since ``before`` and no image uses.

    Deleting waits for the store's exclusive lock, as ``prune`` does: no pull or build is then
    between writing a layer and the image that uses it, so whatever is new and unused is this
    load's (or garbage a failed operation left), whichever archive format it came in.
    """
    from engine.images import _collect_layers

    with StoreLock(paths, exclusive=True), Lock(paths):
        added = _contents(store) - before
        if added:
            _collect_layers(paths, store, only=added)


def _plain_name(name: str) -> bool:
    parts = name.split("/")
    return not name.startswith("/") and ".." not in parts


def _verified_blob(store: Store, work: str, relative: str, digest: str | None = None) -> str:
    """Move a file of the archive into the store after checking (or computing) its digest."""
    from engine.images.layers import DigestMismatch

    path = os.path.join(work, relative)
    if not os.path.isfile(path):
        raise MiniboxError(f"the archive lacks {relative}", "it is incomplete: save it again")
    with open(path, "rb") as f:
        got = f"sha256:{hashlib.file_digest(f, 'sha256').hexdigest()}"
    if digest and got != digest:
        raise DigestMismatch(relative, digest, got, "the archive was damaged or changed after saving: save it again")
    if not store.has_blob(got):
        store.adopt_blob(path, got)
    return got


def _load_oci(paths: Paths, store: Store, work: str) -> list[str]:
    with open(os.path.join(work, "index.json")) as f:
        index = json.load(f)
    loaded = []
    for entry in index.get("manifests", []):
        manifest_digest = _verified_blob(store, work, f"blobs/sha256/{entry['digest'][7:]}", entry["digest"])
        manifest = store.read_json(manifest_digest)
        if "manifests" in manifest:  # a nested index (multi-platform): take this machine's
            from engine.images.platform import choose

            entry = choose(manifest["manifests"])
            manifest_digest = _verified_blob(store, work, f"blobs/sha256/{entry['digest'][7:]}", entry["digest"])
            manifest = store.read_json(manifest_digest)
        config_digest = manifest["config"]["digest"]
        _verified_blob(store, work, f"blobs/sha256/{config_digest[7:]}", config_digest)
        diff_ids = store.read_json(config_digest)["rootfs"]["diff_ids"]
        for layer, diff_id in zip(manifest["layers"], diff_ids, strict=True):
            blob = _verified_blob(store, work, f"blobs/sha256/{layer['digest'][7:]}", layer["digest"])
            store.add_layer(blob, diff_id)
        store.save_manifest(config_digest, manifest)
        name = _name_in(entry.get("annotations") or {})
        if name:
            images.set_tag(paths, config_digest, name)
            loaded.append(f"Loaded image: {images.normalize(name)}")
        else:
            loaded.append(f"Loaded image ID: {config_digest}")
    return loaded


def _name_in(annotations: dict) -> str:
    """The image's NAME:TAG from an index entry's annotations ("" if it has none usable).

    containerd and docker put the full name in ``io.containerd.image.name``; the OCI annotation
    ``org.opencontainers.image.ref.name`` is often only a tag ("latest"), which names nothing here.
    """
    name = annotations.get("io.containerd.image.name") or annotations.get("org.opencontainers.image.ref.name", "")
    try:
        return images.normalize(name) if name and (":" in name or "/" in name) else ""
    except MiniboxError:
        return ""


def _load_docker(paths: Paths, store: Store, work: str) -> list[str]:
    with open(os.path.join(work, "manifest.json")) as f:
        entries = json.load(f)
    loaded = []
    for entry in entries:
        config_digest = _verified_blob(store, work, entry["Config"])
        config = store.read_json(config_digest)
        blobs, media_types = [], []
        for layer_path, diff_id in zip(entry["Layers"], config["rootfs"]["diff_ids"], strict=True):
            blob = _verified_blob(store, work, layer_path)
            store.add_layer(blob, diff_id)
            blobs.append(blob)
            media_types.append(store.blob_media_type(blob))
        config_bytes = open(store.blob_path(config_digest), "rb").read()
        manifest = {
            "schemaVersion": 2, "mediaType": images.MEDIA_MANIFEST,
            "config": {"mediaType": images.MEDIA_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": m, "digest": b, "size": os.path.getsize(store.blob_path(b))}
                       for b, m in zip(blobs, media_types, strict=True)],
        }  # fmt: skip
        store.save_manifest(config_digest, manifest)
        for tag in entry.get("RepoTags") or []:
            images.set_tag(paths, config_digest, tag)
            loaded.append(f"Loaded image: {images.normalize(tag)}")
        if not entry.get("RepoTags"):
            loaded.append(f"Loaded image ID: {config_digest}")
    return loaded
