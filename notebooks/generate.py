"""Lab definition -> Jupyter notebook (nbformat), never a second copy of the lab's text.

For each lab: a first cell that loads the extension and starts the lab, the introduction, then
per step: its text (Markdown) with each ```run block as a ``%%shell`` code cell in place, its
hints folded in a ``<details>``, a ``%view`` cell for the step's first observer, a ``check()``
cell, then the solution. Solutions are ``hidden`` (collapsed cells, tagged ``solution``, that run
only if the step is not done, then check it), ``separate`` (a second notebook,
LAB-solutions.ipynb) or ``none``.
"""

from __future__ import annotations

import os
import re

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from labs.model import Lab
from labs.runner import Runner

RUN_BLOCK = re.compile(r"^```run\n(.*?)^```\n?", re.S | re.M)
SOLUTION_MODES = ("hidden", "separate", "none")


def _step_cells(runner: Runner, lab: Lab, commands: bool, solutions: bool, portable: bool = False) -> list:
    def render(text: str) -> str:
        return runner.render(lab, text, portable=portable)

    cells = []
    for number, step in enumerate(lab.steps, 1):
        # Commands keep their placeholders ({workdir}, {pid:box}, ...): %%shell fills them when the
        # cell runs, on the machine that runs it, not the one that wrote the notebook.
        parts = RUN_BLOCK.split(step.body)
        text = render(parts[0]).strip()
        cells.append(new_markdown_cell(f"## Step {number}/{len(lab.steps)}: {step.title}\n\n{text}"))
        for i in range(1, len(parts), 2):
            if commands:
                cells.append(new_code_cell(f"%%shell\n{parts[i].rstrip()}"))
            else:
                cells.append(new_markdown_cell(f"```sh\n{render(parts[i]).rstrip()}\n```"))
            if parts[i + 1].strip():
                cells.append(new_markdown_cell(render(parts[i + 1]).strip()))
        if step.hints:  # Markdown inside <details> is rendered when blank lines set it apart
            hints = "\n".join(f"1. {render(h)}" for h in step.hints)
            cells.append(new_markdown_cell(f"<details><summary>Hints</summary>\n\n{hints}\n\n</details>"))
        if step.observe:
            cells.append(new_code_cell(f"%view {step.observe[0]} --step {step.id}"))
        cells.append(new_code_cell(f'check("{step.id}")'))
        if solutions:  # after the check: a student stepping through sees their own ✗ first
            cell = new_code_cell(f"%solution {step.id}")
            cell.metadata.update({"tags": ["solution"], "jupyter": {"source_hidden": True}})
            cells.append(cell)
    return cells


def notebook_for(
    runner: Runner, lab: Lab, solutions: str = "hidden", commands: bool = True, portable: bool = False
) -> nbformat.NotebookNode:
    """The lab as a notebook; ``commands=False`` leaves the ```run blocks as text (nothing done);
    ``portable``: its text holds no fact of this machine (see Runner.render), for other machines."""
    if solutions not in SOLUTION_MODES:
        raise ValueError(f"solutions must be one of {SOLUTION_MODES}")
    nb = new_notebook()
    nb.metadata.update({
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "title": lab.title, "workshop": {"lab": lab.id, "solutions": solutions},
    })  # fmt: skip
    intro = runner.render(lab, lab.intro, portable).strip()
    nb.cells = [
        new_code_cell(f"%load_ext notebooks.magics\n%lab_start {lab.id}"),
        new_markdown_cell(f"# {lab.title}\n\n**Goal:** {lab.goal}\n\n{intro}"),
        *_step_cells(runner, lab, commands, solutions == "hidden", portable),
        new_markdown_cell(f"## Done\n\n{runner.render(lab, lab.finish, portable).strip()}"),
    ]
    return nb


def export(
    runner: Runner, labs: list[Lab], directory: str, solutions: str = "hidden", keep: bool = False,
    portable: bool = False,
) -> list[str]:
    """Write each lab's notebook (and, with ``separate``, its solution notebook); return the paths.
    ``keep``: a notebook already there is the student's work, left as it is; ``portable``: for
    other machines (``workshop notebook --export``, the offline bundle)."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for lab in labs:
        base = os.path.join(directory, f"{lab.number:02d}-{lab.id}")
        if keep and os.path.exists(f"{base}.ipynb"):
            written.append(f"{base}.ipynb")
            continue
        mode = "none" if solutions == "separate" else solutions
        nbformat.write(notebook_for(runner, lab, mode, portable=portable), f"{base}.ipynb")
        written.append(f"{base}.ipynb")
        if solutions == "separate":
            nbformat.write(notebook_for(runner, lab, "hidden", portable=portable), f"{base}-solutions.ipynb")
            written.append(f"{base}-solutions.ipynb")
    return written
