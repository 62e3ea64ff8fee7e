"""Images: a stack of read-only layers plus a config (default command, environment, history).

An image, as the OCI image spec has it, is a **config** (JSON: what to run, and
``rootfs.diff_ids``, the layers bottom to top) and a **manifest** (which compressed blob holds
each layer). Its ID is the config's sha256 digest. A container runs on overlayfs with the image's
layer directories as ``lowerdir`` (top first), an init layer of its own above them, and its
writable upper layer (see ``engine/rootfs``). The store is in ``store.py``; layer tars and
whiteouts in ``layers.py``. A pulled image's layers stay compressed blobs until its first
container: ``unpack_layers`` unpacks them then.

The built-in ``busybox`` image is made on first use from the host's statically linked busybox
(Debian's ``busybox-static``), so the workshop needs no download.
"""

from __future__ import annotations

import os
import time

from engine import fastjson
from engine.errors import BadValue, ImageNotFound, MiniboxError
from engine.images.store import NoSpace, Store, StoreLock, unpacked_size

__all__ = ["BUILTIN", "Image", "MiniboxError", "Store", "StoreLock", "create_image", "get", "list_images", "normalize",
           "parse_ref", "remove", "set_tag", "shifted_layers", "size", "inspect", "timestamp"]  # fmt: skip
from engine.state import Lock, Paths

BUILTIN = "busybox"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# a repository name as the OCI distribution spec has it (a regular expression, compiled when used)
NAME_PATTERN = r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"


def split_ref(ref: str) -> tuple[str, str]:
    """``busybox`` -> ("busybox", "latest"); ``localhost:5000/team/app:v1`` -> ("localhost:5000/team/app", "v1").
    Not checked: ``parse_ref`` does that too."""
    name, tag = ref, "latest"
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = ref.rsplit(":", 1)
    for prefix in ("docker.io/library/", "docker.io/", "library/"):
        name = name.removeprefix(prefix)
    return name, tag


def parse_ref(ref: str, what: str = "image") -> tuple[str, str]:
    """``split_ref``, and a ``BadValue`` (naming ``what``) if the name or the tag is not one a
    registry would take."""
    import re  # not at the top: a name found in the store was checked when it was stored (see _resolve)

    name, tag = split_ref(ref)
    registry, _, path = name.partition("/") if "/" in name else ("", "", name)
    if registry and not ("." in registry or ":" in registry or registry == "localhost"):
        registry, path = "", name  # "team/app": a path, not a registry
    valid = re.fullmatch(NAME_PATTERN, path) and (not registry or re.fullmatch(r"[a-zA-Z0-9.-]+(?::\d+)?", registry))
    if not valid or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise BadValue(what, ref, "NAME[:TAG] in lower case, e.g. busybox or localhost:5000/team/app:v1")
    return name, tag


def is_hex_id(text: str, shortest: int = 6, longest: int = 64) -> bool:
    """An image ID or a prefix of one (``7fb9c1e021b3``): lower-case hex digits."""
    return shortest <= len(text) <= longest and all(c in "0123456789abcdef" for c in text)


def normalize(ref: str) -> str:
    name, tag = parse_ref(ref)
    return f"{name}:{tag}"


