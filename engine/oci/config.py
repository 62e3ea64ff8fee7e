"""A bundle's ``config.json`` (the OCI runtime spec), checked field by field.

Every field minibox acts on is listed in ``SCHEMA`` below. A field the runtime spec defines but
minibox does not implement (``SPEC_ONLY``: ``linux.intelRdt``, say) is refused with its full
name: a runtime that skipped it would run the container differently from what the manager asked
for, silently -- a missing limit or device rule is a hole nobody sees. A property the spec does
not define at all is ignored, as the spec requires of runtimes (an extension for another tool).
"""

from __future__ import annotations

import json
import os
import re

from engine.errors import BadValue, MiniboxError


class UnsupportedField(MiniboxError):
    def __init__(self, field: str, why: str = "minibox does not implement it") -> None:
        super().__init__(f"config.json field {field} is not supported: {why}",
                         "remove it from the bundle's config.json, or run this container with runc")  # fmt: skip
        self.exit_code = 1


# Fields of the runtime spec (up to 1.2) that minibox does not implement (array indexes left out).
SPEC_ONLY = {
    "solaris", "windows", "vm", "zos",
    "process.ioPriority", "process.scheduler", "process.execCPUAffinity", "process.commandLine",
    "process.user.username", "mounts.uidMappings", "mounts.gidMappings",
    "linux.intelRdt", "linux.personality", "linux.memoryPolicy", "linux.netDevices",
    "linux.resources.hugepageLimits", "linux.resources.network",
    "linux.resources.rdma", "linux.resources.unified",
    "linux.resources.memory.useHierarchy",
    "linux.resources.memory.checkBeforeUpdate",
    "linux.resources.cpu.idle", "linux.resources.cpu.burst",
    "linux.seccomp.listenerPath", "linux.seccomp.listenerMetadata",
}  # fmt: skip
# A type, a dict (an object with these keys), or a one-item list (an array of these).
# ANY_STRINGS: an object with any keys whose values are strings (annotations, sysctl).
ANY_STRINGS = "strings"
_ID_MAP = [{"containerID": int, "hostID": int, "size": int}]
_OFFSET = {"secs": int, "nanosecs": int}
SECCOMP_SCHEMA = {
    "defaultAction": str, "defaultErrnoRet": int, "architectures": [str], "flags": [str],
    "syscalls": [{"names": [str], "action": str, "errnoRet": int,
                  "args": [{"index": int, "value": int, "valueTwo": int, "op": str}]}],
}  # fmt: skip
SCHEMA = {
    "ociVersion": str, "hostname": str, "domainname": str, "annotations": ANY_STRINGS,
    "hooks": {name: [{"path": str, "args": [str], "env": [str], "timeout": int}]
              for name in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")},
    "root": {"path": str, "readonly": bool},
    "mounts": [{"destination": str, "type": str, "source": str, "options": [str]}],
    "process": {
        "terminal": bool, "consoleSize": {"height": int, "width": int},
        "user": {"uid": int, "gid": int, "umask": int, "additionalGids": [int]},
        "args": [str], "env": [str], "cwd": str,
        "capabilities": {"bounding": [str], "effective": [str], "permitted": [str], "inheritable": [str],
                         "ambient": [str]},
        "rlimits": [{"type": str, "soft": int, "hard": int}],
        "noNewPrivileges": bool, "oomScoreAdj": int,
        # Linux security modules: accepted only when empty (minibox loads no LSM profile).
        "apparmorProfile": "", "selinuxLabel": "",
    },
    "linux": {
        "namespaces": [{"type": str, "path": str}], "uidMappings": _ID_MAP, "gidMappings": _ID_MAP,
        "sysctl": ANY_STRINGS, "cgroupsPath": str, "maskedPaths": [str], "readonlyPaths": [str],
        "resources": {
            "memory": {"limit": int, "swap": int, "reservation": int, "swappiness": int, "disableOOMKiller": bool,
                       "kernel": int, "kernelTCP": int},
            "cpu": {"quota": int, "period": int, "shares": int, "cpus": str, "mems": str, "realtimeRuntime": int,
                    "realtimePeriod": int},
            "pids": {"limit": int},
            "devices": [{"allow": bool, "type": str, "major": int, "minor": int, "access": str}],
            "blockIO": {"weight": int, "leafWeight": int,
                        "weightDevice": [{"major": int, "minor": int, "weight": int, "leafWeight": int}],
                        **{f"throttle{kind}Device": [{"major": int, "minor": int, "rate": int}]
                           for kind in ("ReadBps", "WriteBps", "ReadIOPS", "WriteIOPS")}},
        },
        "devices": [{"path": str, "type": str, "major": int, "minor": int, "fileMode": int, "uid": int, "gid": int}],
        "seccomp": SECCOMP_SCHEMA, "rootfsPropagation": str, "mountLabel": "",
        "timeOffsets": {"monotonic": _OFFSET, "boottime": _OFFSET},
    },
}  # fmt: skip


def check(value: object, schema: object, field: str) -> None:
    """Raise UnsupportedField/BadValue unless ``value`` fits ``schema`` (nulls count as absent)."""
    if value is None:
        return
    if schema == "":  # a string field that may only be empty
        if value != "":
            raise UnsupportedField(field, "minibox loads no Linux security module profile")
    elif schema == ANY_STRINGS:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise BadValue(f"config.json {field}", value, "an object of strings")
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            raise BadValue(f"config.json {field}", value, "an object")
        for key, item in value.items():
            name = f"{field}.{key}" if field else key
            if key not in schema:
                if re.sub(r"\[\d+\]", "", name) in SPEC_ONLY and item not in ({}, [], None, ""):
                    raise UnsupportedField(name)  # (an empty one asks for nothing: podman sends "blockIO": {})
                continue  # not in the runtime spec: ignored, as the spec requires
            check(item, schema[key], name)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            raise BadValue(f"config.json {field}", value, "an array")
        for index, item in enumerate(value):
            check(item, schema[0], f"{field}[{index}]")
    elif schema is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadValue(f"config.json {field}", value, "an integer")
    elif not isinstance(value, schema):  # str, bool
        raise BadValue(f"config.json {field}", value, f"a {schema.__name__}")


def load(bundle: str) -> dict:
    """The bundle's config.json, checked; relative paths (root.path) resolved against the bundle."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as f:
            config = json.load(f)
    except FileNotFoundError:
        raise MiniboxError(
            f"no config.json in the bundle {bundle}", "give --bundle the directory holding config.json"
        ) from None
    except (OSError, ValueError) as e:
        raise MiniboxError(f"cannot read {path}: {e}", "write valid JSON (see `runc spec`)") from None
    check(config, SCHEMA, "")
    for required in ("root", "process"):
        if not config.get(required):
            raise BadValue("config.json", required, f"a {required} object (the runtime spec requires it)")
    if not config["process"].get("args"):
        raise BadValue("config.json process.args", [], "the command to run")
    root = config["root"]["path"]
    config["root"]["path"] = root if os.path.isabs(root) else os.path.join(bundle, root)
    if not os.path.isdir(config["root"]["path"]):
        raise MiniboxError(f"the root filesystem {config['root']['path']} is not a directory",
                           "fix root.path in config.json")  # fmt: skip
    return config
