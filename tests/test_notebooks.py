"""Every lab as a Jupyter notebook, executed by nbclient with a real ipykernel on the real engine:
with its commands and solutions every check reports ✓, without them every check reports ✗,
and no cell raises. One notebook is also rendered to HTML and screenshotted in Chromium."""

from __future__ import annotations

import os
import shutil

import nbformat
import pytest
from conftest import ROOT, leftovers
from nbclient import NotebookClient

from labs.runner import Runner
from notebooks.generate import export, notebook_for

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABS = [lab.id for lab in Runner(data_dir="/nonexistent").labs()]


@pytest.fixture
def runner(tmp_path):
    data = os.path.join(ROOT, "notebook-data", tmp_path.name)
    os.environ["WORKSHOP_DATA_DIR"] = data
    os.environ["WORKSHOP_HOME"] = os.path.join(data, "home")
    yield Runner(data_dir=data)
    shutil.rmtree(data, ignore_errors=True)


def execute(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """Run every cell in a fresh kernel; (cell source, output text) for each output."""
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": REPO}}).execute()
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            assert out.output_type != "error", f"{cell.source}\n{out.get('ename')}: {out.get('evalue')}"
            text = out.get("text") or (out.get("data") or {}).get("text/plain") or ""
            found.append((cell.source, text))
    return found


def text_of(nb: nbformat.NotebookNode) -> str:
    return "".join(cell.source for cell in nb.cells)


def check_results(outputs: list[tuple[str, str]]) -> list[str]:
    return [text for source, text in outputs if source.startswith("check(")]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("lab_id", LABS)
def test_lab_notebook_passes_with_its_commands_and_fails_cleanly_without(runner, lab_id):
    lab = runner.lab(lab_id)
    before = set(leftovers())
    try:
        undone = check_results(execute(notebook_for(runner, lab, solutions="none", commands=False)))
        assert len(undone) == len(lab.steps) and all(text.startswith("✗ step") for text in undone), undone
        runner.reset(lab_id)
        done = check_results(execute(notebook_for(runner, lab, solutions="hidden")))
        assert len(done) == len(lab.steps) and all(text.startswith("✓ step") for text in done), done
    finally:
        runner.reset(lab_id, remove_workdir=True)
    assert set(leftovers()) == before, f"{lab_id}: the notebook left things behind"


def test_export_writes_every_lab_and_separate_solutions(runner, tmp_path):
    paths = export(runner, runner.labs(), str(tmp_path), solutions="separate")
    assert len(paths) == 2 * len(LABS)
    learner = nbformat.read(paths[0], as_version=4)
    solutions = nbformat.read(paths[1], as_version=4)
    assert not any("%solution" in c.source for c in learner.cells)
    hidden = [c for c in solutions.cells if "%solution" in c.source]
    assert hidden and all(c.metadata["jupyter"]["source_hidden"] for c in hidden)
    # The text is the lab's own, not a copy kept by hand: a step's first sentence is in it.
    first_step = runner.lab(LABS[0]).steps[0]
    assert first_step.body.split("\n")[0][:40] in "".join(c.source for c in learner.cells)
    nbformat.validate(learner)


@pytest.mark.timeout(300)
def test_a_notebook_as_html_in_chromium(runner, tmp_path):
    """Render one executed notebook to HTML and screenshot it (tmp_path/uts-notebook.png)."""
    from nbconvert import HTMLExporter
    from playwright.sync_api import sync_playwright

    lab = runner.lab("uts")
    nb = notebook_for(runner, lab, solutions="hidden")
    try:
        execute(nb)
    finally:
        runner.reset("uts", remove_workdir=True)
    body, _ = HTMLExporter().from_notebook_node(nb)
    page_file = tmp_path / "uts.html"
    page_file.write_text(body)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(f"file://{page_file}")
        assert page.locator("table.lab-view").count() >= 1
        assert page.locator("text=✓ step own-hostname: done").count() == 1
        page.screenshot(path=str(tmp_path / "uts-notebook.png"), full_page=False)
        browser.close()


def test_the_students_notebook_is_kept_and_commands_keep_their_placeholders(runner, tmp_path):
    """`workshop notebook LAB` again must not write over a student's edits (--export, for a course,
    writes anew); and commands are filled where they run, not where the notebook was written."""
    lab = runner.lab("pid")
    (path,) = export(runner, [lab], str(tmp_path))
    mine = nbformat.read(path, as_version=4)
    mine.cells[0].source += "\n# my own note"
    nbformat.write(mine, path)
    assert export(runner, [lab], str(tmp_path), keep=True) == [path]
    assert "# my own note" in nbformat.read(path, as_version=4).cells[0].source
    export(runner, [lab], str(tmp_path))
    assert "# my own note" not in nbformat.read(path, as_version=4).cells[0].source
    shells = [c.source for c in nbformat.read(path, as_version=4).cells if c.source.startswith("%%shell")]
    assert any("{workdir}/pid1.txt" in source for source in shells)
    assert runner.workdir(lab) not in "".join(shells)
    # --export (a course's, the offline bundle's): the text holds no fact of the exporting machine
    # (its paths, its cgroup version), as the student's own does; a default install's instead.
    from engine import cgroups

    version = f"This machine uses cgroup **{cgroups.driver().version}**"
    for lab_id, local in (("chroot", runner.lab("chroot").directory), ("cgroups", version)):
        here, anywhere = (text_of(notebook_for(runner, runner.lab(lab_id), portable=p)) for p in (False, True))
        assert local in here and local not in anywhere, lab_id
        assert runner.workdir(runner.lab(lab_id)) not in anywhere
    assert "~/workshop/01-chroot/rootfs" in text_of(notebook_for(runner, runner.lab("chroot"), portable=True))


@pytest.mark.timeout(300)
def test_mistakes_are_one_line_and_a_restarted_kernel_finds_its_lab(runner, tmp_path, monkeypatch):
    """A wrong step, view or container is one UsageError line (they were tracebacks); a check run
    before an earlier step says so; and a kernel restarted in `workshop notebook`'s set-up has the
    magics and finds its lab from the notebook's name, with no first cell run (was a NameError)."""
    from nbformat.v4 import new_code_cell, new_notebook

    from workshop_tui.cli import _kernel_profile

    def run_cells(*sources: str) -> list[dict]:
        nb = new_notebook(cells=[new_code_cell(source) for source in sources])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": REPO}}).execute()  # fmt: skip
        return [cell.outputs for cell in nb.cells]

    try:
        first, wrong_step, wrong_view, no_box, ahead = run_cells(
            "%load_ext notebooks.magics\n%lab_start pid", 'check("copy_up")', "%view mount",
            "%view processes nosuchbox", 'check("two-numbers")',
        )
        for outputs, said in ((wrong_step, "has no step 'copy_up'"), (wrong_view, "VIEW one of"),
                              (no_box, "nosuchbox")):  # fmt: skip
            assert [out.output_type for out in outputs] == ["stream"], outputs  # no traceback
            assert outputs[0].name == "stderr" and outputs[0].text.startswith("UsageError: ")
            assert said in outputs[0].text and outputs[0].text.count("\n") == 1, outputs
        text = "".join(out.get("data", {}).get("text/plain", "") for out in ahead)
        assert "✗ step 1 (pid-one) is not done yet: this one builds on it" in text, text
        monkeypatch.setenv("IPYTHONDIR", _kernel_profile(runner.progress.directory))
        monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "04-pid.ipynb"))  # what Jupyter tells a kernel
        (restarted,) = run_cells('check("pid-one")')
        assert not [out for out in restarted if out.output_type == "error"], restarted
        text = "".join(out.get("data", {}).get("text/plain", "") + out.get("text", "") for out in restarted)
        assert "✗ step pid-one: not done yet" in text and "This lab is" not in text, text
    finally:
        runner.reset("pid", remove_workdir=True)


@pytest.mark.timeout(300)
def test_a_solution_cell_comes_after_the_check_and_records_the_step(runner):
    """Stepping through with Shift-Enter ran the hidden solution before the student's own check
    (a wrong command silently fixed); now the check says ✗ first, then the solution runs and the
    step is checked, recorded and shown done."""
    lab = runner.lab("uts")
    try:
        nb = notebook_for(runner, lab, solutions="hidden", commands=False)
        sources = [cell.source for cell in nb.cells]
        for step in lab.steps:
            assert sources.index(f'check("{step.id}")') + 1 == sources.index(f"%solution {step.id}")
        outputs = execute(nb)
        for step in lab.steps:
            checked = [text for source, text in outputs if source == f'check("{step.id}")']
            solved = "".join(text for source, text in outputs if source == f"%solution {step.id}")
            assert checked[0].startswith(f"✗ step {step.id}"), checked
            assert f"✓ step {step.id}: done" in solved, solved
        assert runner.finished("uts")
    finally:
        runner.reset("uts", remove_workdir=True)

