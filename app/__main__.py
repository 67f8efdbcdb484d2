"""The ``tensorbridge`` command.

``tensorbridge`` or ``tensorbridge FILE`` opens the window; engine subcommands (``inspect``, ``convert``,
``compare`` …) go to :mod:`converters.cli` without importing Qt; window subcommands (``--screenshot``,
``bench open``) stay here.
"""
from __future__ import annotations

import sys

WINDOW_COMMANDS = ("bench",)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in WINDOW_COMMANDS:
        from converters.cli import COMMANDS, _load_plugins

        _load_plugins()
        if first in COMMANDS:
            from converters.cli import main as cli_main
            return cli_main(argv)
    if argv and argv[0] in ("-h", "--help") and len(argv) == 1:
        from converters.cli import build_parser
        build_parser().print_help()
        print("\nWithout a command: tensorbridge [FILE] opens the window; "
              "tensorbridge --screenshot OUT.png [FILE] saves a picture of it.")
        return 0
    if argv and argv[0] == "bench":
        from .bench import main as bench_main
        return bench_main(argv[1:])
    from .launch import run_window
    return run_window(argv)


if __name__ == "__main__":
    sys.exit(main())