class Image:
    """One image: its ID, config, and layer directories (bottom first). A pulled image's layers
    are unpacked when its first container needs them (``unpack_layers``): until then some of
    these directories do not exist."""

    __slots__ = ("name", "id", "config", "layers", "store")

    def __init__(self, name: str, image_id: str, config: dict, layers: list[str], store: Store) -> None:
        self.name, self.id, self.config, self.layers, self.store = name, image_id, config, layers, store

    @property
    def diff_ids(self) -> list[str]:
        return (self.config.get("rootfs") or {}).get("diff_ids") or []

    def layer_sizes(self) -> list[int]:
        """Each layer's size unpacked (as docker counts), read from its tar if not unpacked yet."""
        blobs = None
        sizes = []
        for index, layer in enumerate(self.layers):
            if os.path.isdir(layer):
                sizes.append(layer_size(layer))
                continue
            blobs = blobs or self.store.manifest(self.id)["layers"]
            import tarfile  # (not on `minibox run`'s path)

            from engine.images import layers

            try:
                sizes.append(layers.files_size(self.store.blob_path(blobs[index]["digest"])))
            except (tarfile.TarError, EOFError, OSError, ValueError, MiniboxError):  # a blob it cannot read
                sizes.append(blobs[index].get("size", 0))  # (run says why): the download's size
        return sizes

    @property
    def settings(self) -> dict:
        return self.config.get("config") or {}

    @property
    def default_command(self) -> list[str]:
        return list(self.settings.get("Entrypoint") or []) + list(self.settings.get("Cmd") or [])

    @property
    def env(self) -> list[str]:
        return list(self.settings.get("Env") or [])

    @property
    def lowerdir(self) -> str:
        """overlayfs' ``lowerdir=`` value: the top layer first."""
        return ":".join(reversed(self.layers))

    def find(self, relative: str) -> str | None:
        """Where a path is, as the container will see it: in the top-most layer that has it
        (or None: absent, deleted by a whiteout, or hidden by an opaque directory above)."""
        return find_in_layers(self.layers, relative)

    def read_text(self, relative: str) -> str | None:
        path = self.find(relative)
        if path is None or not os.path.isfile(path):
            return None
        with open(path, errors="replace") as f:
            return f.read()


def find_in_layers(layers: list[str], relative: str) -> str | None:
    """``find`` over layer directories given bottom first (see ``Image.find``)."""
    from engine.images.layers import is_opaque, is_whiteout

    parts = [p for p in relative.strip("/").split("/") if p]
    for layer in reversed(layers):
        hides_lower = False
        for depth in range(1, len(parts) + 1):
            path = os.path.join(layer, *parts[:depth])
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                break  # not in this layer
            if is_whiteout(st):
                return None  # deleted here: hidden in every layer below
            if depth == len(parts):
                return path
            if is_opaque(path):
                hides_lower = True  # a directory made anew here: nothing below shows through
        if hides_lower:
            return None
    return None


# --- finding images ------------------------------------------------------------------------------


def get(paths: Paths, ref: str) -> Image:
    """An image by NAME[:TAG], ID (``sha256:…``) or ID prefix; the built-in busybox is made on first use."""
    store = Store(paths)
    image_id = _resolve(store, ref)
    if image_id is None and ref != BUILTIN and normalize(ref) == f"{BUILTIN}:latest":
        ref = BUILTIN
    if image_id is None and ref == BUILTIN:
        with StoreLock(paths), Lock(paths):
            image_id = _resolve(store, ref)
            if image_id is None:
                from engine.images.builtin import build_busybox

                image_id = build_busybox(paths)
    if image_id is None:
        raise ImageNotFound(ref)
    return load(paths, image_id, ref)


def _resolve(store: Store, ref: str) -> str | None:
    if ref.startswith("sha256:") and len(ref) == 71 and os.path.exists(store.manifest_path(ref)):
        return ref
    if ref.startswith("sha256:") and is_hex_id(ref[7:], 6, 63):  # sha256:7fb9c1e021b3
        ref = ref[7:]
    if is_hex_id(ref):
        matches = [i for i in store.image_ids() if i[7:].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
    repositories = store.repositories()
    name, tag = split_ref(ref)
    if f"{name}:{tag}" in repositories:  # tagged, so checked when it was tagged
        return repositories[f"{name}:{tag}"]
    normalize(ref)  # a malformed name is a BadValue, not "not found"
    return None


def load(paths: Paths, image_id: str, name: str = "") -> Image:
    store = Store(paths)
    config = store.read_json(image_id)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    return Image(name or image_id[7:19], image_id, config, [store.layer_diff(d) for d in diff_ids], store)


def unpack_layers(paths: Paths, image: Image) -> int:
    """Unpack the image's layers that are still only blobs (a pull downloads them, no more), each
    checked against its diff ID; return how many. Called when a container of the image is made,
    as containerd's snapshotter unpacks a fetched image when a container first needs it."""
    store = Store(paths)
    first_of_each = {diff_id: i for i, diff_id in reversed(list(enumerate(image.diff_ids)))}  # listed twice: once
    missing = sorted(i for diff_id, i in first_of_each.items() if not store.has_layer(diff_id))
    if not missing:
        return 0
    with StoreLock(paths):  # an addition to the store: prune and rmi wait
        blobs = store.manifest(image.id)["layers"]
        if len(missing) == 1:
            _unpack_layer(store, image, missing[0], blobs[missing[0]]["digest"])
        else:  # side by side, as a pull downloads: gunzip, sha256 and file system calls release the GIL
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(missing)) as pool:
                done = [pool.submit(_unpack_layer, store, image, i, blobs[i]["digest"]) for i in missing]
                for future in done:
                    future.result()  # the first error, once every layer has finished or failed
    return len(missing)


