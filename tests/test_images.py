"""Images on the real kernel: layers and whiteouts, overlay stacking, diff/commit/history,
import/save/load, rmi, and layer tars that try to write outside their directory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import time

import pytest
from conftest import MINIBOX, minibox

from engine.errors import MiniboxError
from engine.images import layers

# --- layer tars <-> overlay directories -------------------------------------------------------------


def _tar(entries: list[tuple[str, str, bytes | str]], gz: bool = False) -> bytes:
    """A layer tar from (kind, name, data-or-linkname): kind is file, dir, symlink, hardlink."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for kind, name, data in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, data
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue()) if gz else raw.getvalue()


def test_whiteouts_and_opaque_directories_translate_both_ways(tmp_path):
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(_tar([("dir", "etc", b""), ("file", "etc/.wh.motd", b""), ("dir", "opt", b""),
                           ("file", "opt/.wh..wh..opq", b""), ("file", "opt/new", b"n"),
                           ("file", "bin/tool", b"t"), ("hardlink", "bin/alias", "bin/tool"),
                           ("symlink", "bin/abs", "/etc/passwd")], gz=True))  # fmt: skip
    target = tmp_path / "diff"
    diff_id = layers.unpack(str(blob), str(target))
    whiteout = os.lstat(target / "etc" / "motd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0  # overlayfs' deletion mark
    assert layers.is_opaque(str(target / "opt")) and (target / "opt" / "new").read_text() == "n"
    assert os.stat(target / "bin" / "alias").st_ino == os.stat(target / "bin" / "tool").st_ino
    assert os.readlink(target / "bin" / "abs") == "/etc/passwd"  # absolute: resolved inside the container
    assert diff_id == "sha256:" + hashlib.sha256(gzip.decompress(blob.read_bytes())).hexdigest()
    # ...and back: packing the directory gives .wh. entries again, and the same tree when unpacked.
    packed = io.BytesIO()
    layers.pack(str(target), packed)
    names = tarfile.open(fileobj=io.BytesIO(packed.getvalue())).getnames()
    assert "etc/.wh.motd" in names and "opt/.wh..wh..opq" in names and "etc/motd" not in names
    (tmp_path / "again.tar").write_bytes(packed.getvalue())
    layers.unpack(str(tmp_path / "again.tar"), str(tmp_path / "again"))
    assert layers.is_opaque(str(tmp_path / "again" / "opt"))
    assert os.lstat(tmp_path / "again" / "etc" / "motd").st_rdev == 0


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([("file", "/etc/evil", b"x")], "absolute paths"),
        ([("file", "../evil", b"x")], "'..'"),
        ([("file", "a/../../evil", b"x")], "'..'"),
        ([("symlink", "escape", "{outside}"), ("file", "escape/evil", b"x")], "symlink pointing outside"),
        ([("symlink", "up", "../../.."), ("file", "up/evil", b"x")], "symlink pointing outside"),
        ([("hardlink", "evil", "../outside/secret")], "'..'"),
        ([("hardlink", "evil", "not/here")], "not in the layer"),
        # Found by a review of the fast unpacker (each wrote or deleted outside the layer):
        # a hard link to a symlink is that symlink too
        ([("symlink", "s", "{outside}"), ("hardlink", "h", "s"), ("file", "h/evil", b"x")], "symlink pointing outside"),
        ([("symlink", "s", "{outside}"), ("hardlink", "h", "s"), ("file", "h/.wh.secret", b"")], "pointing outside"),
        # a symlink reached through another name (l -> .) is still a symlink
        ([("symlink", "l", "."), ("symlink", "l/s", "{outside}"), ("file", "s/evil", b"x")], "pointing outside"),
        ([("symlink", "l", "."), ("symlink", "l/s", "{outside}"), ("file", "s/.wh..wh..opq", b"")], "pointing outside"),
        ([("symlink", "l", "."), ("symlink", "l/s", "{outside}"), ("file", "s/.wh.secret", b"")], "pointing outside"),
        # a path that was a directory, then a symlink leading out
        (
            [
                ("dir", "d", b""),
                ("symlink", "l", "d"),
                ("dir", "l/sub", b""),
                ("symlink", "l", "{outside}"),
                ("file", "l/sub/evil", b"x"),
            ],
            "pointing outside|does not exist",
        ),
        (
            [
                ("dir", "d", b""),
                ("symlink", "l", "d"),
                ("dir", "l/sub", b""),
                ("file", ".wh.d", b""),
                ("symlink", "d", "{outside}"),
                ("file", "l/sub/evil", b"x"),
            ],
            "pointing outside",
        ),
        # a hard link made through a directory that later leads out
        (
            [
                ("dir", "d", b""),
                ("symlink", "s", "d"),
                ("hardlink", "h", "s"),
                ("file", "h/victim", b"v"),
                ("file", ".wh.d", b""),
                ("symlink", "d", "{outside}"),
                ("hardlink", "x", "h/secret"),
            ],
            "pointing outside",
        ),
    ],
)
def test_a_layer_cannot_write_outside_its_directory(tmp_path, entries, why):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("keep")
    entries = [(k, n, d.replace("{outside}", str(outside)) if isinstance(d, str) else d) for k, n, d in entries]
    blob = tmp_path / "bad.tar"
    blob.write_bytes(_tar(entries))
    target = tmp_path / "store" / "diff"
    target.parent.mkdir()
    with pytest.raises(layers.UnsafeLayer, match=why):
        layers.unpack(str(blob), str(target))
    assert list(outside.iterdir()) == [outside / "secret"] and (outside / "secret").read_text() == "keep"
    assert not target.exists() and list(target.parent.iterdir()) == []  # nothing half-unpacked


