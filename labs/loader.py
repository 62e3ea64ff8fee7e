"""Read lab folders into ``model.Lab`` objects.

Logic comes from ``lab.toml`` (parsed with the standard library's ``tomllib``); text from the
Markdown files, taken from ``i18n/LANG/`` first when a translation exists. A step's text has an
optional front matter block (``---`` / ``title: ...`` / ``---``), a body whose ```` ```run ````
code blocks are the commands a front end may offer to run, and a ``## Hints`` section whose
top-level bullets are the hints, in order.
"""

from __future__ import annotations

import os
import re
import tomllib

from labs import LABS_DIR
from labs.model import Lab, Step

FOLDER = re.compile(r"^(\d\d)-([a-z0-9-]+)$")
RUN_BLOCK = re.compile(r"^```run\n(.*?)^```", re.S | re.M)


class LabFormatError(Exception):
    """A lab that cannot be read; ``where`` is FILE or FILE:LINE."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def lab_folders(root: str = LABS_DIR) -> list[str]:
    return sorted(os.path.join(root, d) for d in os.listdir(root) if FOLDER.match(d))


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """``---\\nkey: value\\n---\\nbody`` -> ({key: value}, body). Values are one line each."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}, text
    meta = {}
    for line in text[4:end].splitlines():
        key, _, value = line.partition(":")
        if key.strip():
            meta[key.strip()] = value.strip()
    return meta, text[end + 5 :]


def split_hints(body: str) -> tuple[str, list[str]]:
    """Cut the ``## Hints`` section off the body; its top-level ``- `` bullets are the hints."""
    match = re.search(r"^## Hints\s*$", body, re.M)
    if not match:
        return body.rstrip() + "\n", []
    hints: list[str] = []
    for line in body[match.end() :].splitlines():
        if line.startswith("- "):
            hints.append(line[2:].strip())
        elif line.startswith("  ") and hints:
            hints[-1] += " " + line.strip()
    return body[: match.start()].rstrip() + "\n", hints


def text_path(directory: str, relative: str, language: str) -> str:
    translated = os.path.join(directory, "i18n", language, relative)
    return translated if language != "en" and os.path.exists(translated) else os.path.join(directory, relative)


def read_text(directory: str, relative: str, language: str) -> tuple[str, str]:
    path = text_path(directory, relative, language)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    except FileNotFoundError:
        raise LabFormatError(path, "missing text file") from None


def load(directory: str, language: str = "en") -> Lab:
    folder = os.path.basename(directory.rstrip("/"))
    match = FOLDER.match(folder)
    if not match:
        raise LabFormatError(directory, "a lab folder is named NN-name, e.g. 03-uts")
    toml_path = os.path.join(directory, "lab.toml")
    try:
        with open(toml_path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise LabFormatError(toml_path, "missing") from None
    except tomllib.TOMLDecodeError as e:
        raise LabFormatError(toml_path, str(e)) from None
    intro_text, intro_path = read_text(directory, "intro.md", language)
    meta, intro = split_front_matter(intro_text)
    finish, _ = read_text(directory, "finish.md", language)
    steps = []
    for raw in data.get("steps", []):
        step_id = raw.get("id", "")
        text, path = read_text(directory, f"steps/{step_id}.md", language)
        step_meta, body = split_front_matter(text)
        body, hints = split_hints(body)
        steps.append(Step(
            id=step_id,
            title=step_meta.get("title", step_id),
            body=body,
            commands=[block.strip() for block in RUN_BLOCK.findall(body)],
            hints=hints,
            observe=list(raw.get("observe", [])),
            checks=list(raw.get("checks", [])),
            solution=list(raw.get("solution", [])),
            setup=list(raw.get("setup", [])),
            source=path,
        ))  # fmt: skip
    return Lab(
        id=match.group(2),
        number=int(match.group(1)),
        title=meta.get("title", match.group(2)),
        goal=meta.get("goal", ""),
        minutes=int(data.get("minutes", 0)),
        requires=list(data.get("requires", [])),
        intro=intro,
        finish=finish,
        steps=steps,
        containers=list(data.get("containers", [])),
        cleanup=list(data.get("cleanup", [])),
        directory=directory,
        language=language,
        sandbox=bool(data.get("sandbox", False)),
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        observe_pid=str(data.get("observe_pid", "")),
    )


def load_all(root: str = LABS_DIR, language: str = "en") -> list[Lab]:
    return [load(d, language) for d in lab_folders(root)]


def find(lab_ref: str, root: str = LABS_DIR, language: str = "en") -> Lab:
    """A lab by id (``uts``), number (``3``) or folder name (``03-uts``)."""
    for directory in lab_folders(root):
        match = FOLDER.match(os.path.basename(directory))
        if match and lab_ref in (match.group(2), match.group(0), str(int(match.group(1))), match.group(1)):
            return load(directory, language)
    known = ", ".join(FOLDER.match(os.path.basename(d)).group(2) for d in lab_folders(root))
    raise KeyError(f"no lab {lab_ref!r}; the labs are: {known}")
