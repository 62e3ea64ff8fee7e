"""minibox: a small container engine in plain Python, for learning how containers work.

This module is the stable public API; it only re-exports names. The engine never imports a user
interface (the TUI, notebooks and CLI import the engine, never the other way round).

    from engine import ContainerSpec, run
    exit_code = run(ContainerSpec("busybox", ["hostname"], hostname="box"))

The names are loaded on first use (PEP 562 ``__getattr__``): ``import engine.images`` for a
``minibox pull`` should not pay for the container lifecycle's imports.
"""

from __future__ import annotations

__version__ = "0.1.0"  # the same as pyproject.toml's (a test compares them)

_WHERE = {
    "create": "engine.container", "exec_in": "engine.container", "get": "engine.container",
    "inspect": "engine.container", "kill": "engine.container", "list_containers": "engine.container",
    "logs_path": "engine.container", "remove": "engine.container", "run": "engine.container",
    "run_detached": "engine.container", "start": "engine.container", "stop": "engine.container",
    "start_created": "engine.container", "run_created": "engine.container",
    "MiniboxError": "engine.errors", "ContainerSpec": "engine.spec", "Paths": "engine.state",
}  # fmt: skip

__all__ = [*_WHERE, "gc"]


def __getattr__(name: str) -> object:
    if name == "gc":
        from engine.gc import collect

        return collect
    if name in _WHERE:
        # the built-in __import__, as importlib.import_module does underneath (importlib costs ~0.5 ms)
        value = getattr(__import__(_WHERE[name], fromlist=[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
