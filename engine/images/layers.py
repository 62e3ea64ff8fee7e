"""Layers: between an OCI layer tar and a directory overlayfs can stack, in both directions.

An image is a stack of layers; each layer holds only what changed from the ones below. Two ways
to say "this file was deleted" exist, and this module translates between them:

- in a **layer tar** (OCI image spec, docker): an empty file named ``.wh.NAME`` next to where
  NAME was (a *whiteout*); and ``.wh..wh..opq`` inside a directory whose lower contents are all
  hidden (an *opaque* directory);
- in an **overlayfs layer directory**: a character device 0/0 named NAME, and the extended
  attribute ``trusted.overlay.opaque=y`` on the directory. overlayfs honours both in every
  layer of ``lowerdir=``, so unpacked layers stack exactly as the image says.

Unpacking never writes outside the layer directory: absolute names, ``..``, a path through a
symlink that leads out, and hard links to anything outside are refused with a clear error. The
layer is unpacked into a temporary directory and renamed into place only when complete and its
digest matched, so a bad or truncated blob leaves the store as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator

from engine.errors import MiniboxError

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


class UnsafeLayer(MiniboxError):
    def __init__(self, member: str, why: str) -> None:
        super().__init__(f"refusing layer entry {member!r}: {why}", "the image is broken or malicious: do not use it")


class DigestMismatch(MiniboxError):
    def __init__(self, what: str, expected: str, got: str) -> None:
        super().__init__(f"{what}: digest {got[:19]}… does not match the expected {expected[:19]}…",
                         "the download was corrupted or tampered with; pull it again")  # fmt: skip


# --- reading: tar -> directory ---------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """A file object that hashes what is read through it (the blob's digest, while streaming)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self.raw, self.sha256, self.size = raw, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:
        data = self.raw.read(len(buffer))
        self.sha256.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)


def open_maybe_compressed(raw: io.BufferedIOBase) -> io.BufferedIOBase:
    """gzip layers (the usual) or plain tar: told apart by gzip's magic bytes."""
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head[:2] == b"\x28\xb5":  # zstd's magic is 28 b5 2f fd
        raise MiniboxError("this layer is compressed with zstd, which minibox cannot read yet",
                           "pull a gzip variant of the image")  # fmt: skip
    return raw


def unpack(blob_path: str, target: str, blob_digest: str | None = None, diff_id: str | None = None) -> str:
    """Unpack a layer blob into the new directory ``target``; return its diff_id (sha256 of the tar).

    Digests given are checked while streaming; on any error nothing is left at ``target``.
    """
    tmp = f"{target}.unpacking{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        with open(blob_path, "rb") as f:
            blob = _HashingReader(f)
            buffered = io.BufferedReader(blob, 1 << 20)
            stream = open_maybe_compressed(buffered)
            tar_hash = _HashingReader(stream)
            try:
                with tarfile.open(fileobj=io.BufferedReader(tar_hash, 1 << 20), mode="r|") as tar:
                    for member in tar:
                        _extract(tar, member, tmp)
                    while tar_hash.read(1 << 16):  # tar's zero blocks at the end count in the digest
                        pass
            except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as e:
                if isinstance(e, OSError) and e.errno is not None:
                    raise
                detail = (str(e).splitlines() or ["?"])[0].rstrip(":")
                raise MiniboxError(f"layer {os.path.basename(blob_path)[:19]}… is not a valid tar ({detail})",
                                   "pull or import the image again") from None  # fmt: skip
            while buffered.read(1 << 16):
                pass
        if blob_digest and f"sha256:{blob.sha256.hexdigest()}" != blob_digest:
            raise DigestMismatch("layer blob", blob_digest, f"sha256:{blob.sha256.hexdigest()}")
        got = f"sha256:{tar_hash.sha256.hexdigest()}"
        if diff_id and got != diff_id:
            raise DigestMismatch("unpacked layer", diff_id, got)
        os.rename(tmp, target)
        return got
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise disk_error(e, "unpacking a layer") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def disk_error(error: OSError, doing: str) -> BaseException:
    """A full disk (or quota) as a one-line error; any other OSError as it is."""
    import errno

    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return MiniboxError(f"no space left on the device while {doing} ({error.filename or 'the image store'})",
                            "free some space (`minibox rmi` unused images, `minibox gc`), then try again")  # fmt: skip
    return error