def test_a_directory_entry_replaces_a_symlink_instead_of_following_it(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    os.chmod(outside, 0o700)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        link = tarfile.TarInfo("s")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside)
        tar.addfile(link)
        directory = tarfile.TarInfo("s")
        directory.type, directory.mode = tarfile.DIRTYPE, 0o777
        tar.addfile(directory)
    blob = tmp_path / "layer.tar"
    blob.write_bytes(raw.getvalue())
    layers.unpack(str(blob), str(tmp_path / "diff"))
    assert stat.S_IMODE(os.stat(outside).st_mode) == 0o700  # the host's directory is untouched
    assert (
        not os.path.islink(tmp_path / "diff" / "s") and stat.S_IMODE(os.stat(tmp_path / "diff" / "s").st_mode) == 0o777
    )


def test_unpacking_keeps_the_layers_times_of_symlinks_and_directories(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind, mtime in (("etc", tarfile.DIRTYPE, 1_000_000), ("etc/conf", tarfile.REGTYPE, 2_000_000),
                                  ("etc/link", tarfile.SYMTYPE, 3_000_000), ("etc/sub", tarfile.DIRTYPE, 4_000_000),
                                  ("etc/sub/.wh.gone", tarfile.REGTYPE, 5_000_000)):  # fmt: skip
            info = tarfile.TarInfo(name)
            info.type, info.mtime, info.mode = kind, mtime, 0o755
            info.linkname = "conf" if kind == tarfile.SYMTYPE else ""
            tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    blob = tmp_path / "layer.tar"
    blob.write_bytes(raw.getvalue())
    target = tmp_path / "diff"
    layers.unpack(str(blob), str(target))
    # each directory as the layer says, although entries were made in it afterwards (a whiteout too)
    times = {n: os.lstat(target / n).st_mtime for n in ("etc", "etc/conf", "etc/link", "etc/sub")}
    assert times == {"etc": 1_000_000, "etc/conf": 2_000_000, "etc/link": 3_000_000, "etc/sub": 4_000_000}


def test_zstd_layers_unpack_frame_after_frame(tmp_path):
    from backports.zstd import compress

    tar = _tar([("dir", "etc", b""), ("file", "etc/motd", b"zstd " * 50000), ("file", "etc/.wh.issue", b"")])
    blob = tmp_path / "layer.tar.zst"
    blob.write_bytes(compress(tar[:7000]) + compress(tar[7000:]))
    digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    diff_id = layers.unpack(str(blob), str(tmp_path / "diff"), blob_digest=digest)
    assert diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    assert (tmp_path / "diff" / "etc" / "motd").read_bytes() == b"zstd " * 50000
    assert os.lstat(tmp_path / "diff" / "etc" / "issue").st_rdev == 0
    blob.write_bytes(blob.read_bytes()[:-200])
    with pytest.raises(MiniboxError, match="truncated|zstd"):
        layers.unpack(str(blob), str(tmp_path / "again"))
    assert not (tmp_path / "again").exists()


def test_bad_digest_and_truncated_blob_leave_nothing(tmp_path):
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(_tar([("file", "hello", b"hi" * 5000)], gz=True))
    target = tmp_path / "diff"
    with pytest.raises(layers.DigestMismatch):
        layers.unpack(str(blob), str(target), blob_digest="sha256:" + "0" * 64)
    assert not target.exists()
    blob.write_bytes(blob.read_bytes()[:40])
    with pytest.raises(MiniboxError, match="not a valid tar|corrupt|truncated|Compressed"):
        layers.unpack(str(blob), str(target))
    assert not target.exists() and sorted(os.listdir(tmp_path)) == ["layer.tar.gz"]


# --- the store, on the command line -------------------------------------------------------------


def test_diff_commit_history_and_a_three_layer_image(name):
    script = "echo hi > /root/new; echo extra >> /etc/passwd; rm /bin/vi; mkdir /opt; echo 1 > /opt/one"
    minibox("run", "--name", name, "busybox", "sh", "-c", script, check=True)
    changes = minibox("diff", name, check=True).stdout.splitlines()
    assert {"A /root/new", "C /etc/passwd", "D /bin/vi", "A /opt/one", "C /root"} <= set(changes)
    assert changes == sorted(changes, key=lambda line: line[2:])
    image = f"t-{name.lower()}:one"
    image_id = minibox("commit", "-m", "first change", name, image, check=True).stdout.strip()
    assert image_id.startswith("sha256:")
    second = f"{name}-2"
    try:
        # On the committed image: an opaque directory (rm -rf then mkdir) and a deletion of a file
        # from the bottom layer, two layers up.
        minibox("run", "--name", second, image, "sh", "-c",
                "rm -rf /opt; mkdir /opt; echo 2 > /opt/two; rm /etc/hostname", check=True)  # fmt: skip
        assert "D /etc/hostname" in minibox("diff", second, check=True).stdout
        minibox("commit", second, f"t-{name.lower()}:two", check=True)
    finally:
        minibox("rm", "-f", second)
    out = minibox("run", "--rm", f"t-{name.lower()}:two", "sh", "-c",
                  "cat /root/new; ls /opt; test -e /bin/vi || echo no-vi; test -e /etc/hostname && echo init-layer",
                  check=True).stdout.split()  # fmt: skip
    assert out == ["hi", "two", "no-vi", "init-layer"]  # /opt/one hidden by the opaque /opt; hostname from init
    history = minibox("history", f"t-{name.lower()}:two", check=True).stdout.splitlines()
    assert len(history) == 4 and f"minibox commit {second}" in history[1] and "# first change" in history[2]
    assert "3" in minibox("images", check=True).stdout.split(f"t-{name.lower()}")[2].split()[2]  # LAYERS column
    for tag in ("one", "two"):
        minibox("rmi", f"t-{name.lower()}:{tag}")


def test_save_load_and_import(name, tmp_path):
    image = f"t-{name.lower()}:saved"
    minibox("run", "--name", name, "busybox", "sh", "-c", "echo saved > /marker", check=True)
    minibox("commit", name, image, check=True)
    archive = tmp_path / "images.tar"
    minibox("save", "-o", str(archive), image, check=True)
    members = tarfile.open(archive).getnames()
    assert {"oci-layout", "index.json", "manifest.json"} <= set(members)
    minibox("rm", name, check=True)
    assert "Untagged" in minibox("rmi", image, check=True).stdout
    assert minibox("run", "--rm", image, "true").returncode != 0
    assert f"Loaded image: {image}" in minibox("load", "-i", str(archive), check=True).stdout
    assert minibox("run", "--rm", image, "cat", "/marker", check=True).stdout == "saved\n"
    # A root filesystem tar becomes a one-layer image.
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "busybox").write_bytes(open("/bin/busybox", "rb").read())
    os.chmod(rootfs / "bin" / "busybox", 0o755)
    with tarfile.open(tmp_path / "rootfs.tar.gz", "w:gz") as tar:
        tar.add(rootfs, arcname=".")
    imported = f"t-{name.lower()}:imported"
    minibox("import", str(tmp_path / "rootfs.tar.gz"), imported, check=True)
    assert minibox("run", "--rm", imported, "/bin/busybox", "echo", "ok", check=True).stdout == "ok\n"
    for ref in (image, imported):
        minibox("rmi", ref, check=True)


