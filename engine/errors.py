"""One exception hierarchy for everything minibox can refuse or fail at.

Every error carries two parts: ``what`` went wrong and ``fix``, what the user can do about it.
The CLI prints them on one line and exits non-zero; the TUI and notebooks show the same line.
Nothing here touches the kernel: it is the vocabulary the rest of the engine speaks.
"""

from __future__ import annotations


class MiniboxError(Exception):
    """Base class: a problem the user can understand and act on (never a bug)."""

    exit_code = 125  # docker uses 125 for "the engine itself failed"

    def __init__(self, what: str, fix: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix

    def one_line(self) -> str:
        return f"{self.what}; {self.fix}" if self.fix else self.what


class NotRoot(MiniboxError):
    def __init__(self) -> None:
        super().__init__(
            "minibox needs root to create namespaces, mounts and cgroups",
            "run it as root, e.g. with sudo",
        )


class KernelFeatureMissing(MiniboxError):
    def __init__(self, feature: str, detail: str = "") -> None:
        more = f" ({detail})" if detail else ""
        super().__init__(
            f"this kernel lacks {feature}{more}",
            "use a Linux with every feature the labs need (e.g. Debian 12 or Ubuntu 24.04 kernels)",
        )
        self.feature = feature


class BadValue(MiniboxError):
    """A flag or argument the user gave cannot be understood."""

    def __init__(self, option: str, value: object, expected: str) -> None:
        super().__init__(f"bad value {value!r} for {option}", f"expected {expected}")
        self.option = option


class ImageNotFound(MiniboxError):
    def __init__(self, image: str) -> None:
        super().__init__(
            f"image {image!r} not found",
            "see `minibox images`; the built-in image is `busybox`",
        )


class CommandNotFound(MiniboxError):
    exit_code = 127  # the shell's (and docker's) code for "command not found"

    def __init__(self, command: str, found_in: str) -> None:
        """``found_in``: ``image 'busybox'``, ``container 'web'``, or the OCI runtime's ``the bundle``."""
        if found_in.startswith(("image ", "container ")):
            fix = "check the name (busybox has `sh`, `ls`, `ps`, ...) or give an absolute path"
        else:  # the OCI runtime (engine/oci): the command comes from config.json
            fix = "check process.args and process.env's PATH"
        super().__init__(f"command {command!r} not found in {found_in}", fix)


class CommandNotExecutable(MiniboxError):
    exit_code = 126

    def __init__(self, command: str, reason: str) -> None:
        super().__init__(f"cannot execute {command!r}: {reason}", "check the file's mode and format")


class ContainerNotFound(MiniboxError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"no such container: {ref!r}", "see `minibox ps -a` for names and IDs")


class NameInUse(MiniboxError):
    def __init__(self, name: str, container_id: str) -> None:
        super().__init__(
            f"the name {name!r} is already used by container {container_id[:12]}",
            f"remove it (`minibox rm -f {name}`) or choose another --name",
        )


class InvalidState(MiniboxError):
    """An operation the container's current state does not allow (the lifecycle's guards)."""

    def __init__(self, name: str, state: str, wanted: str, fix: str) -> None:
        super().__init__(f"container {name!r} is {state}, cannot {wanted}", fix)
        self.state = state


class NotRunning(InvalidState):
    def __init__(self, name: str, state: str, wanted: str = "exec into it") -> None:
        fix = (f"start it first: `minibox start {name}`" if state == "created"
               else f"start a new one with `minibox run`, or see `minibox logs {name}`")  # fmt: skip
        super().__init__(name, state, wanted, fix)


class Unsupported(MiniboxError):
    """A combination of options minibox does not (yet) implement."""


class SyscallError(MiniboxError):
    """A system call failed in a way the user may be able to fix (bad path, busy mount, ...)."""

    def __init__(self, call: str, errno_: int, detail: str = "") -> None:
        import os

        where = f" {detail}" if detail else ""
        super().__init__(f"{call}{where} failed: {os.strerror(errno_)}", "")
        self.errno = errno_
        self.call = call


def rebuild(report: str) -> MiniboxError:
    """Recreate an error a child process described as JSON ``[class, what, fix, exit_code]``."""
    from engine import fastjson

    class_name, what, fix, exit_code = fastjson.loads(report)
    cls = globals().get(class_name)
    if not (isinstance(cls, type) and issubclass(cls, MiniboxError)):
        cls = MiniboxError
    error = cls.__new__(cls)
    MiniboxError.__init__(error, what, fix)
    error.exit_code = exit_code
    return error
