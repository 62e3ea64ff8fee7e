"""``workshop``: the labs in a terminal (see ``workshop_tui.cli``)."""

from __future__ import annotations


def main() -> int:
    from workshop_tui.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
