"""``minibox pull``: fetch an image from a registry with the OCI distribution API (v2), over HTTP.

What ``docker pull`` does, step by step:

1. ``GET /v2/NAME/manifests/TAG``, asking (``Accept``) for any of: an OCI index or docker manifest
   list (one manifest per platform: pick this machine's, see ``platform.py``), or an OCI / docker
   schema 2 manifest (a config and a list of layer blobs);
2. ``GET /v2/NAME/blobs/DIGEST`` for the config, then for each layer not already in the store
   (all at once, one connection each). Every byte is hashed while it streams in and checked
   against the digest the manifest names; a download that stops half-way is kept as
   ``.partial`` and resumed with an HTTP ``Range``;
3. the manifest is recorded and the tag pointed at the image.

The layers stay as they came, compressed blobs, until a container of the image first needs them:
``images.unpack_layers`` unpacks them then (and checks each against its diff ID), as containerd
fetches an image into its content store and its snapshotter unpacks it when a container is made.
``skopeo copy docker://... dir:...`` does the same work as this pull.

A registry that answers ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...``
wants a token: it is fetched from that realm (anonymously, or with ``MINIBOX_REGISTRY_AUTH=user:pass``)
and sent as ``Authorization: Bearer``. Plain HTTP is used only for loopback registries (a test
registry on 127.0.0.1) or with ``--insecure``; everything else is HTTPS.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import http.client
import io
import ipaddress
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable

from engine import images
from engine.errors import BadValue, MiniboxError
from engine.images.store import DigestMismatch, InterruptedDownload, NoSpace, Store, StoreLock, disk_error
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
        if (
            not re.fullmatch(images.NAME_PATTERN, repository)
            or not tag
            or (digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest))
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
    """HTTP to one registry over kept-alive connections, with redirects and the token dance.

    ``http.client`` rather than ``urllib.request``: one connection per host serves every request
    of a pull, and blobs that a registry hands to a CDN (a redirect to another host, as Docker
    Hub does) are followed without sending that host the registry's token.
    """

    def __init__(self, ref: Reference, insecure: bool = False) -> None:
        self.ref = ref
        plain = _loopback(ref.registry) or insecure
        self.base = f"{'http' if plain else 'https'}://{ref.registry}/v2/{ref.repository}"
        self.token: str | None = None
        self.connections: dict[tuple[str, str], http.client.HTTPConnection] = {}
        self.cancelled: threading.Event | None = None  # set: every download of this pull stops

    def sibling(self) -> Client:
        """Another client for the same registry (and token), with connections of its own: one per thread."""
        other = Client(self.ref)
        other.base, other.token, other.cancelled = self.base, self.token, self.cancelled
        return other

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()

    def _connection(self, scheme: str, host: str) -> http.client.HTTPConnection:
        if (scheme, host) not in self.connections:
            kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            self.connections[scheme, host] = kind(host, timeout=60)
        return self.connections[scheme, host]

    def get(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        """GET ``url``, following redirects; the answer may be an error status (the caller looks)."""
        for _redirect in range(6):
            scheme, host, path, query, _ = urllib.parse.urlsplit(url)
            target = f"{path}?{query}" if query else path
            for attempt in (1, 2):  # a kept-alive connection the server has closed: once more, fresh
                connection = self._connection(scheme, host)
                try:
                    connection.request("GET", target, headers=headers)
                    answer = connection.getresponse()
                    break
                except (OSError, http.client.HTTPException) as e:
                    connection.close()
                    del self.connections[scheme, host]
                    if attempt == 2 or not isinstance(e, (ConnectionError, http.client.RemoteDisconnected)):
                        raise MiniboxError(
                            f"cannot reach registry {self.ref.registry}: {e}",
                            "check the address and that the registry runs "
                            "(plain HTTP needs a loopback address or --insecure)",
                        ) from None
            location = answer.getheader("Location")
            if answer.status not in (301, 302, 303, 307, 308) or not location:
                return answer
            answer.read()
            next_url = urllib.parse.urljoin(url, location)
            if urllib.parse.urlsplit(next_url)[:2] != (scheme, host):  # the token is for the registry, over TLS
                headers = {k: v for k, v in headers.items() if k != "Authorization"}
            url = next_url
        raise MiniboxError(f"registry {self.ref.registry} redirects too often ({url})", "try again later")

    def open(self, path: str, accept: tuple[str, ...] = (), offset: int = 0) -> http.client.HTTPResponse:
        headers = {"Accept": ", ".join(accept)} if accept else {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        for attempt in (1, 2):
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            answer = self.get(f"{self.base}/{path}", headers)
            if answer.status < 400:
                return answer
            answer.read()
            if answer.status == 401 and attempt == 1 and self._authenticate(answer.getheader("WWW-Authenticate", "")):
                continue
            raise self._explain(answer.status, answer.reason, path)
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
        headers = {}
        credentials = os.environ.get("MINIBOX_REGISTRY_AUTH")
        if credentials:
            headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        try:
            answer = self.get(f"{fields['realm']}?{query}", headers)
            body = answer.read()
            if answer.status != 200:
                raise ValueError(f"it answered {answer.status} {answer.reason}")
            document = json.loads(body)
        except (MiniboxError, OSError, http.client.HTTPException, ValueError) as e:
            raise MiniboxError(
                f"registry {self.ref.registry} wants a token, and {fields['realm']} did not give one: "
                f"{getattr(e, 'message', e)}",
                "check MINIBOX_REGISTRY_AUTH=user:password",
            ) from None
        self.token = document.get("token") or document.get("access_token")
        return bool(self.token)

    def _explain(self, status: int, reason: str, path: str) -> MiniboxError:
        what = f"{self.ref.registry}/{self.ref.repository}:{self.ref.wanted}"
        if status == 404:
            if path.startswith("manifests/"):
                return MiniboxError(
                    f"image {what} not found in registry {self.ref.registry}",
                    "check the name and tag (the registry's /v2/_catalog lists what it has)",
                )
            return MiniboxError(f"registry {self.ref.registry} lacks a blob of {what} ({path})",
                                "the image is incomplete there")  # fmt: skip
        if status in (401, 403):
            return MiniboxError(f"registry {self.ref.registry} refused access to {what} ({status})",
                                "log in: MINIBOX_REGISTRY_AUTH=user:password minibox pull ...")  # fmt: skip
        return MiniboxError(f"registry {self.ref.registry} answered {status} {reason} for {path}",
                            "try again later")  # fmt: skip


class _Download(io.RawIOBase):
    """A blob's body as it arrives, with progress; a transfer that breaks off becomes one clear error."""

    def __init__(self, answer: http.client.HTTPResponse, digest: str, size: int, progress: Progress | None,
                 cancelled: threading.Event | None = None) -> None:  # fmt: skip
        self.answer, self.digest, self.size, self.progress, self.done = answer, digest, size, progress, 0
        self.cancelled = cancelled

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.cancelled is not None and self.cancelled.is_set():
            raise InterruptedDownload(self.digest, self.done, InterruptedError("stopped: another layer failed"))
        expected = self.answer.length  # bytes still announced by Content-Length (None when chunked)
        try:
            data = self.answer.read(n)
        except (OSError, http.client.HTTPException) as e:
            raise InterruptedDownload(self.digest, self.done, e) from None
        if not data and n and expected:  # http.client returns b"" when the server hangs up early
            raise InterruptedDownload(self.digest, self.done, ConnectionError(f"{expected} bytes never came"))
        self.done += len(data)
        if self.size and self.done > self.size:  # the manifest said how big it is: never take more
            raise MiniboxError(f"registry sent more than the {self.size} bytes of blob {self.digest[7:19]}",
                               "the registry or the image is broken")  # fmt: skip
        if self.progress and data:
            self.progress(self.digest[7:19], self.done, self.size)
        return data


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
    if not (offset and size and offset >= size):  # else all of it came last time: only the digest is left
        try:
            answer = client.open(f"blobs/{digest}", offset=offset)
        except MiniboxError:
            if not offset:
                raise
            answer, offset = client.open(f"blobs/{digest}"), 0  # the registry refused the range: start again
        if offset and answer.status != 206:  # the registry ignored Range: start again
            offset = 0
        if not offset:
            hasher = hashlib.sha256()
        body = _Download(answer, digest, size, progress, client.cancelled)
        body.done = offset
        try:
            with open(partial, "ab" if offset else "wb") as out:
                while chunk := body.read(1 << 20):
                    hasher.update(chunk)
                    out.write(chunk)
        except OSError as e:  # a full disk: nothing of this blob stays (a broken-off transfer keeps its part)
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            os.unlink(partial)
            raise disk_error(e, f"downloading blob {digest[7:19]}") from None
    got = f"sha256:{hasher.hexdigest()}"
    if got != digest:
        os.unlink(partial)  # a wrong blob is no use for resuming either
        raise DigestMismatch(f"blob {digest[:19]}…", digest, got)
    os.rename(partial, final)