def _check_name(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise UnsafeLayer(name, "absolute paths and '..' could write outside the layer")
    return parts


def _inside(root: str, path: str) -> bool:
    real_root = os.path.realpath(root)
    return os.path.realpath(path) == real_root or os.path.realpath(path).startswith(real_root + os.sep)


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str) -> None:
    parts = _check_name(member.name)
    if not parts:
        return  # "./" itself
    parent = os.path.join(root, *parts[:-1])
    if not _inside(root, parent):  # a directory of the path is a symlink that leads out
        raise UnsafeLayer(member.name, "its directory is a symlink pointing outside the layer")
    os.makedirs(parent, exist_ok=True)
    name = parts[-1]
    if name == OPAQUE_MARKER:
        os.setxattr(parent, OPAQUE_XATTR, b"y")
        return
    if name.startswith(WHITEOUT_PREFIX):
        path = os.path.join(parent, name[len(WHITEOUT_PREFIX) :])
        _remove(path)
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        return
    path = os.path.join(parent, name)
    if member.islnk():
        link_parts = _check_name(member.linkname)
        source = os.path.join(root, *link_parts)
        if not _inside(root, source) or not os.path.lexists(source):
            raise UnsafeLayer(member.name, f"hard link to {member.linkname!r}, which is not in the layer")
        _remove(path)
        os.link(source, path, follow_symlinks=False)
        return
    if member.isdir():
        if os.path.lexists(path) and not os.path.isdir(path):
            _remove(path)
        os.makedirs(path, exist_ok=True)
    else:
        _remove(path)
        if member.issym():
            os.symlink(member.linkname, path)  # any target: it resolves inside the container's root
        elif member.isfile():
            with open(path, "xb") as out:
                shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(path)
        else:
            return
    os.lchown(path, member.uid, member.gid)
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)
        os.utime(path, (member.mtime, member.mtime))
    for key, value in (member.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr.") and not member.issym():
            try:
                os.setxattr(path, key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape"))
            except OSError:
                pass  # e.g. security.* the kernel refuses: the file is still right


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


# --- writing: directory -> tar -----------------------------------------------------------------


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def walk(root: str) -> Iterator[tuple[str, os.stat_result]]:
    """Every entry under ``root`` as (relative path, lstat), parents first, names sorted."""
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        relative_dir = os.path.relpath(directory, root)
        for name in sorted(dirnames + filenames):
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            yield relative, os.lstat(os.path.join(root, relative))


def pack(root: str, out: io.BufferedIOBase) -> str:
    """Write the directory ``root`` as an OCI layer tar to ``out``; return its diff_id.

    Overlay whiteouts become ``.wh.`` files and opaque directories get ``.wh..wh..opq``; names
    are sorted and times kept, so packing the same tree twice gives the same digest.
    """
    digest = hashlib.sha256()

    class _Hashing(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:
            digest.update(data)
            out.write(data)
            return len(data)

    sink = io.BufferedWriter(_Hashing(), 1 << 20)
    hardlinks: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for relative, st in walk(root):
            path = os.path.join(root, relative)
            if is_whiteout(st):
                head, _, name = relative.rpartition("/")
                info = tarfile.TarInfo(f"{head}/{WHITEOUT_PREFIX}{name}" if head else WHITEOUT_PREFIX + name)
                info.mtime = int(st.st_mtime)
                tar.addfile(info)
                continue
            info = tar.gettarinfo(path, arcname=relative)
            info.uname = info.gname = ""
            if info.isreg() and st.st_nlink > 1:
                first = hardlinks.setdefault((st.st_dev, st.st_ino), relative)
                if first != relative:
                    info.type, info.linkname, info.size = tarfile.LNKTYPE, first, 0
            if info.isreg() and info.type != tarfile.LNKTYPE:
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if info.isdir() and is_opaque(path):
                marker = tarfile.TarInfo(f"{relative}/{OPAQUE_MARKER}")
                marker.mtime = int(st.st_mtime)
                tar.addfile(marker)
    sink.flush()
    return f"sha256:{digest.hexdigest()}"
