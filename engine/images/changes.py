"""What a container changed, and making an image of it: ``minibox diff``, ``commit``, ``history``.

A container's changes are exactly its overlay **upper** directory: a written file was copied up
there, a new file was made there, a deleted one left a whiteout (a 0/0 character device) there.
``diff`` reads it (A added, C changed, D deleted, as ``docker diff``); ``commit`` packs it as a new
layer on top of the image's (whiteouts become ``.wh.`` entries, see ``layers.py``).
"""

from __future__ import annotations

import os

from engine.errors import MiniboxError
from engine.images.layers import is_whiteout, walk
from engine.state import Record


def diff(record: Record) -> list[tuple[str, str]]:
    """(kind, path) for every change in the container's upper layer, sorted by path."""
    from engine.images import find_in_layers

    upper = record.data["rootfs"].get("upper")
    if not upper or not os.path.isdir(upper):
        raise MiniboxError(f"container {record.name} has no writable layer any more", "it was removed")
    layers = record.data["rootfs"].get("layers") or []
    changes = []
    for relative, st in walk(upper):
        if is_whiteout(st):
            changes.append(("D", f"/{relative}"))
        elif find_in_layers(layers, relative) is None:
            changes.append(("A", f"/{relative}"))
        else:
            changes.append(("C", f"/{relative}"))
    return sorted(changes, key=lambda change: change[1])


def commit(record: Record, tag: str = "", message: str = "", author: str = "") -> str:
    """A new image: the container's image plus one layer holding its upper directory."""
    from engine import images

    with images.StoreLock(record.paths):  # prune and rmi wait: the layer comes before the image
        return _commit(record, tag, message, author)


def _commit(record: Record, tag: str, message: str, author: str) -> str:
    from engine import images

    image = images.get(record.paths, record.data.get("image_id") or record.data["image"])
    upper = record.data["rootfs"]["upper"]
    diff_id, blob = images.add_layer_from_directory(record.paths, upper)
    store = images.Store(record.paths)
    manifest = store.manifest(image.id)
    settings = dict(image.settings)
    created_by = f"minibox commit {record.name}" + (
        f" ({' '.join(record.data['command'])})" if record.data.get("command") else ""
    )
    history = list(image.config.get("history") or [])
    step = {"created": images.timestamp(), "created_by": created_by}
    if message:
        step["comment"] = message
    if author:
        step["author"] = author
    return images.create_image(
        record.paths,
        [*image.config["rootfs"]["diff_ids"], diff_id],
        [*(layer["digest"] for layer in manifest["layers"]), blob],
        settings,
        [*history, step],
        tag,
        media_types=[*(layer["mediaType"] for layer in manifest["layers"]), images.MEDIA_LAYER_GZIP],
    )


def history(image: object) -> list[dict]:
    """The image's history, newest first, each step with the size of the layer it made (or 0)."""
    from engine import images

    assert isinstance(image, images.Image)
    steps = list(image.config.get("history") or [{}] * len(image.layers))
    layer_sizes = image.layer_sizes()
    rows, layer_index = [], 0
    for step in steps:
        empty = step.get("empty_layer", False)
        size = 0 if empty or layer_index >= len(layer_sizes) else layer_sizes[layer_index]
        if not empty:
            layer_index += 1
        rows.append({"created": step.get("created", ""), "created_by": step.get("created_by", ""),
                     "comment": step.get("comment", ""), "size": size, "empty_layer": empty})  # fmt: skip
    return list(reversed(rows))
