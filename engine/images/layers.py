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

READ_CHUNK = 1 << 18
MOST_INFLATED = 1 << 20  # never inflate more at once: a small blob can hold gigabytes of zeros


def _inflate_module():  # noqa: ANN202 -- a module with zlib's interface
    """gunzip with ISA-L (``isal``: 2-3x faster than zlib, and it releases the GIL); zlib if absent."""
    try:
        from isal import isal_zlib as zlib
    except ImportError:  # pragma: no cover -- isal is a dependency; zlib gives the same bytes
        import zlib
    return zlib


class _LayerStream(io.RawIOBase):
    """The tar inside a layer blob, read in one pass over the blob's bytes.

    On the way the blob is hashed (its digest), optionally copied to a file (the store's copy,
    written while a pull downloads it), gunzipped when it starts with gzip's magic bytes, and the
    tar is hashed too (the layer's diff_id). The source can be a file or an HTTP response.
    """

    def __init__(self, source: io.IOBase, copy_to: io.BufferedIOBase | None = None) -> None:
        self.source, self.copy_to = source, copy_to
        self.blob_sha256, self.tar_sha256 = hashlib.sha256(), hashlib.sha256()
        self.chunks = self._tar_chunks()
        self.out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _read_blob(self) -> bytes:
        data = self.source.read(READ_CHUNK)
        self.blob_sha256.update(data)
        if self.copy_to is not None:
            self.copy_to.write(data)
        return data

    def _tar_chunks(self) -> Iterator[bytes]:
        pending = self._read_blob()
        if pending[:4] == b"\x28\xb5\x2f\xfd":
            raise MiniboxError("this layer is compressed with zstd, which minibox cannot read yet",
                               "pull a gzip variant of the image")  # fmt: skip
        if pending[:2] != b"\x1f\x8b":  # a plain tar
            while pending:
                yield pending
                pending = self._read_blob()
            return
        zlib = _inflate_module()
        while pending:  # one gzip member after another (concatenated gzip is still gzip)
            inflate = zlib.decompressobj(31)  # 31: a gzip header and trailer around the deflate data
            while not inflate.eof:
                pending = pending or self._read_blob()
                if not pending:
                    raise EOFError("the gzip data ends early (truncated)")
                try:
                    data = inflate.decompress(pending, MOST_INFLATED)
                except zlib.error as e:  # corrupt deflate data
                    raise tarfile.ReadError(f"gzip: {e}") from None
                pending = inflate.unconsumed_tail
                if data:
                    yield data
            pending = (inflate.unused_data + pending).lstrip(b"\0")  # gzip allows zero padding
            while not pending and (more := self._read_blob()):
                pending = more.lstrip(b"\0")

    def blob_digest_after_all(self) -> str:
        """Read the rest of the blob (after a failure half-way) and return its digest."""
        while self._read_blob():
            pass
        return f"sha256:{self.blob_sha256.hexdigest()}"

    def readinto(self, buffer: memoryview) -> int:
        while not self.out:
            chunk = next(self.chunks, b"")
            if not chunk:
                return 0
            self.out = memoryview(chunk)
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.tar_sha256.update(self.out[:n])
        self.out = self.out[n:]
        return n


def unpack(blob_path: str, target: str, blob_digest: str | None = None, diff_id: str | None = None) -> str:
    """Unpack the layer blob file ``blob_path`` into the new directory ``target``; return its diff_id."""
    with open(blob_path, "rb", buffering=0) as f:
        return unpack_stream(f, target, blob_digest, diff_id, name=os.path.basename(blob_path))