def _unpack_layer(store: Store, image: Image, index: int, blob: str) -> None:
    try:
        store.add_layer(blob, image.diff_ids[index])
    except NoSpace:
        raise
    except MiniboxError as e:  # a digest that does not match, an unsafe entry, not a tar
        raise MiniboxError(
            f"image {image.name}: layer {index + 1} ({blob[7:19]}) cannot be unpacked: {e.what}",
            f"the image is broken: remove it (`minibox rmi {image.name}`) and pull it again",
        ) from None


def inspect(paths: Paths, ref: str) -> dict:
    """An image as ``minibox inspect`` shows it (docker's field names where they exist)."""
    image = get(paths, ref)
    store = Store(paths)
    return {
        "Id": image.id,
        "RepoTags": sorted(name for name, i in store.repositories().items() if i == image.id),
        "Created": image.config.get("created"),
        "Config": image.settings,
        "RootFS": {"Type": "layers", "Layers": image.config["rootfs"]["diff_ids"]},
        "Manifest": store.manifest(image.id),
        "History": image.config.get("history") or [],
        # overlayfs' view: what a container of this image stacks, top first (as docker's overlay2 shows).
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": image.lowerdir}},
    }


def list_images(paths: Paths) -> list[tuple[str, Image]]:
    """(NAME:TAG, image) for every tag, then untagged images as ("<none>", image)."""
    store = Store(paths)
    tags = store.repositories()
    found = [(ref, load(paths, image_id, ref)) for ref, image_id in tags.items()]
    tagged = set(tags.values())
    try:  # a build's intermediate images (one per step, and those a `--no-cache` build replaced) are not shown
        with open(os.path.join(paths.images, "build-cache.json")) as f:
            intermediate = set(fastjson.load(f).values())
    except FileNotFoundError:
        intermediate = set()
    if intermediate:  # ...unless a container uses one (a built image `rmi -f` kept for it)
        from engine import state

        intermediate -= {r.data.get("image_id") for r in state.all_records(paths)}
    found += [("<none>", load(paths, i)) for i in store.image_ids() if i not in tagged and i not in intermediate]
    return found


def size(image: Image) -> int:
    """Bytes of the image's files, unpacked (as docker's ``images`` counts; ``history`` shows each layer's)."""
    return sum(image.layer_sizes())


def layer_size(layer: str) -> int:
    """A layer's unpacked size: noted in layer.json when it was unpacked (counted again if not)."""
    try:
        with open(os.path.join(os.path.dirname(layer), "layer.json")) as f:
            return fastjson.load(f)["unpacked_size"]
    except (OSError, KeyError, ValueError):
        return unpacked_size(layer)


# --- making images -------------------------------------------------------------------------------


def create_image(
    paths: Paths,
    diff_ids: list[str],
    blobs: list[str],
    settings: dict,
    history: list[dict],
    tag: str = "",
    media_types: list[str] | None = None,
    created: str = "",
) -> str:
    """Record an image whose layers are in the store already; return its ID (and tag it)."""
    store = Store(paths)
    config = {
        "created": created or timestamp(), "architecture": "amd64", "os": "linux", "config": settings,
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history,
    }  # fmt: skip
    import json

    config_bytes = json.dumps(config, indent=2, sort_keys=True).encode()
    image_id = store.put_blob(config_bytes)
    manifest = {
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": image_id, "size": len(config_bytes)},
        "layers": [{"mediaType": media, "digest": blob, "size": os.path.getsize(store.blob_path(blob))}
                   for blob, media in zip(blobs, media_types or [MEDIA_LAYER_GZIP] * len(blobs), strict=True)],
    }  # fmt: skip
    store.save_manifest(image_id, manifest)
    if tag:
        set_tag(paths, image_id, tag)
    return image_id


