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

import errno
import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator

from engine.errors import MiniboxError
from engine.images.store import DigestMismatch, disk_error  # both also imported from here

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class NotATar(MiniboxError):
    def __init__(self, what: str, fix: str, detail: str) -> None:
        super().__init__(what, fix)
        self.detail = detail  # what tarfile said


class UnsafeLayer(MiniboxError):
    def __init__(self, member: str, why: str) -> None:
        super().__init__(f"refusing layer entry {member!r}: {why}", "the image is broken or malicious: do not use it")


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


def _zstd() -> tuple[type, type]:
    """Python 3.14's compression.zstd, or its backport (the ``backports.zstd`` package) before."""
    try:
        from compression.zstd import ZstdDecompressor, ZstdError
    except ImportError:
        try:
            from backports.zstd import ZstdDecompressor, ZstdError
        except ImportError:
            raise MiniboxError("this layer is compressed with zstd and the backports.zstd package is missing",
                               "run `make setup` (it installs it), or pull a gzip variant") from None  # fmt: skip
    return ZstdDecompressor, ZstdError


class _LayerStream(io.RawIOBase):
    """The tar inside a layer blob, read in one pass over the blob's bytes.

    On the way the blob is hashed (its digest), gunzipped or un-zstd'ed when it starts with their
    magic bytes, and the tar is hashed too (the layer's diff_id).
    """

    def __init__(self, source: io.IOBase) -> None:
        self.source = source
        self.blob_sha256, self.tar_sha256 = hashlib.sha256(), hashlib.sha256()
        self.chunks = self._tar_chunks()
        self.out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def _read_blob(self) -> bytes:
        data = self.source.read(READ_CHUNK)
        self.blob_sha256.update(data)
        return data

    def _tar_chunks(self) -> Iterator[bytes]:
        pending = self._read_blob()
        if pending[:4] == ZSTD_MAGIC:
            yield from self._zstd_chunks(pending)
            return
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

    def _zstd_chunks(self, pending: bytes) -> Iterator[bytes]:
        """zstd layers (``...tar+zstd``): one frame after another, as gzip members are."""
        decompressor, error = _zstd()
        while pending:
            inflate = decompressor()
            while not inflate.eof:
                data_in = b""
                if inflate.needs_input:  # else it still holds input it has not inflated yet
                    data_in, pending = pending or self._read_blob(), b""
                    if not data_in:
                        raise EOFError("the zstd data ends early (truncated)")
                try:
                    data = inflate.decompress(data_in, MOST_INFLATED)
                except error as e:
                    raise tarfile.ReadError(f"zstd: {e}") from None
                if data:
                    yield data
            pending = inflate.unused_data + pending
            while not pending and (more := self._read_blob()):
                pending = more

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
                  name: str = "") -> str:  # fmt: skip
    """Unpack a layer blob read from ``source`` into the new directory ``target``; return its diff_id.

    Digests given are checked while streaming; on any error nothing is left at ``target``.
    """
    tmp = f"{target}.unpacking{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        stream = _LayerStream(source)
        buffered = io.BufferedReader(stream, 1 << 20)
        try:
            unpacker = _Unpacker(tmp)
            try:
                with tarfile.open(fileobj=buffered, mode="r|") as tar:
                    for member in tar:
                        unpacker.extract(tar, member)
                unpacker.set_directory_times()
            finally:
                unpacker.close()
            while buffered.read(1 << 20):  # tar's zero blocks at the end count in the digests too
                pass
        except (tarfile.TarError, EOFError, OSError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise
            if blob_digest and (got_blob := stream.blob_digest_after_all()) != blob_digest:
                raise DigestMismatch("layer blob", blob_digest, got_blob) from None  # the truer reason
            detail = (str(e).splitlines() or ["?"])[0].rstrip(":")
            raise NotATar(f"layer {(name or blob_digest or '?')[:19]}… is not a valid tar ({detail})",
                          "get the image again (pull, load or import it)", detail) from None  # fmt: skip
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


def files_size(blob_path: str) -> int:
    """What ``store.unpacked_size`` will count once this layer blob is unpacked, read in one pass
    without writing anything (``history`` and ``images`` of a pulled image before its first run):
    each path's last entry counts, a whiteout deletes what it names, a hard link weighs what it
    links to, a directory nothing."""
    sizes: dict[tuple[str, ...], int] = {}

    def drop(path: tuple[str, ...]) -> None:
        for key in [key for key in sizes if key[: len(path)] == path]:
            del sizes[key]

    with open(blob_path, "rb", buffering=0) as f, tarfile.open(
        fileobj=io.BufferedReader(_LayerStream(f), 1 << 20), mode="r|"
    ) as tar:
        for member in tar:
            path = tuple(_check_name(member.name))
            if not path or path[-1] == OPAQUE_MARKER:  # "./"; an xattr on the directory
                continue
            if path[-1].startswith(WHITEOUT_PREFIX):  # unpacked as a 0/0 device: 0 bytes
                drop(path[:-1] + (path[-1][len(WHITEOUT_PREFIX) :],))
                continue
            if member.isdir():
                sizes.pop(path, None)  # a file there is replaced; a directory's entries stay
                continue
            drop(path)
            if member.isreg():
                sizes[path] = member.size
            elif member.islnk():
                sizes[path] = sizes.get(tuple(_check_name(member.linkname)), 0)
            elif member.issym():
                sizes[path] = len(os.fsencode(member.linkname))
            else:  # a device or a fifo
                sizes[path] = 0
    return sum(sizes.values())


def _check_name(name: str) -> list[str]:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts:
        raise UnsafeLayer(name, "absolute paths and '..' could write outside the layer")
    return parts


class _Unpacker:
    """Writes tar entries under ``root``, a new, empty directory: never anywhere else.

    The kernel, not this code, decides where a path leads. Each entry's directory is opened with
    ``openat2(RESOLVE_BENEATH)``, which fails (``EXDEV``) if any step of the path (a ``..``, an
    absolute symlink, a symlink leading up and out) would leave the layer; the entry is then made
    relative to that directory's descriptor, never following a symlink at its own name. So no
    sequence of entries (symlinks, hard links to symlinks, things replaced by symlinks) can make
    the unpacker write, delete or change anything outside the layer.
    """

    def __init__(self, root: str) -> None:
        from engine import syscalls

        self.openat2 = syscalls.openat2
        self.resolve = syscalls.RESOLVE_BENEATH | syscalls.RESOLVE_NO_MAGICLINKS
        self.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        # Every entry made in a directory changes its modification time: the times the layer
        # gives directories are set once all entries are in (as tar does).
        self.directory_times: dict[tuple[str, ...], int] = {}

    def close(self) -> None:
        os.close(self.root_fd)

    def set_directory_times(self) -> None:
        for parts, mtime in self.directory_times.items():
            try:  # O_NOFOLLOW: a later entry may have put something else at that name
                fd = self._open_dir(list(parts), "/".join(parts), flags=os.O_RDONLY | os.O_NOFOLLOW, raw=True)
            except OSError:
                continue
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)

    def _open_dir(self, parts: list[str], entry: str, create: bool = True, flags: int = os.O_PATH,
                  raw: bool = False) -> int:  # fmt: skip
        """A descriptor of the layer's directory ``parts`` (made, with its parents, if missing)."""
        try:
            return self.openat2(self.root_fd, "/".join(parts) or ".", flags | os.O_DIRECTORY | os.O_CLOEXEC,
                                self.resolve)  # fmt: skip
        except OSError as e:
            if raw:
                raise
            if e.errno == errno.ENOENT and create:
                for i in range(len(parts)):
                    parent = self._open_dir(parts[:i], entry, create=False)
                    try:
                        os.mkdir(parts[i], 0o755, dir_fd=parent)
                    except FileExistsError:
                        pass
                    finally:
                        os.close(parent)
                return self._open_dir(parts, entry, create=False, flags=flags)
            raise _refusal(e, entry) from None

    def extract(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = _check_name(member.name)
        if not parts:
            return  # "./" itself
        name = parts[-1]
        if name == OPAQUE_MARKER:  # the directory's lower contents are hidden
            fd = self._open_dir(parts[:-1], member.name, flags=os.O_RDONLY)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            return
        parent = self._open_dir(parts[:-1], member.name)
        try:
            self._extract_in(parent, name, tar, member)
        finally:
            os.close(parent)
        if member.isdir():
            self.directory_times[tuple(parts)] = int(member.mtime)

    def _extract_in(self, parent: int, name: str, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if name.startswith(WHITEOUT_PREFIX):  # deleted in this layer: overlayfs' mark is a 0/0 device
            hidden = name[len(WHITEOUT_PREFIX) :]
            _remove(parent, hidden)
            os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)
            return
        if member.islnk():
            self._hard_link(parent, name, member)
            return
        existing = _lstat(parent, name)
        if member.isdir():
            if existing and not stat.S_ISDIR(existing.st_mode):
                _remove(parent, name, existing)
                existing = None
            if not existing:
                os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                _set_metadata(fd, member)
            finally:
                os.close(fd)
            return
        if existing:
            _remove(parent, name, existing)
        if member.issym():
            os.symlink(member.linkname, name, dir_fd=parent)  # any target: it resolves inside the container's root
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)
        elif member.isfile():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(name, flags, 0o600, dir_fd=parent)
            with open(fd, "wb") as out:
                shutil.copyfileobj(tar.extractfile(member), out, 1 << 20)
                out.flush()
                _set_metadata(fd, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            if member.isfifo():
                os.mkfifo(name, 0o600, dir_fd=parent)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(name, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
            os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            os.chmod(name, member.mode & 0o7777, dir_fd=parent)  # a node just made here: not a symlink
            os.utime(name, (member.mtime, member.mtime), dir_fd=parent, follow_symlinks=False)

    def _hard_link(self, parent: int, name: str, member: tarfile.TarInfo) -> None:
        link_parts = _check_name(member.linkname)
        not_here = UnsafeLayer(member.name, f"hard link to {member.linkname!r}, which is not in the layer")
        if not link_parts:
            raise not_here
        try:
            source_dir = self._open_dir(link_parts[:-1], member.name, create=False, raw=True)
        except OSError as e:
            raise (not_here if e.errno in (errno.ENOENT, errno.ENOTDIR) else _refusal(e, member.name)) from None
        try:
            if _lstat(source_dir, link_parts[-1]) is None:
                raise not_here
            _remove(parent, name)
            # No AT_SYMLINK_FOLLOW: a link to a symlink is a second name of the symlink itself.
            os.link(link_parts[-1], name, src_dir_fd=source_dir, dst_dir_fd=parent, follow_symlinks=False)
        finally:
            os.close(source_dir)


def _refusal(error: OSError, entry: str) -> BaseException:
    why = {
        errno.EXDEV: "its directory is a symlink pointing outside the layer",
        errno.ELOOP: "its directory is a loop of symlinks",
        errno.ENOTDIR: "a directory on its path is a file in this layer",
        errno.ENOENT: "a directory on its path does not exist (a dangling symlink)",
    }.get(error.errno or 0)
    return UnsafeLayer(entry, why) if why else error


def _lstat(directory: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(directory: int, name: str, existing: os.stat_result | None = None) -> None:
    """rm -rf NAME in ``directory``; a symlink is removed, never followed."""
    existing = existing or _lstat(directory, name)
    if existing is None:
        return
    if stat.S_ISDIR(existing.st_mode):
        shutil.rmtree(name, dir_fd=directory)  # descriptor-based: safe against symlinks inside
    else:
        os.unlink(name, dir_fd=directory)


def _set_metadata(fd: int, member: tarfile.TarInfo) -> None:
    os.fchown(fd, member.uid, member.gid)  # before chmod: chown clears set-user-ID bits
    os.fchmod(fd, member.mode & 0o7777)
    os.utime(fd, (member.mtime, member.mtime))
    for key, value in (member.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            try:
                os.setxattr(fd, key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape"))
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