def unpack_stream(source: io.IOBase, target: str, blob_digest: str | None = None, diff_id: str | None = None,
                  copy_to: io.BufferedIOBase | None = None, name: str = "") -> str:  # fmt: skip
    """Unpack a layer blob read from ``source`` into the new directory ``target``; return its diff_id.

    Digests given are checked while streaming; on any error nothing is left at ``target``.
    ``copy_to`` receives every byte of the blob as it goes by (a pull keeps the blob this way).
    """
    tmp = f"{target}.unpacking{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        stream = _LayerStream(source, copy_to)
        buffered = io.BufferedReader(stream, 1 << 20)
        try:
            with tarfile.open(fileobj=buffered, mode="r|") as tar:
                unpacker = _Unpacker(tmp)
                for member in tar:
                    unpacker.extract(tar, member)
            while buffered.read(1 << 20):  # tar's zero blocks at the end count in the digests too
                pass
        except (tarfile.TarError, EOFError, OSError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            if blob_digest and (got_blob := stream.blob_digest_after_all()) != blob_digest:
                raise DigestMismatch("layer blob", blob_digest, got_blob) from None  # the truer reason
            detail = (str(e).splitlines() or ["?"])[0].rstrip(":")
            raise MiniboxError(f"layer {(name or blob_digest or '?')[:19]}… is not a valid tar ({detail})",
                               "pull or import the image again") from None  # fmt: skip
        got_blob = f"sha256:{stream.blob_sha256.hexdigest()}"
        if blob_digest and got_blob != blob_digest:
            raise DigestMismatch("layer blob", blob_digest, got_blob)
        got = f"sha256:{stream.tar_sha256.hexdigest()}"
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


class _Unpacker:
    """Writes tar entries under ``root``, a directory that starts empty.

    Because it starts empty, everything in it was made by an earlier entry, and the unpacker
    remembers what: which paths exist, which are real directories, which are symlinks. A path
    only needs the slow check (resolving it on disk) when one of its directories is a symlink;
    a layer of thousands of files then costs the same system calls ``tar -x`` makes.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.made: set[str] = set()  # relative paths that exist (entries and their parents)
        self.dirs: set[str] = set()  # ...of which real directories made here
        self.symlinks: set[str] = set()  # ...of which symlinks

    def _through_symlink(self, parts: list[str]) -> bool:
        return bool(self.symlinks) and any("/".join(parts[: i + 1]) in self.symlinks for i in range(len(parts)))

    def _make_parents(self, parts: list[str], name: str) -> str:
        relative = "/".join(parts)
        parent = os.path.join(self.root, *parts)
        if relative in self.dirs or not parts:
            return parent
        if self._through_symlink(parts) and not _inside(self.root, parent):
            raise UnsafeLayer(name, "its directory is a symlink pointing outside the layer")
        os.makedirs(parent, exist_ok=True)
        for i in range(len(parts)):
            prefix = "/".join(parts[: i + 1])
            if prefix not in self.symlinks:
                self.dirs.add(prefix)
            self.made.add(prefix)
        return parent

    def _remove(self, relative: str, path: str) -> None:
        if relative not in self.made:
            return
        if relative in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
            inside = relative + "/"
            for known in (self.made, self.dirs, self.symlinks):
                known.difference_update([p for p in known if p.startswith(inside)])
            self.dirs.discard(relative)
        elif os.path.lexists(path):
            os.unlink(path)
        self.made.discard(relative)
        self.symlinks.discard(relative)

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _check_name(member.name)
        if not parts:
            return  # "./" itself
        parent = self._make_parents(parts[:-1], member.name)
        name = parts[-1]
        if name == OPAQUE_MARKER:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if name.startswith(WHITEOUT_PREFIX):
            relative = "/".join([*parts[:-1], name[len(WHITEOUT_PREFIX) :]])
            path = os.path.join(parent, name[len(WHITEOUT_PREFIX) :])
            self._remove(relative, path)
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            self.made.add(relative)
            return
        relative, path = "/".join(parts), os.path.join(parent, name)
        if member.islnk():
            link_parts = _check_name(member.linkname)
            source = os.path.join(self.root, *link_parts)
            known = "/".join(link_parts) in self.made and not self._through_symlink(link_parts[:-1])
            if not known and (not _inside(self.root, source) or not os.path.lexists(source)):
                raise UnsafeLayer(member.name, f"hard link to {member.linkname!r}, which is not in the layer")
            self._remove(relative, path)
            os.link(source, path, follow_symlinks=False)
            self.made.add(relative)
            return
        if member.isdir():
            if relative in self.made and relative not in self.dirs:
                self._remove(relative, path)
            os.makedirs(path, exist_ok=True)
            self.dirs.add(relative)
        else:
            self._remove(relative, path)
            if member.issym():
                os.symlink(member.linkname, path)  # any target: it resolves inside the container's root
                self.symlinks.add(relative)
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
        self.made.add(relative)
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
