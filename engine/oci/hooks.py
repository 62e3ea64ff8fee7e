"""OCI hooks: programs config.json asks the runtime to run at set moments of a container's life.

    createRuntime, prestart  runtime's namespaces  after namespaces and mounts exist, before pivot_root
    createContainer          container's           the same moment, inside the container
    startContainer           container's           at `start`, just before the command's execve
    poststart                runtime's             after the command started, before `start` returns
    poststop                 runtime's             after `delete` removed the container

Each hook gets the container's state (the JSON ``state`` prints) on its standard input. A failing
create-time or start-time hook stops the container; a failing poststart or poststop hook is only
reported (the spec says so: the container is already running, or already gone). Tools such as
the NVIDIA container toolkit set up devices this way.
"""

from __future__ import annotations

import json
import os
import time

from engine.errors import MiniboxError


class HookFailed(MiniboxError):
    def __init__(self, kind: str, path: str, why: str) -> None:
        super().__init__(f"the {kind} hook {path} failed: {why}", "fix the hook, or remove it from config.json")
        self.exit_code = 1


def run(hooks: list[dict], state: dict, kind: str) -> None:
    """Run hooks in this (the runtime's) namespaces, one after the other; raise on a failure."""
    import subprocess

    for hook in hooks:
        argv = hook.get("args") or [hook["path"]]
        env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
        try:
            result = subprocess.run(argv, executable=hook["path"], env=env, input=json.dumps(state).encode(),
                                    capture_output=True, timeout=hook.get("timeout") or None)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise HookFailed(kind, hook["path"], f"still running after {hook['timeout']} s") from None
        except OSError as e:
            raise HookFailed(kind, hook["path"], e.strerror or str(e)) from None
        if result.returncode:
            raise HookFailed(kind, hook["path"], f"exit status {result.returncode}: {result.stderr.decode()[-200:]}")


def run_here(hooks: list[dict], state: bytes, kind: str) -> None:
    """Run hooks from the container's init, in its namespaces (no new imports: see process.py)."""
    for hook in hooks:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.dup2(read_end, 0)
                os.close(write_end)
                env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
                os.execve(hook["path"], hook.get("args") or [hook["path"]], env)
            finally:
                os._exit(127)
        os.close(read_end)
        try:
            os.write(write_end, state)
        except BrokenPipeError:
            pass  # a hook that does not read its input
        os.close(write_end)
        deadline = time.monotonic() + (hook.get("timeout") or 3600)
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise HookFailed(kind, hook["path"], f"still running after {hook['timeout']} s")
            time.sleep(0.001)
        code = os.waitstatus_to_exitcode(status)
        if code:
            raise HookFailed(kind, hook["path"], f"exit status {code}")
