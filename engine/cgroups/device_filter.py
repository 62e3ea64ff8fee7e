"""cgroup v2 device rules: a small eBPF program the kernel runs each time a device node is used.

cgroup v1 has a ``devices`` controller: rules written to ``devices.allow`` / ``devices.deny``
(``c 1:3 rwm`` = the character device 1:3, /dev/null, may be read, written and made with mknod).
cgroup v2 has no such files. Instead a program of type ``BPF_PROG_TYPE_CGROUP_DEVICE`` is attached
to the group with ``bpf(2)``; whenever one of the group's processes opens a device node or makes
one, the kernel runs the program with the device's type, major, minor and the access asked for,
and the program answers 1 (allow) or 0 (deny: ``EPERM``). runc and crun do the same.

This module turns the same rule lines as v1 into that program, loads it and attaches it:

    rules (last match wins)        the program, for each access bit asked for (m, r, w):
      deny  a                        try the rules from the last to the first;
      allow c 1:3 rwm                the first one that covers the device and the bit decides;
      allow c 136:* rwm              none: deny.
                                   every bit allowed: allow.

Each bit is decided on its own, as v1 does: after ``allow c 1:3 rwm`` and ``deny c 1:3 w``,
opening /dev/null for reading works, for writing does not. The program is attached with
``BPF_F_ALLOW_MULTI``: programs on parent groups (systemd's, docker's) still run too, and all must
agree. It goes away with the group: removing the directory detaches it.
"""

from __future__ import annotations

import ctypes
import os
import struct

from engine.errors import MiniboxError

# bpf(2) commands, program and attach types, flags (linux/bpf.h)
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
# what the program is given: struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
# access_type = access << 16 | type
DEVICE_TYPES = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280}.get(os.uname().machine, 321)

# eBPF instructions used (linux/bpf_common.h, linux/bpf.h): class | operation | source
LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
MOV64_REG, MOV64_IMM = 0xBF, 0xB7  # dst = src / dst = imm
AND64_IMM, RSH64_IMM = 0x57, 0x77  # dst &= imm / dst >>= imm
JA, JEQ_IMM, JNE_IMM = 0x05, 0x15, 0x55  # goto / if dst == imm goto / if dst != imm goto
EXIT = 0x95  # return r0
R0, R1, TYPE, ACCESS, MAJOR, MINOR = 0, 1, 2, 3, 4, 5  # registers; r1 points at the context


class Rule:
    """One rule line as v1 writes it: ``a``, or ``TYPE MAJOR:MINOR ACCESS`` (``*`` for any number)."""

    def __init__(self, allow: bool, line: str) -> None:
        self.allow = allow
        if line.strip() == "a":
            self.type, self.major, self.minor, self.access = None, None, None, "rwm"
            return
        try:
            kind, numbers, access = line.split()
            major, minor = numbers.split(":")
            self.type = DEVICE_TYPES[kind] if kind != "a" else None
            self.major = None if major == "*" else int(major)
            self.minor = None if minor == "*" else int(minor)
        except (ValueError, KeyError):
            raise MiniboxError(f"device rule {line!r} is not 'a' or 'TYPE MAJOR:MINOR ACCESS'",
                               "write it as v1 does, e.g. 'c 1:3 rwm'") from None  # fmt: skip
        if not access or set(access) - set(ACCESS_BITS):
            raise MiniboxError(f"device rule {line!r}: access must be letters of 'rwm'", "e.g. 'c 1:3 rw'")
        self.access = access

    def covers_every_device(self) -> bool:
        return self.type is None and self.major is None and self.minor is None


class _Program:
    """eBPF instructions with named jump targets, resolved when the program is finished."""

    def __init__(self) -> None:
        self.code: list[tuple[int, int, int, int, int | str]] = []  # (op, dst, src, imm, offset or label)
        self.labels: dict[str, int] = {}

    def emit(self, op: int, dst: int = 0, src: int = 0, imm: int = 0, off: int = 0, jump_to: str = "") -> None:
        self.code.append((op, dst, src, imm, jump_to or off))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def answer(self, allow: bool) -> None:
        self.emit(MOV64_IMM, R0, imm=int(allow))
        self.emit(EXIT)

    def assemble(self) -> bytes:
        out = b""
        for index, (op, dst, src, imm, target) in enumerate(self.code):
            offset = self.labels[target] - index - 1 if isinstance(target, str) else target
            out += struct.pack("<BBhi", op, src << 4 | dst, offset, imm)
        return out