def timestamp(when: float | None = None) -> str:
    """Now (or ``when``), as image configs write times (RFC 3339, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def set_tag(paths: Paths, image_id: str, ref: str) -> str:
    store = Store(paths)
    name = normalize(ref)
    with Lock(paths):
        names = store.repositories()
        names[name] = image_id
        store.save_repositories(names)
    return name


def add_layer_from_directory(paths: Paths, directory: str) -> tuple[str, str]:
    """Pack ``directory`` (overlay format: whiteouts as 0/0 devices) as a gzip layer; store it.

    Returns (diff_id, blob digest). The blob is unpacked again to make the layer's directory, so
    what containers run on is exactly what ``save`` and a registry would get.
    """
    import gzip
    import hashlib
    import io

    from engine.images.layers import pack

    store = Store(paths)
    tmp = os.path.join(paths.images, f"new-blob-{os.getpid()}")
    os.makedirs(paths.images, exist_ok=True)
    try:
        with open(tmp, "wb") as raw:
            # No file name and no time in the gzip header: the same files give the same blob
            # digest in every store (the built-in busybox too), so their layers are shared.
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
                diff_id = pack(directory, io.BufferedWriter(gz))  # type: ignore[arg-type]
        with open(tmp, "rb") as f:
            blob = f"sha256:{hashlib.file_digest(f, 'sha256').hexdigest()}"
        if not store.has_blob(blob):
            store.adopt_blob(tmp, blob)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    store.add_layer(blob, diff_id)
    return diff_id, blob


# --- removing images ------------------------------------------------------------------------------


def remove(paths: Paths, ref: str, force: bool = False) -> list[str]:
    """``minibox rmi``: untag; delete the image and the layers nothing else uses.

    As docker: one of several names of an image is only untagged. The last name is refused while
    a container (even a stopped one) was made from the image, unless ``force``; forced, the image
    loses its names but stays (as ``<none>``) for as long as a container needs it (``exec``,
    ``commit``), and a later ``rmi ID`` deletes it.
    """
    from engine import state

    store = Store(paths)
    with StoreLock(paths, exclusive=True), Lock(paths):
        image_id = _resolve(store, ref)  # not get(): it would make the built-in busybox, under our locks
        if image_id is None:
            raise ImageNotFound(ref)
        image = load(paths, image_id, ref)
        names = store.repositories()
        tags = [n for n, i in names.items() if i == image.id]
        explicit = normalize(ref) if not ref.startswith("sha256:") and not is_hex_id(ref) else ""
        if explicit in names and len(tags) > 1:
            del names[explicit]
            store.save_repositories(names)
            return [f"Untagged: {explicit}"]
        if not explicit and len(tags) > 1 and not force:  # by ID: which of its names was meant?
            raise MiniboxError(
                f"image {ref!r} has {len(tags)} names ({', '.join(sorted(tags))})",
                "remove one name at a time (`minibox rmi NAME:TAG`), or all of them with `minibox rmi -f`",
            )
        users = [r.name for r in state.all_records(paths) if r.data.get("image_id") == image.id]
        if users and not force:
            raise MiniboxError(
                f"image {ref!r} is used by container(s) {', '.join(users)}",
                f"remove them first (`minibox rm -f {' '.join(users)}`); `minibox rmi -f` only takes its name "
                "away while they exist",
            )
        done = []
        for name in tags:
            if not explicit or name == explicit:
                del names[name]
                done.append(f"Untagged: {name}")
        store.save_repositories(names)
        if image.id in names.values():
            return done
        if users:
            done.append(f"Kept: {image.id[7:19]} (untagged; container(s) {', '.join(users)} still use it: "
                        f"`minibox rmi {image.id[7:19]}` deletes it once they are removed)")  # fmt: skip
            return done
        had = {image.id, *(layer["digest"] for layer in store.manifest(image.id)["layers"])}
        had.update(image.config["rootfs"]["diff_ids"])
        os.unlink(store.manifest_path(image.id))
        done.append(f"Deleted: {image.id}")
        done += _collect_layers(paths, store, only=had)
    return done


def prune(paths: Paths) -> list[str]:
    """``minibox prune``: forget the build cache, delete the untagged images no container uses,
    then the layers and blobs nothing uses any more (also what an interrupted pull or load left).
    Waits while a pull, build, commit, import or load is under way (``StoreLock``)."""
    from engine import state

    store = Store(paths)
    done = []
    with StoreLock(paths, exclusive=True), Lock(paths):
        cache = os.path.join(paths.images, "build-cache.json")
        if os.path.exists(cache):
            with open(cache) as f:
                done.append(f"Build cache: {len(fastjson.load(f))} step(s) forgotten")
            os.unlink(cache)
        keep = set(store.repositories().values()) | {r.data.get("image_id") for r in state.all_records(paths)}
        for image_id in store.image_ids():
            if image_id not in keep:
                os.unlink(store.manifest_path(image_id))
                done.append(f"Deleted: {image_id}")
        done += _collect_layers(paths, store)
    return done


def _collect_layers(paths: Paths, store: Store, only: set[str] | None = None) -> list[str]:
    """Delete the layers and blobs no image and no container uses: those in ``only`` (what one
    image or one load had), or, without ``only`` (prune), all of them. The caller holds the
    ``StoreLock`` exclusively: no pull or build is between writing a layer and using it."""
    import shutil

    from engine import state

    used_layers, used_blobs = set(), set()
    for image_id in store.image_ids():
        manifest = store.manifest(image_id)
        used_blobs.add(image_id)
        used_blobs.update(layer["digest"] for layer in manifest["layers"])
        used_layers.update(store.read_json(image_id)["rootfs"]["diff_ids"])
    for record in state.all_records(paths):
        used_layers.update(record.data.get("rootfs", {}).get("diff_ids", []))

    def wanted(digest: str) -> bool:
        return only is None or digest in only

    done = []
    for diff_id in store.all_layers():
        if diff_id not in used_layers and wanted(diff_id):
            shutil.rmtree(store.layer_dir(diff_id), ignore_errors=True)
            done.append(f"Deleted layer: {diff_id}")
    blob_dir = os.path.join(paths.images, "blobs", "sha256")
    for name in os.listdir(blob_dir) if os.path.isdir(blob_dir) else []:
        if not is_hex_id(name, 64, 64):  # a .partial download to resume, a temporary file
            continue
        digest, path = f"sha256:{name}", os.path.join(blob_dir, name)
        if digest not in used_blobs and not _is_layer_source(store, digest, used_layers) and wanted(digest):
            os.unlink(path)
    return done


def _is_layer_source(store: Store, blob: str, layers: set[str]) -> bool:
    return any(store.has_layer(d) and store.layer_info(d).get("blob") == blob for d in layers)


# --- user namespaces -----------------------------------------------------------------------------


def shifted_layers(image: Image, uid_offset: int, gid_offset: int) -> list[str]:
    """Copies of the image's layers with every owner shifted into a user namespace's ID range.

    Inside a user namespace, files owned by host root (uid 0) belong to nobody the container knows,
    so the container's root could not change them. As docker's ``userns-remap`` does, minibox keeps
    one copy of each layer per mapping, whose uid 0 files are owned by the mapped root (e.g. 100000).
    """
    return [_shifted(layer, uid_offset, gid_offset) for layer in image.layers]


def _shifted(layer: str, uid_offset: int, gid_offset: int) -> str:
    target = f"{layer}-shifted-{uid_offset}-{gid_offset}"
    if os.path.isdir(target):
        return target
    import shutil  # not at the top: `minibox run` without a user namespace never needs it
    import subprocess

    tmp = f"{target}.tmp{os.getpid()}"
    # cp -a keeps what copytree cannot: whiteouts (0/0 devices), hard links, the opaque xattr.
    subprocess.run(["cp", "-a", layer, tmp], check=True)

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