def test_load_reads_a_docker_save_tar(tmp_path):
    layer = _tar([("dir", "bin", b""), ("file", "hello.txt", b"from docker save\n")])
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    busybox_layer = tmp_path / "bb.tar"
    with tarfile.open(busybox_layer, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
    bb = busybox_layer.read_bytes()
    diff_ids = ["sha256:" + hashlib.sha256(bb).hexdigest(), diff_id]
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/busybox", "cat", "/hello.txt"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}  # fmt: skip
    config_bytes = json.dumps(config).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": ["from-docker:v1"], "Layers": ["bb/layer.tar", "l2/layer.tar"]}]
    with tarfile.open(tmp_path / "docker.tar", "w") as tar:
        for arcname, data in ((config_name, config_bytes), ("bb/layer.tar", bb), ("l2/layer.tar", layer),
                              ("manifest.json", json.dumps(manifest).encode())):  # fmt: skip
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert "Loaded image: from-docker:v1" in minibox("load", "-i", str(tmp_path / "docker.tar"), check=True).stdout
    assert minibox("run", "--rm", "from-docker:v1", check=True).stdout == "from docker save\n"
    minibox("rmi", "from-docker:v1", check=True)


def test_rmi_refuses_an_image_in_use_and_keeps_shared_layers(name):
    image = f"t-{name.lower()}:used"
    minibox("run", "--name", name, "busybox", "true", check=True)
    minibox("commit", name, image, check=True)
    image_id = minibox("inspect", "-f", "Id", image, check=True).stdout.strip()
    user = f"{name}-user"
    minibox("run", "--name", user, image, "true", check=True)
    try:
        refused = minibox("rmi", image)
        assert refused.returncode != 0 and f"used by container(s) {user}" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        minibox("tag", image, f"{image}-again", check=True)  # a second name: `rmi` of one only untags it
        by_id = minibox("rmi", image_id[7:19])  # by ID: which name was meant? (docker asks for -f)
        assert by_id.returncode != 0 and "has 2 names" in by_id.stderr
        assert minibox("rmi", f"{image}-again", check=True).stdout.strip() == f"Untagged: {image}-again"
        minibox("run", "-d", "--name", f"{name}-live", image, "sleep", "600", check=True)
        forced = minibox("rmi", "-f", image, check=True).stdout  # forced: untagged, kept while used
        assert f"Untagged: {image}" in forced and "Kept:" in forced and "Deleted" not in forced
        assert minibox("exec", f"{name}-live", "true").returncode == 0  # the container still has its image
        assert "<none>" in minibox("images", check=True).stdout
    finally:
        minibox("rm", "-f", user, f"{name}-live")
    removed = minibox("rmi", image_id[7:19], check=True).stdout
    assert "Deleted layer" in removed  # the committed layer, which nothing else uses
    assert minibox("run", "--rm", "busybox", "true").returncode == 0  # the shared bottom layer stayed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["import", "/nonexistent.tar"], "no such file: /nonexistent.tar"),
        (["load", "-i", "/nonexistent.tar"], "no such file"),
        (["load", "-i", "/dev/null"], "/dev/null is not a regular file"),
        (["load", "-i", "/etc/hostname"], "not a readable tar"),
        (["rmi", "no-such-image"], "image 'no-such-image' not found"),
        (["rmi", "busybox:"], "NAME[:TAG] in lower case"),
        (["tag", "busybox", "Bad Name"], "NAME[:TAG] in lower case"),
        (["history", "nope:nope"], "not found"),
        (["diff", "no-such-container"], "no such container"),
        (["run", "--rm", "UPPER", "true"], "NAME[:TAG] in lower case"),
    ],
)
def test_bad_image_input_is_one_line(args, message):
    result = minibox(*args)
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_load_of_a_tar_without_an_image_adds_nothing(tmp_path):
    with tarfile.open(tmp_path / "empty.tar", "w") as tar:
        info = tarfile.TarInfo("readme.txt")
        tar.addfile(info, io.BytesIO(b""))
    before = minibox("images", check=True).stdout
    result = minibox("load", "-i", str(tmp_path / "empty.tar"))
    assert result.returncode != 0 and "neither index.json" in result.stderr
    assert minibox("images", check=True).stdout == before


