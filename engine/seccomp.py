"""seccomp: a filter the kernel runs on every system call the container makes.

A seccomp filter is a small BPF program attached to a process (and inherited by its children, for
good): for each system call it answers allow, fail with an errno (``EPERM``...), or kill. Docker
and podman ship a default profile that fails ~50 dangerous calls (``kexec_load``, ``open_by_handle_at``,
``keyctl``...) even for root inside. Writing BPF by hand is error-prone; like runc and crun,
minibox has libseccomp (``libseccomp.so.2``, through ctypes) compile the OCI profile into it.

The filter is compiled in the runtime process, before any fork (so a bad profile is an error of
``create``, not a dead container), and loaded by the container's init just before ``execve``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json

from engine.errors import MiniboxError

ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000,
}  # fmt: skip
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}  # fmt: skip
EPERM, EEXIST, EACCES = 1, 17, 13
SCMP_FLTATR_CTL_NNP = 3  # set no_new_privs when loading (libseccomp's default: on)


class _ArgCompare(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]  # fmt: skip


class SeccompError(MiniboxError):
    def __init__(self, what: str) -> None:
        super().__init__(f"seccomp profile: {what}", "fix linux.seccomp in config.json")
        self.exit_code = 1


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        raise MiniboxError("libseccomp is not installed, and config.json asks for a seccomp filter",
                           "apt-get install libseccomp2") from None  # fmt: skip
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCompare)]  # fmt: skip
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    return lib


def _action(name: str, errno_ret: int | None) -> int:
    """libseccomp's action number; ERRNO carries the errno (EPERM unless the profile says)."""
    if name not in ACTIONS:
        raise SeccompError(f"unknown action {name!r} (known: {', '.join(ACTIONS)})")
    if name == "SCMP_ACT_ERRNO":
        return ACTIONS[name] | ((errno_ret if errno_ret is not None else EPERM) & 0xFFFF)
    return ACTIONS[name]


class Filter:
    """A compiled filter: build with ``Filter(profile)`` in the parent, ``load()`` in the child."""

    def __init__(self, profile: dict, no_new_privileges: bool) -> None:
        self.lib = _library()
        if "defaultAction" not in profile:
            raise SeccompError("defaultAction is missing")
        default = _action(profile["defaultAction"], profile.get("defaultErrnoRet"))
        if profile.get("flags"):
            raise SeccompError(f"flags {profile['flags']} are not supported")
        self.ctx = self.lib.seccomp_init(default)
        if not self.ctx:
            raise SeccompError("libseccomp could not start a filter")
        # Without no_new_privs the kernel accepts a filter only from a process that holds
        # CAP_SYS_ADMIN; the init loads it while still root (see process._finish_and_exec).
        self.lib.seccomp_attr_set(self.ctx, SCMP_FLTATR_CTL_NNP, int(no_new_privileges))
        for arch in profile.get("architectures") or []:
            token = self.lib.seccomp_arch_resolve_name(arch.removeprefix("SCMP_ARCH_").lower().encode())
            if token == 0:
                raise SeccompError(f"unknown architecture {arch!r}")
            result = self.lib.seccomp_arch_add(self.ctx, token)
            if result < 0 and result != -EEXIST:
                raise SeccompError(f"cannot add architecture {arch} (error {-result})")
        for rule in profile.get("syscalls") or []:
            if not rule.get("names") or "action" not in rule:
                raise SeccompError(f"a rule needs names and an action: {json.dumps(rule)[:100]}")
            action = _action(rule["action"], rule.get("errnoRet"))
            if action == default:
                continue  # libseccomp refuses a rule that says what the default says
            compares = [
                _ArgCompare(a["index"], OPERATORS[a["op"]], a.get("value", 0), a.get("valueTwo", 0))
                if a.get("op") in OPERATORS else self._bad_operator(a.get("op"))
                for a in rule.get("args") or []
            ]  # fmt: skip
            # libseccomp takes one comparison per argument in a rule; several on the same argument
            # mean "any of these" (docker's personality rule): one rule each, as runc does.
            indexes = [c.arg for c in compares]
            groups = [[c] for c in compares] if len(set(indexes)) < len(indexes) else [compares]
            for name in rule["names"]:
                number = self.lib.seccomp_syscall_resolve_name(name.encode())
                if number < 0:
                    continue  # a call this kernel/architecture does not have (as runc does)
                for group in groups:
                    array = (_ArgCompare * len(group))(*group)
                    result = self.lib.seccomp_rule_add_array(self.ctx, action, number, len(group), array)
                    if result < 0 and result != -EEXIST:  # EEXIST: the same rule came twice (podman's has)
                        raise SeccompError(f"the rule for {name} was refused by libseccomp (error {-result})")

    @staticmethod
    def _bad_operator(op: object) -> _ArgCompare:
        raise SeccompError(f"unknown argument operator {op!r} (known: {', '.join(OPERATORS)})")

    def load(self) -> None:
        """Attach the filter to this process (the container's init, just before execve)."""
        result = self.lib.seccomp_load(self.ctx)
        if result < 0:
            raise SeccompError(f"the kernel refused the filter (error {-result})")
