"""``workshop lint``: find what is wrong with a lab before a learner does.

Rejects a missing check, an unknown check kind or parameter, an unknown observer view, a broken
reference (a prerequisite that is not a lab, a container a check names that the lab never
declares), a step without a solution or without hints, a step text file that is missing. Each
problem names the file and, where it can, the line.
"""

from __future__ import annotations

import inspect
import os

from engine.observe import VIEWS
from labs import LABS_DIR
from labs.checks import KINDS
from labs.loader import FOLDER, LabFormatError, lab_folders, load


def _line_of(path: str, needle: str, after: int = 0) -> int:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    for number, line in enumerate(lines, 1):
        if number > after and needle in line:
            return number
    return 0


def lint_lab(directory: str, known_labs: set[str]) -> list[str]:
    """Problems of one lab, as ``FILE:LINE: message`` lines (empty when the lab is fine)."""
    try:
        lab = load(directory)
    except LabFormatError as e:
        return [str(e)]
    toml = os.path.join(directory, "lab.toml")
    problems = []

    def report(message: str, needle: str = "", after: int = 0, path: str = toml) -> None:
        line = _line_of(path, needle, after) if needle else 0
        problems.append(f"{path}:{line}: {message}" if line else f"{path}: {message}")

    if not lab.goal:
        report("intro.md has no `goal:` in its front matter", path=os.path.join(directory, "intro.md"))
    if not lab.steps:
        report("the lab has no [[steps]]")
    for requirement in lab.requires:
        if requirement not in known_labs:
            report(f"requires unknown lab {requirement!r}", requirement)
    seen = set()
    for step in lab.steps:
        where = _line_of(toml, f'id = "{step.id}"')
        if not step.id or step.id in seen:
            report(f"step id {step.id!r} is empty or used twice", f'id = "{step.id}"')
        seen.add(step.id)
        if not step.checks:
            report(f"step {step.id!r} has no check of its end state", f'id = "{step.id}"')
        if not step.solution:
            report(f"step {step.id!r} has no solution", f'id = "{step.id}"')
        if not step.hints:
            report(f"step {step.id!r} has no hints (a `## Hints` list)", path=step.source)
        if not step.commands:
            report(f"step {step.id!r} shows no command to run (a ```run block)", path=step.source)
        for view in step.observe:
            if view not in VIEWS:
                report(f"step {step.id!r}: unknown observer {view!r} (known: {', '.join(VIEWS)})", view, where)
        for check in step.checks:
            kind = check.get("kind")
            if kind not in KINDS:
                report(f"step {step.id!r}: unknown check kind {kind!r} (known: {', '.join(KINDS)})", f"{kind}", where)
                continue
            signature = inspect.signature(KINDS[kind])
            params = {k: v for k, v in check.items() if k not in ("kind", "says")}  # (says: any check's words)
            try:
                signature.bind(None, **params)
            except TypeError as e:
                report(f"step {step.id!r}: check {kind!r}: {e}", f'"{kind}"', where)
            container = params.get("container")
            if container and container not in lab.containers:
                report(f"step {step.id!r}: container {container!r} is not in the lab's `containers` list "
                       "(reset would leave it behind)", f'"{container}"', where)  # fmt: skip
    return problems


def lint_all(root: str = LABS_DIR) -> list[str]:
    folders = lab_folders(root)
    known = {FOLDER.match(os.path.basename(d)).group(2) for d in folders}
    stray = [d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not FOLDER.match(d)
             and not d.startswith(("_", "."))
             and not os.path.exists(os.path.join(root, d, "__init__.py"))]  # a Python package, not a lab  # fmt: skip
    problems = [f"{os.path.join(root, d)}: a lab folder is named NN-name" for d in stray]
    for directory in folders:
        problems += lint_lab(directory, known)
    return problems