def test_gc_removes_what_an_interrupted_import_left():
    from conftest import ROOT

    minibox("images", check=True)
    dead = 4194303  # above any PID in use here: the process that made these is gone
    leftovers = [os.path.join(ROOT, "lib", "images", "layers", f"staging-{dead}-abc"),
                 os.path.join(ROOT, "lib", "images", f"incoming-{dead}")]  # fmt: skip
    os.makedirs(leftovers[0] + "/diff/etc")
    open(leftovers[1], "w").close()
    out = minibox("gc", check=True).stdout
    assert all(f"{path} removed (an interrupted import)" in out for path in leftovers)
    assert not any(os.path.exists(path) for path in leftovers)


# --- build --------------------------------------------------------------------------------------------


MINIFILE = """# a small site
FROM busybox
ENV GREETING=hello WHO="the workshop"
WORKDIR /app
COPY site/ /app/site/
RUN echo "$GREETING from $WHO" > note && rm /bin/vi
LABEL maintainer=learner
CMD ["cat", "note"]
"""


def test_build_makes_layers_and_reuses_unchanged_steps(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<h1>v1</h1>\n")
    (tmp_path / "Minifile").write_text(MINIFILE)
    tag = f"t-build-{os.urandom(2).hex()}"
    first = minibox("build", "-t", f"{tag}:v1", str(tmp_path), check=True).stdout
    assert "Using cache" not in first and f"Successfully tagged {tag}:v1" in first
    assert minibox("run", "--rm", f"{tag}:v1", check=True).stdout == "hello from the workshop\n"  # CMD, WORKDIR, ENV
    out = minibox("run", "--rm", f"{tag}:v1", "sh", "-c", "pwd; cat site/index.html; test -e /bin/vi || echo gone",
                  check=True).stdout.split()  # fmt: skip
    assert out == ["/app", "<h1>v1</h1>", "gone"]
    again = minibox("build", "-t", f"{tag}:v1", str(tmp_path), check=True).stdout
    assert again.count("Using cache") == 6  # every step after FROM
    (tmp_path / "site" / "index.html").write_text("<h1>v2</h1>\n")
    changed = minibox("build", "-t", f"{tag}:v2", str(tmp_path), check=True).stdout
    assert changed.count("Using cache") == 2  # ENV and WORKDIR; COPY and all after it run again
    history = minibox("history", f"{tag}:v2", check=True).stdout.splitlines()
    assert [line.split("  ")[-1].split()[0] for line in history[1:7]] == [
        "CMD",
        "LABEL",
        "RUN",
        "COPY",
        "WORKDIR",
        "ENV",
    ]
    layers = minibox("images", check=True).stdout.split(f"{tag} ")[1].split()
    assert layers[2] == "4"  # busybox + WORKDIR's directory + COPY + RUN; ENV, LABEL and CMD make none
    untagged = minibox("images", check=True).stdout.count("<none>")
    rebuilt = minibox("build", "--no-cache", "-t", f"{tag}:v2", str(tmp_path), check=True).stdout
    assert "Using cache" not in rebuilt  # every step again: the images the steps made before are no one's now,
    assert minibox("images", check=True).stdout.count("<none>") == untagged  # yet a build's, not listed
    for version in ("v1", "v2"):
        minibox("rmi", f"{tag}:{version}", check=True)


@pytest.mark.parametrize(
    ("minifile", "message"),
    [
        ("RUN true\n", "a first instruction FROM IMAGE"),
        ("FROM busybox\nFETCH x\n", "Minifile:2"),
        ("FROM busybox\nRUN exit 3\n", "RUN 'exit 3' exited with 3"),
        ("FROM busybox\nCOPY ../secret /x\n", "outside the build context"),
        ("FROM busybox\nCOPY nothere /x\n", "is not in the build context"),
        ("FROM no-such-image\n", "image 'no-such-image' not found"),
        ("FROM busybox\nCMD [broken\n", "a JSON array"),
    ],
)
def test_build_errors_are_one_line(tmp_path, minifile, message):
    (tmp_path / "secret").write_text("no")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Minifile").write_text(minifile)
    result = minibox("build", str(context))
    assert result.returncode != 0
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_run_trace_names_every_stage_in_order():
    result = minibox("run", "--rm", "--trace", "-m", "64m", "busybox", "echo", "hello", check=True)
    assert result.stdout == "hello\n"
    stages = [line.split("]", 1)[1].split()[0] for line in result.stderr.splitlines() if line.startswith("[trace")]
    # the cgroup is made after the fork, while the init wakes up (engine/process.py), then joined
    assert stages == ["image", "rootfs", "process", "cgroup", "cgroup", "namespaces", "process", "mounts", "rootfs",
                      "mounts", "rootfs", "uts", "exec"]  # fmt: skip
    assert "pivot_root" in result.stderr and "execve(/bin/echo" in result.stderr and "memory=67108864" in result.stderr
    assert "[trace" not in minibox("run", "--rm", "busybox", "true", check=True).stderr


def test_a_full_disk_leaves_the_store_as_it_was(tmp_path):
    """The image store on a 3 MB tmpfs, and a 6 MB root filesystem tar to import."""
    import subprocess

    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "minibox-test-full", str(root)], check=True)
    try:
        rootfs = tmp_path / "rootfs"
        rootfs.mkdir()
        (rootfs / "big").write_bytes(os.urandom(6 << 20))
        with tarfile.open(tmp_path / "big.tar", "w") as tar:
            tar.add(rootfs, arcname=".")
        env = {**os.environ, "MINIBOX_ROOT": str(root)}
        result = subprocess.run([*__import__("conftest").MINIBOX, "import", str(tmp_path / "big.tar"), "big"],
                                capture_output=True, text=True, env=env)  # fmt: skip
        assert result.returncode != 0 and "no space left on the device" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        leftovers = [os.path.join(d, f) for d, _, fs in os.walk(root / "lib" / "images") for f in fs]
        assert not [f for f in leftovers if "incoming" in f or "staging" in f], leftovers
        images_list = subprocess.run(
            [*__import__("conftest").MINIBOX, "images"], capture_output=True, text=True, env=env
        )
        assert "big" not in images_list.stdout
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_plain_http_only_for_loopback_registries():
    from engine.images.registry import Client, Reference

    assert Client(Reference("127.0.0.1:5000/a/b:v1")).base.startswith("http://")
    assert Client(Reference("localhost:5000/a/b")).base.startswith("http://")
    assert Client(Reference("registry.example.org/a/b")).base.startswith("https://")
    assert Client(Reference("registry.example.org/a/b"), insecure=True).base.startswith("http://")
    assert Client(Reference("busybox")).base == "https://registry-1.docker.io/v2/library/busybox"


