"""minibox: a small container engine in plain Python, for learning how containers work.

This module is the stable public API; it only re-exports names. The engine never imports a user
interface (the TUI, notebooks and CLI import the engine, never the other way round).

    from engine import ContainerSpec, run
    exit_code = run(ContainerSpec("busybox", ["hostname"], hostname="box"))
"""

from engine.container import (
    create,
    exec_in,
    get,
    inspect,
    kill,
    list_containers,
    logs_path,
    remove,
    run,
    run_detached,
    start,
    stop,
)
from engine.errors import MiniboxError
from engine.gc import collect as gc
from engine.spec import ContainerSpec
from engine.state import Paths

__all__ = [
    "ContainerSpec", "MiniboxError", "Paths", "create", "exec_in", "gc", "get", "inspect", "kill",
    "list_containers", "logs_path", "remove", "run", "run_detached", "start", "stop",
]  # fmt: skip
