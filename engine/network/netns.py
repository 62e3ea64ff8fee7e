"""Entering network namespaces from the engine: the "host" side, and a container's side.

A network namespace is a whole network stack: its own links, addresses, routes, firewall
(nftables) and ``/proc/sys/net`` settings. Two facts make it easy to work in one without
spawning ``ip netns exec``:

- ``setns(2)`` with ``CLONE_NEWNET`` moves only the *calling thread*, so the engine can step in,
  open a netlink socket (which stays bound to that namespace), write a sysctl or start ``nft``
  (a child inherits the thread's namespace), then step back out;
- ``/run/netns/NAME`` is how ``ip netns`` names a namespace: a file kept open by a bind mount.

Where minibox puts its bridges and rules, the **host side**, is normally the namespace it runs
in. With ``MINIBOX_HOST_NETNS=NAME`` it is ``/run/netns/NAME`` instead: the workshop's network
labs and the test suite use that to play "the host" in a sandbox, never touching the real
machine's uplink or firewall.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine import syscalls
from engine.errors import MiniboxError

NETNS_DIR = "/run/netns"


def host_netns_name() -> str:
    """The name of the sandbox namespace playing the host, or "" for the one minibox runs in."""
    return os.environ.get("MINIBOX_HOST_NETNS", "")


OWN_NETNS = "/proc/thread-self/ns/net"


def host_netns_path() -> str:
    """Where the host side is: the sandbox named by MINIBOX_HOST_NETNS, else our own namespace."""
    name = host_netns_name()
    if not name:
        return OWN_NETNS
    path = os.path.join(NETNS_DIR, name)
    if not os.path.exists(path):
        raise MiniboxError(
            f"network namespace {name!r} (MINIBOX_HOST_NETNS) does not exist",
            f"create it (`ip netns add {name}`, or `workshop` makes it for network labs) or unset MINIBOX_HOST_NETNS",
        )
    return path


def current_home() -> str:
    """The host side that network commands work on now ("" = the namespace minibox runs in)."""
    name = host_netns_name()
    host_netns_path()  # a named sandbox must exist
    if not name and os.path.isdir(NETNS_DIR):
        here = inode()
        for entry in sorted(os.listdir(NETNS_DIR)):
            try:
                named = inode(os.path.join(NETNS_DIR, entry))
            except OSError:
                continue
            if named == here:  # a shell inside a practice namespace, without the variable
                raise MiniboxError(
                    f"minibox runs inside the network namespace {entry!r} but MINIBOX_HOST_NETNS is not set",
                    f"`export MINIBOX_HOST_NETNS={entry}` so that minibox finds that namespace's networks",
                )
    return name


def inode(path: str = OWN_NETNS) -> int:
    """A network namespace's identity: the inode of its nsfs file."""
    return os.stat(path).st_ino


@contextmanager
def entered(path: str) -> Iterator[None]:
    """Run the ``with`` block in the network namespace at ``path`` (this thread only)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstat(own).st_ino == os.fstat(target).st_ino:
            yield  # already there: save two system calls
            return
        syscalls.setns(target, syscalls.CLONE_NEWNET)
        try:
            yield
        finally:
            syscalls.setns(own, syscalls.CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)


def host_side() -> contextmanager:
    """``with host_side():`` -- where the bridges, NAT rules and published ports live."""
    return entered(host_netns_path())


def container_side(pid: int) -> contextmanager:
    """``with container_side(pid):`` -- inside the network namespace of process ``pid``."""
    return entered(f"/proc/{pid}/ns/net")


def sysctl_path(name: str) -> str:
    """``net.ipv4.ip_forward`` -> its file. Opened from a thread, it is that thread's namespace's."""
    return "/proc/sys/" + name.replace(".", "/")


def read_sysctl(name: str) -> str:
    with open(sysctl_path(name)) as f:
        return f.read().strip()


def write_sysctl(name: str, value: str) -> None:
    with open(sysctl_path(name), "w") as f:
        f.write(value)


def outside_event_loop(function: Callable) -> Callable:
    """Run ``function`` in a helper thread when this thread runs an asyncio event loop.

    pyroute2's synchronous API drives an event loop of its own, which asyncio refuses inside a
    running one (a Textual app's main thread, a Jupyter kernel). A new thread starts in the
    namespaces of the thread that creates it, so the call sees the same network namespace.
    """

    @functools.wraps(function)
    def wrapper(*args: object, **kwargs: object) -> object:
        if "asyncio" not in sys.modules or not _loop_running():
            return function(*args, **kwargs)
        outcome: dict = {}

        def target() -> None:
            try:
                outcome["value"] = function(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 -- handed back to the caller below
                outcome["error"] = e

        helper = threading.Thread(target=target, name=f"minibox-{function.__name__}")
        helper.start()
        helper.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    return wrapper


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
