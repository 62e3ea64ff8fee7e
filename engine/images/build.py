"""``minibox build``: an image from a Minifile, a Dockerfile subset, one layer per RUN and COPY.

    FROM busybox                      the base image
    ENV GREETING=hello                config only: no layer (history says "empty_layer")
    WORKDIR /app                      config, plus a layer making the directory if it is missing
    COPY site/ /app/site/             files of the build context -> a new layer
    RUN echo $GREETING > /app/note    a container runs the command; its upper layer -> a new layer
    LABEL maintainer=me
    CMD ["httpd", "-f", "-p", "80"]   (or shell form: CMD httpd -f -p 80)
    ENTRYPOINT ["/bin/sh", "-c"]

Every step makes an image (untagged, as docker's intermediate images). The **build cache** maps
(the image a step starts from, the step's text, and for COPY the sha256 of the files copied) to
the image it made: an unchanged step is reused instead of run, exactly as docker's classic
builder does, so only the steps after a change run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
from collections.abc import Callable

from engine import images
from engine.errors import BadValue, MiniboxError
from engine.images.store import Store, StoreLock
from engine.state import Lock, Paths, write_json_atomic

INSTRUCTIONS = ("FROM", "RUN", "COPY", "ENV", "WORKDIR", "CMD", "ENTRYPOINT", "LABEL")


class BuildError(MiniboxError):
    exit_code = 1


def parse(text: str, source: str = "Minifile") -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments); backslash continues a line, # starts a comment."""
    steps, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        instruction = word.upper()
        if instruction not in INSTRUCTIONS:
            raise BadValue(f"{source}:{start}", word, f"one of {', '.join(INSTRUCTIONS)}")
        if not rest.strip():
            raise BadValue(f"{source}:{start}", instruction, f"{instruction} followed by its arguments")
        steps.append((start, instruction, rest.strip()))
    if not steps or steps[0][1] != "FROM":
        raise BadValue(source, steps[0][1] if steps else "(empty)", "a first instruction FROM IMAGE")
    return steps


def _command(text: str) -> list[str]:
    """JSON form ``["a", "b"]`` as is; shell form ``a b`` as ``sh -c "a b"`` (docker's rules)."""
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise BadValue("CMD/ENTRYPOINT", text, 'a JSON array such as ["httpd", "-f"], or a plain command') from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise BadValue("CMD/ENTRYPOINT", text, "a JSON array of strings")
        return value
    return ["/bin/sh", "-c", text]


def _pairs(text: str, what: str) -> dict[str, str]:
    """``A=1 B="two words"``, or the old ``KEY value`` form."""
    words = shlex.split(text)
    if "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    pairs = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise BadValue(what, word, "KEY=VALUE")
        pairs[key] = value
    return pairs