def _fetch_layers(client: Client, store: Store, missing: list[dict], progress: Progress | None,
                  say: Callable[[str], None]) -> None:  # fmt: skip
    """All missing layers at once, one thread and one connection each, as docker and skopeo do.

    Threads pay off here although Python runs one thread at a time: most of the work happens
    where the GIL is released (waiting for the network, sha256, writing the file). Each blob is
    written aside (``.partial``) and renamed into place, so no lock is needed.
    """
    failures: list[BaseException] = []
    saying = threading.Lock()  # one line at a time: print() writes a line and its newline separately
    client.cancelled = threading.Event()

    def one(layer: dict) -> None:
        own = client.sibling()
        try:
            fetch_blob(own, store, layer["digest"], layer.get("size", 0), progress)
            with saying:
                say(f"{layer['digest'][7:19]}: download complete")
        except BaseException as e:  # noqa: BLE001 -- handed to the main thread, raised there; the others stop
            client.cancelled.set()
            failures.append(e)
        finally:
            own.close()

    threads = [threading.Thread(target=one, args=(layer,), daemon=True) for layer in missing[1:]]
    for thread in threads:
        thread.start()
    try:
        if missing:
            one(missing[0])
    except BaseException:
        client.cancelled.set()
        raise
    finally:
        for thread in threads:  # each stops at its next read once cancelled; what came stays as .partial
            while thread.is_alive():
                try:
                    thread.join()
                except KeyboardInterrupt:  # Ctrl-C while waiting: stop them all, let them clean up
                    client.cancelled.set()
                    failures.append(KeyboardInterrupt())
    if failures:
        # the first real reason, not a sibling's "stopped because another layer failed"
        real = [e for e in failures if not isinstance(e, InterruptedDownload) or "another layer" not in e.what]
        error = (real or failures)[0]
        if isinstance(error, NoSpace):  # the disk is full: the parts the others kept would only fill it more
            for layer in missing:
                partial = store.blob_path(layer["digest"]) + ".partial"
                if os.path.exists(partial):
                    os.unlink(partial)
        raise error


