"""``minibox pull``: fetch an image from a registry with the OCI distribution API (v2), over HTTP.

What ``docker pull`` does, step by step:

1. ``GET /v2/NAME/manifests/TAG``, asking (``Accept``) for any of: an OCI index or docker manifest
   list (one manifest per platform: pick this machine's, see ``platform.py``), or an OCI / docker
   schema 2 manifest (a config and a list of layer blobs);
2. ``GET /v2/NAME/blobs/DIGEST`` for the config, then for each layer not already in the store.
   Every byte is hashed while it streams in and checked against the digest the manifest names;
   a download that stops half-way is kept as ``.partial`` and resumed with an HTTP ``Range``;
3. each layer is unpacked (``layers.py``), the manifest recorded, the tag pointed at the image.

A registry that answers ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``
wants a token: it is fetched from that realm (anonymously, or with ``MINIBOX_REGISTRY_AUTH=user:pass``)
and sent as ``Authorization: Bearer``. Plain HTTP is used only for loopback registries (a test
registry on 127.0.0.1) or with ``--insecure``; everything else is HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from engine import images
from engine.errors import BadValue, MiniboxError
from engine.images.layers import DigestMismatch
from engine.images.store import Store
from engine.state import Lock, Paths

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[:2]
DEFAULT_REGISTRY = "registry-1.docker.io"


class Reference:
    """``localhost:5000/team/app:v1`` or ``...@sha256:...`` split into registry, repository, tag/digest."""

    def __init__(self, text: str) -> None:
        name, _, digest = text.partition("@")
        registry, _, rest = name.partition("/")
        if not rest or not ("." in registry or ":" in registry or registry == "localhost"):
            registry, rest = DEFAULT_REGISTRY, name
            if "/" not in rest.split(":")[0]:
                rest = f"library/{rest}"
        repository, tag = rest, "latest"
        if ":" in rest.rsplit("/", 1)[-1]:
            repository, tag = rest.rsplit(":", 1)
        if not images.NAME_PATTERN.fullmatch(repository) or (
            digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
        ):
            raise BadValue("image", text, "REGISTRY/NAME[:TAG] or NAME@sha256:DIGEST, e.g. localhost:5000/team/app:v1")
        self.registry, self.repository, self.tag, self.digest = registry, repository, tag, digest
        self.local_name = text.partition("@")[0] if not digest else f"{registry}/{repository}"

    @property
    def wanted(self) -> str:
        return self.digest or self.tag


def _loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0].strip("[]") if registry.count(":") <= 1 else registry.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Client:
    """HTTP to one registry, with the token dance when it asks for it."""

    def __init__(self, ref: Reference, insecure: bool = False) -> None:
        self.ref = ref
        plain = _loopback(ref.registry) or insecure
        self.base = f"{'http' if plain else 'https'}://{ref.registry}/v2/{ref.repository}"
        self.token: str | None = None

    def open(self, path: str, accept: tuple[str, ...] = (), offset: int = 0):  # noqa: ANN201 -- an HTTP response
        headers = {"Accept": ", ".join(accept)} if accept else {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        for attempt in (1, 2):
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            request = urllib.request.Request(f"{self.base}/{path}", headers=headers)
            try:
                return urllib.request.urlopen(request, timeout=60)
            except urllib.error.HTTPError as e:
                if e.code == 401 and attempt == 1 and self._authenticate(e.headers.get("WWW-Authenticate", "")):
                    continue
                raise self._explain(e, path) from None
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise MiniboxError(
                    f"cannot reach registry {self.ref.registry}: {reason}",
                    "check the address and that the registry runs (plain HTTP needs a loopback address or --insecure)",
                ) from None
        raise AssertionError("unreachable")

    def _authenticate(self, challenge: str) -> bool:
        if not challenge.lower().startswith("bearer "):
            return False
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if "realm" not in fields:
            return False
        query = urllib.parse.urlencode({k: v for k, v in fields.items() if k in ("service", "scope")})
        if "scope" not in fields:
            query += ("&" if query else "") + f"scope=repository:{self.ref.repository}:pull"
        request = urllib.request.Request(f"{fields['realm']}?{query}")
        credentials = os.environ.get("MINIBOX_REGISTRY_AUTH")
        if credentials:
            request.add_header("Authorization", "Basic " + base64.b64encode(credentials.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                body = json.load(answer)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise MiniboxError(
                f"registry {self.ref.registry} wants a token, and {fields['realm']} did not give one: {e}",
                "check MINIBOX_REGISTRY_AUTH=user:password",
            ) from None
        self.token = body.get("token") or body.get("access_token")
        return bool(self.token)

    def _explain(self, error: urllib.error.HTTPError, path: str) -> MiniboxError:
        what = f"{self.ref.registry}/{self.ref.repository}:{self.ref.wanted}"
        if error.code == 404:
            if path.startswith("manifests/"):
                return MiniboxError(
                    f"image {what} not found in registry {self.ref.registry}",
                    "check the name and tag (the registry's /v2/_catalog lists what it has)",
                )
            return MiniboxError(f"registry {self.ref.registry} lacks a blob of {what} ({path})",
                                "the image is incomplete there")  # fmt: skip
        if error.code in (401, 403):
            return MiniboxError(f"registry {self.ref.registry} refused access to {what} ({error.code})",
                                "log in: MINIBOX_REGISTRY_AUTH=user:password minibox pull ...")  # fmt: skip
        return MiniboxError(f"registry {self.ref.registry} answered {error.code} {error.reason} for {path}",
                            "try again later")  # fmt: skip


def _json(client: Client, path: str, accept: tuple[str, ...], digest: str = "") -> tuple[dict, str, str]:
    """A manifest or index: (document, its digest, its media type), digest checked."""
    with client.open(path, accept) as answer:
        body = answer.read()
        media = answer.headers.get("Content-Type", "").split(";")[0]
    got = f"sha256:{hashlib.sha256(body).hexdigest()}"
    if digest and got != digest:
        raise DigestMismatch(f"manifest {path}", digest, got)
    document = json.loads(body)
    return document, got, document.get("mediaType") or media


Progress = Callable[[str, int, int], None]  # (layer short id, bytes so far, total)


def fetch_blob(client: Client, store: Store, digest: str, size: int, progress: Progress | None = None) -> None:
    """Download one blob into the store, resuming a ``.partial`` file, checking its digest."""
    if store.has_blob(digest):
        return
    final = store.blob_path(digest)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    partial = f"{final}.partial"
    hasher = hashlib.sha256()
    offset = 0
    if os.path.exists(partial):
        with open(partial, "rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
                offset += len(chunk)
    with client.open(f"blobs/{digest}", offset=offset) as answer:
        if offset and answer.status != 206:  # the registry ignored Range: start again
            offset, hasher = 0, hashlib.sha256()
        with open(partial, "ab" if offset else "wb") as out:
            while chunk := answer.read(1 << 20):
                hasher.update(chunk)
                out.write(chunk)
                offset += len(chunk)
                if progress:
                    progress(digest[7:19], offset, size)
    got = f"sha256:{hasher.hexdigest()}"
    if got != digest:
        os.unlink(partial)  # a wrong blob is no use for resuming either
        raise DigestMismatch(f"blob {digest[:19]}…", digest, got)
    os.rename(partial, final)


def pull(paths: Paths, text: str, insecure: bool = False, progress: Progress | None = None,
         say: Callable[[str], None] = lambda line: None) -> str:  # fmt: skip
    """Pull ``text`` (REGISTRY/NAME[:TAG|@DIGEST]); return the image ID. Tagged as typed."""
    ref = Reference(text)
    client = Client(ref, insecure)
    store = Store(paths)
    paths.ensure()
    document, digest, media = _json(client, f"manifests/{ref.wanted}", MANIFEST_TYPES, ref.digest)
    if media in INDEX_TYPES or "manifests" in document:
        from engine.images.platform import choose

        entry = choose(document["manifests"])
        say(f"{ref.registry}/{ref.repository}: index of {len(document['manifests'])} platforms, "
            f"taking {entry['platform']['os']}/{entry['platform']['architecture']}")  # fmt: skip
        document, digest, media = _json(client, f"manifests/{entry['digest']}", MANIFEST_TYPES[2:], entry["digest"])
    config_digest = document["config"]["digest"]
    fetch_blob(client, store, config_digest, document["config"].get("size", 0))
    config = store.read_json(config_digest)
    diff_ids = config["rootfs"]["diff_ids"]
    if len(diff_ids) != len(document["layers"]):
        raise MiniboxError(f"{text}: the manifest lists {len(document['layers'])} layers, the config {len(diff_ids)}",
                           "the image is broken in the registry")  # fmt: skip
    missing = []
    for layer, diff_id in zip(document["layers"], diff_ids, strict=True):
        if store.has_layer(diff_id):
            say(f"{layer['digest'][7:19]}: already exists")
        elif "zstd" in layer.get("mediaType", ""):
            raise MiniboxError(
                f"layer {layer['digest'][7:19]} is compressed with zstd", "pull a gzip variant of the image"
            )
        else:
            missing.append((layer, diff_id))

    def fetch_and_unpack(layer: dict, diff_id: str) -> None:
        fetch_blob(client, store, layer["digest"], layer.get("size", 0), progress)
        store.add_layer(layer["digest"], diff_id)  # unpacked aside, renamed into place: no lock needed
        say(f"{layer['digest'][7:19]}: pull complete")

    # One after the other: measured here, threads (as docker and skopeo use) were slower, as
    # unpacking a tar in Python holds the GIL (bench/README.md).
    for layer, diff_id in missing:
        fetch_and_unpack(layer, diff_id)
    with Lock(paths):
        store.save_manifest(config_digest, document)
        images.set_tag(paths, config_digest, ref.local_name if not ref.digest else f"{ref.local_name}:latest")
    say(f"Digest: {digest}")
    return config_digest
