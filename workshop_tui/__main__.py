"""``workshop``: the labs in a terminal (see ``workshop_tui.cli``)."""

from __future__ import annotations


def main() -> int:
    import os
    import sys

    from workshop_tui.cli import main as cli_main

    try:
        code = cli_main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # `workshop list | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