def test_save_writes_only_regular_files_or_standard_output(tmp_path):
    device = tmp_path / "full"
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # a /dev/full of our own
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere.tar")
    for target in (device, fifo, link, tmp_path / "no" / "such" / "dir.tar"):
        result = minibox("save", "-o", str(target), "busybox")
        assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "-o" in result.stderr
    assert stat.S_ISCHR(os.lstat(device).st_mode) and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.path.islink(link) and not (tmp_path / "elsewhere.tar").exists()
    with open(tmp_path / "stdout.tar", "wb") as out:
        subprocess.run([*MINIBOX, "save", "-o", "-", "busybox"], stdout=out, check=True)
    assert "index.json" in tarfile.open(tmp_path / "stdout.tar").getnames()


def test_prune_forgets_the_build_cache_and_what_nothing_uses(tmp_path):
    (tmp_path / "Minifile").write_text("FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n")
    image = f"t-prune-{os.urandom(2).hex()}:v1"
    minibox("build", "-t", image, str(tmp_path), check=True)
    assert "Using cache" in minibox("build", "-t", image, str(tmp_path), check=True).stdout
    from conftest import ROOT

    from engine.images import StoreLock
    from engine.state import Paths

    blobs = os.path.join(ROOT, "lib", "images", "blobs", "sha256")
    stray = os.path.join(blobs, "ab" * 32)  # as an interrupted pull leaves
    partial = os.path.join(blobs, "ef" * 32 + ".partial")  # a download to resume
    for path in (stray, partial):
        open(path, "wb").write(b"half an image")
    with StoreLock(Paths()):  # as a pull holds it from its first blob to its image
        prune = subprocess.Popen([*MINIBOX, "prune"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        assert prune.poll() is None and os.path.exists(stray)  # prune waits for the pull
    pruned = prune.communicate(timeout=60)[0]
    assert prune.returncode == 0
    assert "Build cache:" in pruned and not os.path.exists(stray)
    assert os.path.exists(partial)
    os.unlink(partial)
    assert "Using cache" not in minibox("build", "-t", image, str(tmp_path), check=True).stdout
    assert minibox("run", "--rm", image, "cat", "/a", "/b", check=True).stdout == "a\nb\n"  # tagged: kept
    minibox("rmi", image, check=True)
    minibox("prune", check=True)


@pytest.mark.parametrize("layout", ["oci", "old docker save"])
def test_a_load_that_fails_half_way_takes_back_what_it_added(tmp_path, layout):
    from conftest import ROOT

    (tmp_path / "Minifile").write_text("FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n")
    image = f"t-half-{os.urandom(2).hex()}:v1"
    minibox("build", "-t", image, str(tmp_path), check=True)
    minibox("save", "-o", str(tmp_path / "good.tar"), image, check=True)
    manifest = json.loads(tarfile.open(tmp_path / "good.tar").extractfile("manifest.json").read())
    top = manifest[0]["Layers"][-1]  # the last layer is read last: the others are in by then
    renamed = {top: top}  # oci: the same names; old docker save: a directory per layer, config at the top
    if layout == "old docker save":
        renamed = {layer: f"{n}/layer.tar" for n, layer in enumerate(manifest[0]["Layers"])}
        renamed[manifest[0]["Config"]] = manifest[0]["Config"].rpartition("/")[2] + ".json"
        manifest[0].update(Config=renamed[manifest[0]["Config"]], Layers=[renamed[x] for x in manifest[0]["Layers"]])
    with tarfile.open(tmp_path / "good.tar") as good, tarfile.open(tmp_path / "bad.tar", "w") as bad:
        for member in good:
            data = good.extractfile(member).read() if member.isfile() else None
            if member.name == top:
                data = data[:-40] + bytes(40)  # the right size, the wrong bytes
            if layout == "old docker save":
                if member.name not in renamed:
                    continue  # no index.json, no blobs/: only what an old docker save has
                member.name = renamed[member.name]
            bad.addfile(member, io.BytesIO(data) if data is not None else None)
        if layout == "old docker save":
            listing = json.dumps(manifest).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(listing)
            bad.addfile(info, io.BytesIO(listing))
    minibox("rmi", image, check=True)
    minibox("prune", check=True)
    store = os.path.join(ROOT, "lib", "images")

    def contents() -> tuple[list[str], list[str]]:
        return sorted(os.listdir(f"{store}/layers")), sorted(os.listdir(f"{store}/blobs/sha256"))

    before = contents()
    result = minibox("load", "-i", str(tmp_path / "bad.tar"))
    why = "does not match" if layout == "oci" else "is not a valid tar"  # old docker save names no digests
    assert result.returncode != 0 and why in result.stderr, result.stderr
    after = contents()
    assert after[0] == before[0]  # no layer of the broken image stays
    sources = {json.load(open(f"{store}/layers/{layer}/layer.json"))["blob"][7:] for layer in after[0]}
    assert set(after[1]) - set(before[1]) <= sources  # a blob stays only as the source of a layer in use


def test_the_built_in_busybox_has_the_same_id_in_every_state_root(tmp_path):
    """Its files take the busybox binary's time: a class sees one ID, `rmi` + rebuild gives it back.
    Its compressed layer is the same blob too (no time, no file name in the gzip header): what was
    built in one store and pushed is "already there" in another."""
    ids, blobs = [], []
    for root in ("one", "two"):
        env = {**os.environ, "MINIBOX_ROOT": str(tmp_path / root)}
        result = subprocess.run([*MINIBOX, "inspect", "-f", "Id", "busybox"], env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        ids.append(result.stdout.strip())
        manifest = json.load(open(tmp_path / root / "lib" / "images" / "manifests" / f"{ids[-1][7:]}.json"))
        blobs.append([layer["digest"] for layer in manifest["layers"]])
    assert ids[0] == ids[1] and ids[0].startswith("sha256:")
    assert blobs[0] == blobs[1] and len(blobs[0]) == 1


def test_a_built_image_kept_by_rmi_f_for_its_container_is_listed(tmp_path, name):
    (tmp_path / "Minifile").write_text("FROM busybox\nRUN echo built > /built\n")
    image = f"t-{name.lower()}:kept"
    minibox("build", "-t", image, str(tmp_path), check=True)
    image_id = minibox("inspect", "-f", "Id", image, check=True).stdout.strip()
    minibox("run", "-d", "--name", name, image, "sleep", "600", check=True)
    try:
        assert "Kept:" in minibox("rmi", "-f", image, check=True).stdout
        listed = minibox("images", check=True).stdout
        assert any(line.startswith("<none>") and image_id[7:19] in line for line in listed.splitlines()), listed
    finally:
        minibox("rm", "-f", name)
    minibox("rmi", image_id[7:19], check=True)


def test_images_and_history_count_sizes_alike():
    minibox("run", "--rm", "busybox", "true", check=True)  # the built-in image exists
    row = next(line for line in minibox("images", check=True).stdout.splitlines() if line.startswith("busybox "))
    (step,) = minibox("history", "busybox", check=True).stdout.splitlines()[1:]  # one layer, one step
    assert row.split()[-1] == step.split()[1]  # e.g. 4.3MB both: the unpacked files, as docker counts


def test_rmi_of_the_built_in_image_before_it_exists_says_not_found(tmp_path):
    """rmi holds the store's exclusive lock: it must not start making busybox (which takes the
    shared one) under it. It used to wait for itself for ever."""
    env = {**os.environ, "MINIBOX_ROOT": str(tmp_path / "fresh")}
    result = subprocess.run([*MINIBOX, "rmi", "busybox"], env=env, capture_output=True, text=True, timeout=20)
    assert result.returncode != 0 and "image 'busybox' not found" in result.stderr, result.stderr


def test_save_load_and_import_use_standard_output_and_input_as_docker_does(tmp_path):
    """`save` without -o writes to standard output, `load` without -i reads standard input, and
    `import -` takes the root filesystem tar from it; none of them talks to a terminal."""
    image = f"t-stdio-{os.urandom(2).hex()}:v1"
    saved = tmp_path / "saved.tar"
    with open(saved, "wb") as out:
        subprocess.run([*MINIBOX, "save", "busybox"], stdout=out, check=True)
    assert "index.json" in tarfile.open(saved).getnames()
    with open(saved, "rb") as source:
        loaded = subprocess.run([*MINIBOX, "load"], stdin=source, capture_output=True, text=True)
    assert loaded.returncode == 0 and "busybox" in loaded.stdout, loaded.stderr
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "hello").write_text("from stdin\n")
    subprocess.run(["tar", "-cf", str(tmp_path / "root.tar"), "-C", str(tmp_path / "root"), "."], check=True)
    with open(tmp_path / "root.tar", "rb") as source:
        imported = subprocess.run([*MINIBOX, "import", "-", image], stdin=source, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    layer = minibox("inspect", "-f", "GraphDriver.Data.LowerDir", image, check=True).stdout.strip()
    assert open(os.path.join(layer, "hello")).read() == "from stdin\n"
    minibox("rmi", image, check=True)
    with open(os.devnull, "rb") as empty:
        nothing = subprocess.run([*MINIBOX, "load"], stdin=empty, capture_output=True, text=True)
    assert nothing.returncode != 0 and nothing.stderr.startswith("minibox: standard input is not a readable tar")


SIZE_CASES = {  # entries of one layer tar: (name, kind, data or link target)
    "a hard link named ./x": [("usr", "d", ""), ("usr/a", "f", "x" * 100), ("./usr/h", "h", "usr/a")],
    "a link to a link": [("a", "f", "x" * 100), ("b", "h", "a"), ("c", "h", "b")],
    "a hard link to a symlink": [("s", "s", "target-xxxxx"), ("h", "h", "s")],
    "a name twice": [("a", "f", "x" * 100), ("a", "f", "y" * 10)],
    "a whiteout in the same layer": [("d", "d", ""), ("d/a", "f", "x" * 100), ("d/.wh.a", "f", "")],
    "a symlink to a directory": [("usr", "d", ""), ("usr/bin", "d", ""), ("bin", "s", "usr/bin")],
    "a directory over a file": [("a", "f", "x" * 50), ("a", "d", ""), ("a/b", "f", "z" * 7)],
    "a file over a directory": [("a", "d", ""), ("a/b", "f", "z" * 7), ("a", "f", "q" * 3)],
}


@pytest.mark.parametrize("case", SIZE_CASES)
def test_a_layer_weighs_the_same_packed_and_unpacked(case, tmp_path):
    """`history` of a pulled image before its first run reads sizes from the blob: the same
    bytes as the unpacked layer (it said the compressed size, then the files' after a run)."""
    import gzip
    import io
    import tarfile

    from engine.images import layers
    from engine.images.store import unpacked_size

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind, value in SIZE_CASES[case]:
            info = tarfile.TarInfo(name)
            info.type = {"f": tarfile.REGTYPE, "d": tarfile.DIRTYPE, "s": tarfile.SYMTYPE, "h": tarfile.LNKTYPE}[kind]
            info.mode = 0o755 if kind == "d" else 0o644
            if kind in "sh":
                info.linkname = value
            info.size = len(value) if kind == "f" else 0
            tar.addfile(info, io.BytesIO(value.encode()) if kind == "f" else None)
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(gzip.compress(raw.getvalue()))
    layers.unpack(str(blob), str(tmp_path / "layer"))
    assert layers.files_size(str(blob)) == unpacked_size(str(tmp_path / "layer"))
