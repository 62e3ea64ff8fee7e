"""The lab format as data: what ``loader`` builds and every front end reads."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Step:
    id: str
    title: str
    body: str  # Markdown, placeholders such as {workdir} already filled in by the runner
    commands: list[str]  # the ```run blocks of the body, in order
    hints: list[str]
    observe: list[str]  # observer views to show: namespaces, processes, cgroups, mounts, network
    checks: list[dict]  # each: {"kind": ..., parameters}; all must pass
    solution: list[str]  # shell commands
    setup: list[str] = field(default_factory=list)
    source: str = ""  # the step's text file, for error messages


@dataclass
class Lab:
    id: str
    number: int
    title: str
    goal: str
    minutes: int
    requires: list[str]
    intro: str
    finish: str
    steps: list[Step]
    containers: list[str]  # removed when the lab is reset
    cleanup: list[str]  # shell commands run when the lab is reset
    directory: str
    language: str = "en"
    # Network labs: host commands, checks and minibox run in a practice namespace playing the
    # host (engine/network/sandbox.py), so the learner's real network is never touched.
    sandbox: bool = False
    # Variables every command of the lab gets, placeholders filled (lab 16: podman's config files).
    env: dict[str, str] = field(default_factory=dict)
    # A host command printing the PID of the container the side-by-side views show, for a lab
    # whose containers are not minibox's own (lab 16: podman's, through minibox-runc).
    observe_pid: str = ""

    def step(self, step_id: str) -> Step:
        """A step by its id, or by its number as the learner sees it ("2" for Step 2/4)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        if step_id.isdigit() and 1 <= int(step_id) <= len(self.steps):
            return self.steps[int(step_id) - 1]
        known = ", ".join(f"{n} {s.id}" for n, s in enumerate(self.steps, 1))
        raise LookupError(f"lab {self.id!r} has no step {step_id!r}; its steps are {known}")

    def index(self, step_id: str) -> int:
        return [s.id for s in self.steps].index(step_id)