class Builder:
    def __init__(self, paths: Paths, context: str, say: Callable[[str], None] = print) -> None:
        self.paths, self.context, self.say = paths, os.path.realpath(context), say
        self.store = Store(paths)
        self.cache_path = os.path.join(paths.images, "build-cache.json")

    # --- cache ---------------------------------------------------------------------------------

    def _cache(self) -> dict[str, str]:
        try:
            with open(self.cache_path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _cached(self, key: str) -> str | None:
        image_id = self._cache().get(key)
        return image_id if image_id and os.path.exists(self.store.manifest_path(image_id)) else None

    def _remember(self, key: str, image_id: str) -> None:
        with Lock(self.paths):
            cache = self._cache()
            replaced = cache.get(key)
            if replaced and replaced != image_id:  # `build --no-cache` ran the step again: the image it
                cache[f"replaced:{replaced}"] = replaced  # made before is still a build step's (not listed)
            cache[key] = image_id
            os.makedirs(self.paths.images, exist_ok=True)
            write_json_atomic(self.cache_path, cache)

    # --- steps ---------------------------------------------------------------------------------

    def build(self, minifile: str, tag: str = "", use_cache: bool = True) -> str:
        with open(minifile) as f:
            steps = parse(f.read(), os.path.basename(minifile))
        with StoreLock(self.paths):  # prune and rmi wait: each step's image is the next one's base
            return self._build(minifile, steps, tag, use_cache)

    def _build(self, minifile: str, steps: list[tuple[int, str, str]], tag: str, use_cache: bool) -> str:
        image: images.Image | None = None
        for index, (line, instruction, args) in enumerate(steps, 1):
            self.say(f"Step {index}/{len(steps)} : {instruction} {args}")
            if instruction == "FROM":
                image = images.get(self.paths, args)
                images.unpack_layers(self.paths, image)  # a pulled base: COPY and WORKDIR look into its layers
                self.say(f" ---> {image.id[7:19]}")
                continue
            assert image is not None
            key = self._key(image, instruction, args, minifile, line)
            cached = self._cached(key) if use_cache else None
            if cached:
                image = images.load(self.paths, cached)
                self.say(f" ---> Using cache\n ---> {cached[7:19]}")
                continue
            image = images.load(self.paths, self._step(image, instruction, args, minifile, line))
            self._remember(key, image.id)
            self.say(f" ---> {image.id[7:19]}")
        assert image is not None
        if tag:
            images.set_tag(self.paths, image.id, tag)
        self.say(
            f"Successfully built {image.id[7:19]}" + (f"\nSuccessfully tagged {images.normalize(tag)}" if tag else "")
        )
        return image.id

    def _key(self, image: images.Image, instruction: str, args: str, minifile: str, line: int) -> str:
        digest = hashlib.sha256(f"{image.id}\n{instruction} {args}".encode())
        if instruction == "COPY":
            for source in self._copy_sources(args, minifile, line)[0]:
                _hash_tree(digest, source)
        return digest.hexdigest()

    def _step(self, image: images.Image, instruction: str, args: str, minifile: str, line: int) -> str:
        settings = json.loads(json.dumps(image.settings))  # a deep copy
        history = list(image.config.get("history") or [])
        diff_ids = list(image.config["rootfs"]["diff_ids"])
        manifest = self.store.manifest(image.id)
        blobs = [layer["digest"] for layer in manifest["layers"]]
        media = [layer["mediaType"] for layer in manifest["layers"]]
        created_by = f"{instruction} {args}"
        new_layer: tuple[str, str] | None = None
        if instruction == "ENV":
            env = dict(item.partition("=")[::2] for item in settings.get("Env") or [])
            env.update(_pairs(args, f"ENV at line {line}"))
            settings["Env"] = [f"{k}={v}" for k, v in env.items()]
        elif instruction == "LABEL":
            settings["Labels"] = {**(settings.get("Labels") or {}), **_pairs(args, f"LABEL at line {line}")}
        elif instruction in ("CMD", "ENTRYPOINT"):
            settings["Cmd" if instruction == "CMD" else "Entrypoint"] = _command(args)
        elif instruction == "WORKDIR":
            path = os.path.normpath(os.path.join(settings.get("WorkingDir") or "/", args))
            settings["WorkingDir"] = path
            if image.find(path) is None:
                new_layer = self._directory_layer(path)
        elif instruction == "COPY":
            new_layer = self._copy(args, minifile, line, settings.get("WorkingDir") or "/")
        elif instruction == "RUN":
            new_layer = self._run(image, args)
        step = {"created": images.timestamp(), "created_by": created_by}
        if new_layer:
            diff_ids.append(new_layer[0])
            blobs.append(new_layer[1])
            media.append(images.MEDIA_LAYER_GZIP)
        else:
            step["empty_layer"] = True
        return images.create_image(self.paths, diff_ids, blobs, settings, [*history, step], media_types=media)

    def _directory_layer(self, path: str) -> tuple[str, str]:
        with _scratch(self.paths) as root:
            os.makedirs(os.path.join(root, path.lstrip("/")), mode=0o755)
            return images.add_layer_from_directory(self.paths, root)

    def _copy_sources(self, args: str, minifile: str, line: int) -> tuple[list[str], str]:
        words = shlex.split(args)
        if len(words) < 2:
            raise BadValue(f"COPY at line {line}", args, "COPY SOURCE... DEST")
        sources = []
        for word in words[:-1]:
            path = os.path.realpath(os.path.join(self.context, word))
            if path != self.context and not path.startswith(self.context + os.sep):
                raise BuildError(f"COPY at line {line}: {word!r} is outside the build context {self.context}",
                                 "copy only files under the directory given to `minibox build`")  # fmt: skip
            if not os.path.lexists(path):
                raise BuildError(f"COPY at line {line}: {word!r} is not in the build context {self.context}",
                                 "check the path (it is relative to the build context)")  # fmt: skip
            sources.append(path)
        return sources, words[-1]

    def _copy(self, args: str, minifile: str, line: int, workdir: str) -> tuple[str, str]:
        sources, dest = self._copy_sources(args, minifile, line)
        dest = os.path.normpath(os.path.join(workdir, dest)) + ("/" if dest.endswith("/") else "")
        with _scratch(self.paths) as root:
            into_dir = dest.endswith("/") or len(sources) > 1
            for source in sources:
                if os.path.isdir(source) and not os.path.islink(source):
                    target = os.path.join(root, dest.lstrip("/"))
                    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
                else:
                    target = os.path.join(root, dest.lstrip("/"), os.path.basename(source)) if into_dir else \
                        os.path.join(root, dest.lstrip("/"))  # fmt: skip
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copy2(source, target, follow_symlinks=False)
            for directory, dirnames, filenames in os.walk(root):
                for name in [*dirnames, *filenames]:
                    os.lchown(os.path.join(directory, name), 0, 0)  # files in an image belong to root
            return images.add_layer_from_directory(self.paths, root)

    def _run(self, image: images.Image, command: str) -> tuple[str, str]:
        """Run ``command`` in a container of ``image``; its upper layer becomes the new layer."""
        import engine
        from engine.spec import ContainerSpec

        spec = ContainerSpec(image.id, ["/bin/sh", "-c", command], workdir=image.settings.get("WorkingDir") or "/",
                             name=f"build-{os.urandom(4).hex()}")  # fmt: skip
        record = engine.create(spec, self.paths)
        try:
            null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            try:
                pid, _ = engine.start(record, (null, 1, 2))
            finally:
                os.close(null)
            from engine import process
            from engine.container import finalize

            code = process.wait_exit_code(pid)
            finalize(record, code)
            if code != 0:
                raise BuildError(
                    f"RUN {command!r} exited with {code}", "fix the command; the steps before it are cached"
                )
            return images.add_layer_from_directory(self.paths, record.data["rootfs"]["upper"])
        finally:
            engine.remove(record.id, force=True, paths=self.paths)


class _scratch:
    """A temporary directory under the image store (same file system: cheap to move)."""

    def __init__(self, paths: Paths) -> None:
        self.path = os.path.join(paths.images, f"staging-{os.getpid()}-build-{os.urandom(3).hex()}")

    def __enter__(self) -> str:
        os.makedirs(self.path)
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _hash_tree(digest: hashlib._Hash, path: str) -> None:  # type: ignore[name-defined]
    """Names, modes and contents of a file or tree, into ``digest`` (the COPY cache key)."""
    entries = [(path, "")]
    if os.path.isdir(path) and not os.path.islink(path):
        entries = []
        for directory, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames + dirnames):
                full = os.path.join(directory, name)
                entries.append((full, os.path.relpath(full, path)))
    for full, relative in entries:
        st = os.lstat(full)
        digest.update(f"{relative}\0{st.st_mode:o}\0".encode())
        if os.path.islink(full):
            digest.update(os.readlink(full).encode())
        elif os.path.isfile(full):
            with open(full, "rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
