"""Which image of a multi-platform index fits this machine (GOARCH names, as OCI uses them)."""

from __future__ import annotations

import platform

from engine.errors import MiniboxError

ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def machine() -> tuple[str, str]:
    return "linux", ARCHITECTURES.get(platform.machine(), platform.machine())


def choose(entries: list[dict]) -> dict:
    """The index entry for this machine's OS and architecture (attestation entries skipped)."""
    os_name, arch = machine()
    for entry in entries:
        wanted = entry.get("platform") or {}
        if wanted.get("os") == os_name and wanted.get("architecture") == arch:
            return entry
    offered = ", ".join(f"{(e.get('platform') or {}).get('os')}/{(e.get('platform') or {}).get('architecture')}"
                        for e in entries)  # fmt: skip
    raise MiniboxError(f"the image has no variant for {os_name}/{arch} (it offers: {offered})",
                       "use an image built for this machine")  # fmt: skip
