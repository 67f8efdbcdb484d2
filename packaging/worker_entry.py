"""Entry point of the bundled worker executable (``tensorbridge-worker``): same as
``python -m converters.jobs.worker JOB_DIR FD [--wait MODULES]``.

The engine also starts ``sys.executable -S -c CODE ARGS...`` for small helpers (the staging folder's
watchdog in converters/routes/common.py); in a bundle ``sys.executable`` is this program, so that form
runs CODE with ``sys.argv = ["-c", *ARGS]`` as the interpreter would.
"""
import os
import sys


def _run_code(argv: list[str]) -> int:
    i = argv.index("-c")
    code = argv[i + 1]
    sys.argv = ["-c"] + argv[i + 2:]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if "-c" in args[:3] and all(a.startswith("-") for a in args[:args.index("-c")]):
        code = _run_code(sys.argv)
    else:
        from converters.jobs.worker import main

        code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
