"""``workshop``: placeholder entry point until the TUI lands; runs the guided minibox demo."""

from __future__ import annotations


def main() -> int:
    from workshop_tui.demo import run_demo

    return run_demo()


if __name__ == "__main__":
    raise SystemExit(main())