def compile_rules(rules: list[tuple[bool, str]]) -> bytes:
    """The program (eBPF instructions, 8 bytes each) that enforces ``rules`` (allow?, line)."""
    parsed = [Rule(allow, line) for allow, line in rules]
    # A rule for every device hides every rule before it: only what follows the last one counts
    # (podman --privileged: "deny a", "allow a", then a rule per host device).
    last_all = max((i for i, rule in enumerate(parsed) if rule.covers_every_device()), default=0)
    parsed = parsed[last_all:]
    p = _Program()
    if parsed and parsed[0].covers_every_device() and all(rule.allow for rule in parsed):
        p.answer(True)  # everything is allowed
        return p.assemble()
    for letter, bit in ACCESS_BITS.items():
        done = f"{letter}-allowed"
        # Read the context afresh for each bit. Not for speed (registers still hold it) but for the
        # kernel's verifier, which walks every path through the program: a path arriving here
        # knows, say, minor == 3 from the rule that matched, and such paths would not merge, so
        # their number would multiply from bit to bit (400 rules: over its 1M-step limit).
        p.emit(LDX_MEM_W, TYPE, R1, off=0)  # the context: access_type at offset 0,
        p.emit(LDX_MEM_W, MAJOR, R1, off=4)  # major at 4,
        p.emit(LDX_MEM_W, MINOR, R1, off=8)  # minor at 8
        p.emit(MOV64_REG, ACCESS, TYPE)
        p.emit(AND64_IMM, TYPE, imm=0xFFFF)  # the low half of access_type is the device's type,
        p.emit(RSH64_IMM, ACCESS, imm=16)  # the high half the access bits asked for
        p.emit(MOV64_REG, R0, ACCESS)
        p.emit(AND64_IMM, R0, imm=bit)
        p.emit(JEQ_IMM, R0, imm=0, jump_to=done)  # this bit is not asked for
        decided = False
        for number, rule in reversed(list(enumerate(parsed))):
            if letter not in rule.access:
                continue
            next_rule = f"{letter}-after-{number}"
            for register, wanted in ((TYPE, rule.type), (MAJOR, rule.major), (MINOR, rule.minor)):
                if wanted is not None:
                    p.emit(JNE_IMM, register, imm=wanted, jump_to=next_rule)
            if rule.allow:
                p.emit(JA, jump_to=done)
            else:
                p.answer(False)
            if rule.covers_every_device():
                decided = True  # nothing below is reachable (the kernel refuses unreachable code)
                break
            p.label(next_rule)
        if not decided:
            p.answer(False)  # no rule covers this device for this bit
        p.label(done)
    p.answer(True)
    return p.assemble()


class _LoadAttr(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16)]  # fmt: skip


class _AttachAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]  # fmt: skip


_libc = ctypes.CDLL(None, use_errno=True)


def _bpf(command: int, attr: ctypes.Structure) -> int:
    result = _libc.syscall(_SYS_BPF, command, ctypes.byref(attr), ctypes.sizeof(attr))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def attach(cgroup_dir: str, rules: list[tuple[bool, str]]) -> None:
    """Load the program for ``rules`` and attach it to the cgroup v2 directory ``cgroup_dir``."""
    code = compile_rules(rules)
    instructions = ctypes.create_string_buffer(code, len(code))
    license_text = ctypes.create_string_buffer(b"Apache-2.0")
    load = _LoadAttr(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(code) // 8,
                     insns=ctypes.addressof(instructions), license=ctypes.addressof(license_text),
                     prog_name=b"minibox_devices")  # fmt: skip
    try:
        program = _bpf(BPF_PROG_LOAD, load)
    except OSError as e:
        # Again with the verifier's log, for its reason. Not the first time: the log has a line
        # per instruction checked, and a load whose log overflows its buffer fails (ENOSPC).
        log = ctypes.create_string_buffer(1 << 22)
        load.log_level, load.log_size, load.log_buf = 1, len(log), ctypes.addressof(log)
        try:
            os.close(_bpf(BPF_PROG_LOAD, load))
        except OSError:
            pass
        reason = (log.value.decode(errors="replace").strip().splitlines() or [""])[-1]
        raise MiniboxError(f"the kernel refused the device filter (bpf: {e.strerror}{'; ' + reason if reason else ''})",
                           "check that the kernel has CONFIG_CGROUP_BPF and that we run as root") from None  # fmt: skip
    group = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _bpf(BPF_PROG_ATTACH, _AttachAttr(target_fd=group, attach_bpf_fd=program, attach_type=BPF_CGROUP_DEVICE,
                                          attach_flags=BPF_F_ALLOW_MULTI))  # fmt: skip
    except OSError as e:
        raise MiniboxError(f"cannot attach the device filter to {cgroup_dir} (bpf: {e.strerror})",
                           "check that it is a cgroup v2 directory and that we run as root") from None  # fmt: skip
    finally:
        os.close(group)
        os.close(program)  # the attachment keeps the program alive, until the group is removed