def pull(paths: Paths, text: str, insecure: bool = False, progress: Progress | None = None,
         say: Callable[[str], None] = lambda line: None) -> str:  # fmt: skip
    """Pull ``text`` (REGISTRY/NAME[:TAG|@DIGEST]); return the image ID. Tagged as typed."""
    ref = Reference(text)
    client = Client(ref, insecure)
    try:
        with StoreLock(paths):  # prune and rmi wait: the layers are written well before the image
            return _pull(paths, ref, client, progress, say)
    finally:
        client.close()


def _pull(paths: Paths, ref: Reference, client: Client, progress: Progress | None,
          say: Callable[[str], None]) -> str:  # fmt: skip
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
        listed = len(document["layers"])
        raise MiniboxError(f"{ref.local_name}: the manifest lists {listed} layers, the config {len(diff_ids)}",
                           "the image is broken in the registry")  # fmt: skip
    missing = []
    for index, (layer, diff_id) in enumerate(zip(document["layers"], diff_ids, strict=True)):
        # The same files may be here from another blob (built here, or compressed otherwise by the
        # tool that pushed them). The image stays the same image (its ID is its config's digest,
        # which names layers by their unpacked content); the manifest kept here lists the blob this
        # store has, so `save` and `commit` find every blob.
        ours = None if store.has_blob(layer["digest"]) else store.layer_descriptor(diff_id)
        if ours or store.has_blob(layer["digest"]):
            say(f"{layer['digest'][7:19]}: already exists")
            if ours:
                document["layers"][index] = ours
        elif all(layer["digest"] != known["digest"] for known in missing):  # a layer listed twice comes once
            missing.append(layer)

    _fetch_layers(client, store, missing, progress, say)
    with Lock(paths):
        store.save_manifest(config_digest, document)
        images.set_tag(paths, config_digest, ref.local_name if not ref.digest else f"{ref.local_name}:latest")
    say(f"Digest: {digest}")
    return config_digest
