"""``minibox pull`` from a real registry: Debian's docker-registry on 127.0.0.1, fed with skopeo.

The registry runs for this module only, on a free loopback port with a temporary storage
directory. Test images are made with minibox itself (multi-layer, with deletions so whiteouts
travel), saved as OCI layouts, and pushed with ``skopeo copy``; a multi-platform index is
assembled by hand. Then minibox pulls them and the digests and file trees are compared.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import urllib.request

import pytest
from conftest import ROOT, minibox, wait_for

pytestmark = pytest.mark.skipif(not shutil.which("docker-registry") or not shutil.which("skopeo"),
                                reason="docker-registry and skopeo come with `make test`")  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """host:port of a running registry; stopped and its storage removed afterwards."""
    base = tmp_path_factory.mktemp("registry")
    port = free_port()
    (base / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{base / 'data'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    server = subprocess.Popen(["docker-registry", "serve", str(base / "config.yml")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).status == 200
        except OSError:
            return False

    try:
        assert wait_for(up, timeout=15), "the registry did not start"
        yield base, f"127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


def push(archive: str, target: str, all_platforms: bool = False, kind: str = "oci-archive") -> None:
    argv = ["skopeo", "copy", "--dest-tls-verify=false", *(["--all"] if all_platforms else []),
            f"{kind}:{archive}", f"docker://{target}"]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def tree(image: str) -> str:
    # names, kinds and contents; not times (a container's init layer is as new as the container)
    script = "cd / && find etc opt | sort | while read -r f; do [ -d $f ] && echo $f/ || echo $f; done; cat /opt/*"
    return minibox("run", "--rm", image, "sh", "-c", script, check=True).stdout


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    """A three-layer image (one layer deletes files of the first) pushed as test/multi:v1."""
    base, address = registry
    work = tmp_path_factory.mktemp("images")
    name = f"t-reg-{os.urandom(2).hex()}"
    try:
        minibox(
            "run", "--name", name, "busybox", "sh", "-c", "mkdir /opt; echo one > /opt/a; echo b > /opt/b", check=True
        )
        minibox("commit", name, "reg-src:one", check=True)
        minibox("rm", name, check=True)
        minibox(
            "run", "--name", name, "reg-src:one", "sh", "-c", "rm /opt/b /etc/hostname; echo two > /opt/c", check=True
        )
        minibox("commit", name, "reg-src:two", check=True)
        minibox("rm", name, check=True)
        expected = tree("reg-src:two")
        minibox("save", "-o", str(work / "two.tar"), "reg-src:two", check=True)
        push(str(work / "two.tar"), f"{address}/test/multi:v1")
        source_id = json.loads(subprocess.run(["tar", "-xOf", str(work / "two.tar"), "index.json"], capture_output=True,
                                              text=True, check=True).stdout)["manifests"][0]["digest"]  # fmt: skip
        for source in ("reg-src:two", "reg-src:one"):  # so that pulls below download their layers for real
            minibox("rmi", source, check=True)
        yield {"address": address, "tree": expected, "manifest": source_id, "work": work, "base": base}
    finally:
        minibox("rm", "-f", name)
        for ref in ("reg-src:two", "reg-src:one"):
            minibox("rmi", ref)


def test_pull_gives_the_same_image_and_files(pushed):
    ref = f"{pushed['address']}/test/multi:v1"
    out = minibox("pull", ref, check=True).stdout
    assert out.count("download complete") == 2  # busybox's layer was here already; the other two come
    assert f"Digest: {pushed['manifest']}" in out  # the very manifest skopeo pushed, checked by digest
    packed = minibox("history", ref, check=True).stdout  # two layers not unpacked yet: sizes from their tars
    assert tree(ref) == pushed["tree"]  # whiteouts travelled: /opt/b and /etc/hostname stay deleted
    assert "download complete" not in minibox("pull", ref, check=True).stdout  # layers shared: nothing fetched
    history = minibox("history", ref, check=True).stdout
    assert history.count("minibox commit") == 2
    assert history == packed  # unpacked by the run: the same sizes (the files', as docker counts)
    minibox("rmi", ref, check=True)


def test_pull_by_digest(pushed):
    ref = f"{pushed['address']}/test/multi@{pushed['manifest']}"
    minibox("pull", ref, check=True)
    assert tree(f"{pushed['address']}/test/multi:latest") == pushed["tree"]
    minibox("rmi", f"{pushed['address']}/test/multi:latest", check=True)


def test_multi_platform_index_picks_this_machine(pushed, tmp_path):
    """An OCI index with an arm64 decoy and the real amd64 manifest, pushed with --all."""
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(pushed["work"] / "two.tar"), "-C", str(layout)], check=True)
    index = json.loads((layout / "index.json").read_text())
    real = dict(index["manifests"][0], platform={"os": "linux", "architecture": "amd64"})
    real.pop("annotations", None)
    decoy_manifest = json.loads((layout / "blobs" / "sha256" / real["digest"][7:]).read_bytes())
    decoy_config = {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    config_bytes = json.dumps(decoy_config).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    (layout / "blobs" / "sha256" / config_digest[7:]).write_bytes(config_bytes)
    decoy_manifest.update(config={"mediaType": "application/vnd.oci.image.config.v1+json",
                                  "digest": config_digest, "size": len(config_bytes)}, layers=[])  # fmt: skip
    decoy_bytes = json.dumps(decoy_manifest).encode()
    decoy_digest = "sha256:" + hashlib.sha256(decoy_bytes).hexdigest()
    (layout / "blobs" / "sha256" / decoy_digest[7:]).write_bytes(decoy_bytes)
    decoy = {"mediaType": real["mediaType"], "digest": decoy_digest, "size": len(decoy_bytes),
             "platform": {"os": "linux", "architecture": "arm64"}}  # fmt: skip
    nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [decoy, real]}
    nested_bytes = json.dumps(nested).encode()
    nested_digest = "sha256:" + hashlib.sha256(nested_bytes).hexdigest()
    (layout / "blobs" / "sha256" / nested_digest[7:]).write_bytes(nested_bytes)
    index["manifests"] = [{"mediaType": nested["mediaType"], "digest": nested_digest, "size": len(nested_bytes),
                           "annotations": {"org.opencontainers.image.ref.name": "v1"}}]  # fmt: skip
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "manifest.json").unlink()
    push(f"{layout}:v1", f"{pushed['address']}/test/multiarch:v1", all_platforms=True, kind="oci")
    ref = f"{pushed['address']}/test/multiarch:v1"
    out = minibox("pull", ref, check=True).stdout
    assert "index of 2 platforms, taking linux/amd64" in out
    assert tree(ref) == pushed["tree"]
    minibox("rmi", ref, check=True)


def _blob_file(base, digest: str) -> str:
    return str(base / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256" / digest[7:9] / digest[7:] / "data")


def test_a_tampered_layer_is_refused_and_nothing_is_added(pushed, tmp_path):
    # Push a one-layer image of its own, then change its layer's bytes inside the registry.
    name = f"t-tamper-{os.urandom(2).hex()}"
    minibox("run", "--name", name, "busybox", "sh", "-c", "echo secret > /data", check=True)
    minibox("commit", name, "reg-src:tamper", check=True)
    minibox("rm", name, check=True)
    minibox("save", "-o", str(tmp_path / "t.tar"), "reg-src:tamper", check=True)
    minibox("rmi", "reg-src:tamper", check=True)
    push(str(tmp_path / "t.tar"), f"{pushed['address']}/test/tamper:v1")

    def member(name: str) -> dict:
        out = subprocess.run(["tar", "-xOf", str(tmp_path / "t.tar"), name], capture_output=True, text=True)
        return json.loads(out.stdout)

    manifest_digest = member("index.json")["manifests"][0]["digest"]
    manifest = member(f"blobs/sha256/{manifest_digest[7:]}")
    top = manifest["layers"][-1]["digest"]
    path = _blob_file(pushed["base"], top)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    before = sorted(os.listdir(os.path.join(ROOT, "lib", "images", "layers")))
    result = minibox("pull", f"{pushed['address']}/test/tamper:v1")
    assert result.returncode != 0 and "does not match" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(os.listdir(os.path.join(ROOT, "lib", "images", "layers"))) == before
    assert "test/tamper" not in minibox("images", check=True).stdout
    assert not os.path.exists(os.path.join(ROOT, "lib", "images", "blobs", "sha256", top[7:]))


def test_an_interrupted_download_resumes(pushed):
    """Half a layer already on disk (a .partial file): the pull asks only for the rest (Range)."""
    from engine.images import registry
    from engine.images.store import Store
    from engine.state import Paths

    ref = registry.Reference(f"{pushed['address']}/test/multi:v1")
    client = registry.Client(ref)
    manifest, _, _ = registry._json(client, "manifests/v1", registry.MANIFEST_TYPES)
    layer = manifest["layers"][0]
    store = Store(Paths())
    if store.has_blob(layer["digest"]):
        os.unlink(store.blob_path(layer["digest"]))
    full = open(_blob_file(pushed["base"], layer["digest"]), "rb").read()
    partial = store.blob_path(layer["digest"]) + ".partial"
    os.makedirs(os.path.dirname(partial), exist_ok=True)
    open(partial, "wb").write(full[: len(full) // 2])
    seen = []
    registry.fetch_blob(client, store, layer["digest"], layer["size"], lambda _l, done, _t: seen.append(done))
    assert seen and seen[0] > len(full) // 2  # the first progress report starts past the half on disk
    assert open(store.blob_path(layer["digest"]), "rb").read() == full
    # All of it came last time (stopped just before the end): nothing to ask, only the digest to check.
    os.rename(store.blob_path(layer["digest"]), partial)
    offline = registry.Client(registry.Reference("127.0.0.1:1/test/multi:v1"))
    registry.fetch_blob(offline, store, layer["digest"], layer["size"])
    assert open(store.blob_path(layer["digest"]), "rb").read() == full and not os.path.exists(partial)


class _Front(http.server.BaseHTTPRequestHandler):
    """A server in front of the test registry, passing requests through (subclasses add a twist)."""

    upstream = ""

    def pass_through(self, path: str) -> None:
        headers = {k: v for k in ("Accept", "Range") if (v := self.headers.get(k))}
        with urllib.request.urlopen(urllib.request.Request(f"http://{self.upstream}{path}", headers=headers)) as answer:
            self.reply(answer.status, answer.read(), answer.headers)

    def reply(self, code: int, body: bytes, headers: dict | None = None, send: int | None = None) -> None:
        self.send_response(code)
        for name in ("Content-Type", "Docker-Content-Digest", "Content-Range"):
            if headers and headers.get(name):
                self.send_header(name, headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:send])

    def log_message(self, *args: object) -> None:
        pass


class _TokenGate(_Front):
    """Wants a bearer token, as Docker Hub does."""

    token = "let-me-in"

    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        if self.path.startswith("/token"):
            self.reply(200, json.dumps({"token": self.token}).encode(), {"Content-Type": "application/json"})
            return
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="test",scope="repository:x:pull"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.pass_through(self.path)


class _Cdn(_Front):
    """Serves blobs the gate redirects here; notes every request; breaks off the first transfer of ``cut``."""

    seen: list[tuple[str, str | None, str | None]] = []
    cut: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802
        self.seen.append((self.path, self.headers.get("Authorization"), self.headers.get("Range")))
        digest = self.path.rsplit("/", 1)[-1]
        if digest in self.cut:
            self.cut.discard(digest)
            with urllib.request.urlopen(f"http://{self.upstream}{self.path}") as answer:
                body = answer.read()
            self.reply(200, body, answer.headers, send=len(body) // 2)  # says it all comes; half does
            return
        self.pass_through(self.path)


def _serve(handler: type[_Front], upstream: str) -> http.server.ThreadingHTTPServer:
    handler.upstream = upstream
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_pull_fetches_a_bearer_token_when_asked(pushed):
    gate = _serve(_TokenGate, pushed["address"])
    try:
        ref = f"127.0.0.1:{gate.server_address[1]}/test/multi:v1"
        assert "download complete" in minibox("pull", ref, check=True).stdout
        assert tree(ref) == pushed["tree"]
        minibox("rmi", ref, check=True)
    finally:
        gate.shutdown()


def test_blobs_redirected_elsewhere_are_followed_and_a_broken_transfer_resumes(pushed):
    """As on Docker Hub: the registry sends blobs to another host (a CDN), which must not get the
    registry's token. The first transfer of the bigger new layer breaks off half-way: the pull fails
    in one line and keeps what came; the next pull asks only for the rest."""

    class Gate(_TokenGate):
        def do_GET(self) -> None:  # noqa: N802
            if "/blobs/" in self.path and self.headers.get("Authorization"):
                self.send_response(307)
                self.send_header("Location", f"http://127.0.0.1:{cdn.server_address[1]}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    cdn = _serve(_Cdn, pushed["address"])
    gate = _serve(Gate, pushed["address"])
    ref = f"127.0.0.1:{gate.server_address[1]}/test/multi:v1"
    try:
        manifest = json.loads(urllib.request.urlopen(urllib.request.Request(
            f"http://{pushed['address']}/v2/test/multi/manifests/v1",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})).read())  # fmt: skip
        biggest = max(manifest["layers"][1:], key=lambda layer: layer["size"])["digest"]  # [0] is busybox's: here
        _Cdn.seen.clear()
        _Cdn.cut = {biggest}
        broken = minibox("pull", ref)
        assert broken.returncode != 0 and "broke off" in broken.stderr, broken.stderr
        assert len(broken.stderr.strip().splitlines()) == 1
        partial = os.path.join(ROOT, "lib", "images", "blobs", "sha256", biggest[7:] + ".partial")
        assert os.path.getsize(partial) > 0
        assert "test/multi" not in minibox("images", check=True).stdout
        minibox("pull", ref, check=True)
        assert tree(ref) == pushed["tree"]
        assert not os.path.exists(partial)
        ranges = [r for path, _auth, r in _Cdn.seen if path.endswith(biggest)]
        assert ranges[0] is None and ranges[-1] and ranges[-1].startswith("bytes=") and ranges[-1] != "bytes=0-"
        assert all(auth is None for _path, auth, _range in _Cdn.seen)  # the token stayed with the registry
        minibox("rmi", ref, check=True)
    finally:
        gate.shutdown()
        cdn.shutdown()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("{address}/test/absent:v1", "not found in registry"),
        ("127.0.0.1:1/test/x:v1", "cannot reach registry 127.0.0.1:1"),
        ("{address}/Test/UPPER:v1", "REGISTRY/NAME[:TAG]"),
        ("{address}/test/multi@sha256:1234", "REGISTRY/NAME[:TAG]"),
    ],
)
def test_pull_errors_are_one_line(pushed, ref, message):
    result = minibox("pull", ref.format(address=pushed["address"]))
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_zstd_image_pulls_like_a_gzip_one(pushed, tmp_path):
    """The same image with its layers recompressed as zstd (OCI's tar+zstd), pushed as it is."""
    from backports.zstd import compress

    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(pushed["work"] / "two.tar"), "-C", str(layout)], check=True)
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    for layer in manifest["layers"]:
        tar = gzip.decompress((blobs / layer["digest"][7:]).read_bytes())
        half = len(tar) // 2
        data = compress(tar[:half]) + compress(tar[half:])  # two frames: a reader must read on
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs / digest[7:]).write_bytes(data)
        layer.update(mediaType="application/vnd.oci.image.layer.v1.tar+zstd", digest=digest, size=len(data))
    data = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest[7:]).write_bytes(data)
    index["manifests"] = [{"mediaType": manifest["mediaType"], "digest": digest, "size": len(data),
                           "annotations": {"org.opencontainers.image.ref.name": "v1"}}]  # fmt: skip
    (layout / "index.json").write_text(json.dumps(index))
    push(f"{layout}:v1", f"{pushed['address']}/test/zstd:v1", kind="oci")
    ref = f"{pushed['address']}/test/zstd:v1"
    assert minibox("pull", ref, check=True).stdout.count("download complete") == 2  # busybox's layer: here already
    assert tree(ref) == pushed["tree"]
    # busybox's layer is here as gzip, not as the zstd blob the registry named: the image kept here
    # lists the blob this store has, so it can be saved (every blob there) and built on.
    minibox("save", "-o", str(tmp_path / "saved.tar"), ref, check=True)
    saved = tmp_path / "saved"
    saved.mkdir()
    subprocess.run(["tar", "-xf", str(tmp_path / "saved.tar"), "-C", str(saved)], check=True)
    index = json.loads((saved / "index.json").read_text())
    kept = json.loads((saved / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes())
    for layer in kept["layers"]:
        blob = saved / "blobs" / "sha256" / layer["digest"][7:]
        assert blob.stat().st_size == layer["size"]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == layer["digest"][7:]
    assert [layer["mediaType"][-4:] for layer in kept["layers"]] == ["gzip", "zstd", "zstd"]
    name = f"t-zstd-{os.urandom(2).hex()}"
    try:
        minibox("run", "--name", name, ref, "touch", "/opt/d", check=True)
        minibox("commit", name, f"{name}:built-on", check=True)
        minibox("rmi", f"{name}:built-on", check=True)
    finally:
        minibox("rm", "-f", name)
    minibox("rmi", ref, check=True)


def _layers_on_disk() -> set[str]:
    return set(os.listdir(os.path.join(ROOT, "lib", "images", "layers")))


def test_pull_only_downloads_and_the_first_container_unpacks(pushed):
    ref = f"{pushed['address']}/test/multi:v1"
    before = _layers_on_disk()
    minibox("pull", ref, check=True)
    assert _layers_on_disk() == before  # blobs only, as skopeo copy or containerd's content fetch
    listed = minibox("images", check=True).stdout
    assert "test/multi" in listed and minibox("history", ref, check=True).stdout.count("minibox commit") == 2
    traced = minibox("run", "--rm", "--trace", ref, "true", check=True).stderr
    assert "2 layer(s) unpacked from their blobs" in traced  # busybox's was unpacked already
    assert len(_layers_on_disk() - before) == 2
    assert "unpacked" not in minibox("run", "--rm", "--trace", ref, "true", check=True).stderr  # once
    minibox("rmi", ref, check=True)
    assert _layers_on_disk() == before


def test_a_layer_that_is_not_its_diff_id_is_refused_at_the_first_container(pushed, tmp_path):
    """Blobs that match the manifest, a config naming another diff ID: found when unpacking."""
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-xf", str(pushed["work"] / "two.tar"), "-C", str(layout)], check=True)
    blobs = layout / "blobs" / "sha256"

    def put(document: dict) -> tuple[str, int]:
        data = json.dumps(document).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (blobs / digest[7:]).write_bytes(data)
        return digest, len(data)

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_bytes())
    config["rootfs"]["diff_ids"][-1] = "sha256:" + "0" * 64
    digest, size = put(config)
    manifest["config"].update(digest=digest, size=size)
    digest, size = put(manifest)
    index["manifests"] = [{"mediaType": manifest["mediaType"], "digest": digest, "size": size,
                           "annotations": {"org.opencontainers.image.ref.name": "v1"}}]  # fmt: skip
    (layout / "index.json").write_text(json.dumps(index))
    push(f"{layout}:v1", f"{pushed['address']}/test/lying:v1", kind="oci")
    ref = f"{pushed['address']}/test/lying:v1"
    minibox("pull", ref, check=True)  # every blob is what the manifest says
    before, containers = _layers_on_disk(), os.listdir(os.path.join(ROOT, "lib", "containers"))
    result = minibox("run", "--rm", ref, "true")
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "layer 3" in result.stderr and "cannot be unpacked" in result.stderr and "does not match" in result.stderr
    assert f"minibox rmi {ref}" in result.stderr
    new = _layers_on_disk() - before  # layer 2 is whole and what it says: kept, as a failed pull keeps the others
    assert "0" * 64 not in new and not [n for n in new if len(n) != 64], new  # no layer 3, nothing half-unpacked
    assert os.listdir(os.path.join(ROOT, "lib", "containers")) == containers
    minibox("rmi", ref, check=True)
    assert _layers_on_disk() == before


def test_a_pull_onto_a_full_disk_leaves_the_store_as_it_was(pushed, tmp_path):
    """The image store on a 512 kB tmpfs: the busybox layer's blob (about 1 MB) cannot fit."""
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "minibox-test-full", str(root)], check=True)
    try:
        env = {**os.environ, "MINIBOX_ROOT": str(root)}
        command = [*__import__("conftest").MINIBOX, "pull", f"{pushed['address']}/test/multi:v1"]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        assert result.returncode != 0 and "no space left on the device while downloading blob" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        left = [f for _, _, files in os.walk(root / "lib" / "images") for f in files]
        assert not [f for f in left if f.endswith(".partial")], left
        images_list = subprocess.run([*command[:-2], "images"], capture_output=True, text=True, env=env)
        assert "test/multi" not in images_list.stdout
    finally:
        subprocess.run(["umount", str(root)], check=True)
