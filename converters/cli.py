"""Engine subcommands of ``tensorbridge`` (no Qt here): inspect, and the conversion/comparison commands.

Exit codes: 0 success, 1 a check that failed (compare), 2 an error (one line on stderr; ``--debug``
adds the traceback and the worker log).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from .errors import TensorbridgeError, one_line
from .graph import shape_str

# name -> (help, add_arguments(parser), run(args) -> int). Other modules register here.
COMMANDS: dict[str, tuple[str, Callable, Callable]] = {}


def command(name: str, help: str):
    def deco(fn_pair):
        add, run = fn_pair
        COMMANDS[name] = (help, add, run)
        return fn_pair
    return deco


def _err(msg: str) -> None:
    if sys.stderr.isatty():  # a progress line may be standing on the terminal's last line: clear it
        print("\r\x1b[2K", end="", file=sys.stderr)
    print(f"tensorbridge: error: {msg}", file=sys.stderr)


# ---- inspect ---------------------------------------------------------------------------------------
def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="model file or SavedModel folder")
    p.add_argument("--json", action="store_true", help="print the whole graph as JSON")
    p.add_argument("--trust", action="store_true",
                   help="allow running code stored in the file (pickled modules, Keras Lambda layers)")
    p.add_argument("--input-shape", action="append", default=[], metavar="1,3,224,224",
                   help="shape of an input (repeat per input): a trusted pickled module is then traced into "
                        "its full graph instead of its module tree")
    p.add_argument("--in-process", action="store_true",
                   help="load in this process instead of a worker (faster start, no crash isolation)")


def _fmt_values(values: list[dict]) -> str:
    return ", ".join(f"{v['name']} {shape_str(None if v['shape'] is None else tuple(v['shape']))} "
                     f"{v.get('dtype') or '?'}" for v in values) or "-"


def _parse_shape(text: str) -> list[int]:
    try:
        dims = [int(d) for d in text.replace("x", ",").split(",") if d.strip()]
    except ValueError:
        dims = []
    if not dims or any(d <= 0 for d in dims):
        raise TensorbridgeError(f"--input-shape {text!r}: give positive sizes separated by commas, e.g. 1,3,224,224")
    return dims


def _has_alias(m: dict) -> bool:
    tensors = (m.get("graph") or {}).get("initializers") or m.get("weights") or []
    return any(t.get("alias_of") for t in tensors)


def _inspect_run(args) -> int:
    options = {"input_shapes": [_parse_shape(s) for s in args.input_shape]} if args.input_shape else {}
    if args.in_process:
        from .formats import load
        model_dict = load(args.path, trust=args.trust, **options).to_dict()
    else:
        from .jobs import run_job
        result, job = run_job("load", {"path": os.path.abspath(args.path), "trust": args.trust,
                                       "options": options})
        try:
            with open(result["model_json"]) as f:
                model_dict = json.load(f)
        finally:
            job.cleanup()
    if args.json:
        json.dump(model_dict, sys.stdout)
        sys.stdout.write("\n")
        return 0
    m = model_dict
    print(f"path:       {m['path']}")
    print(f"format:     {m['format']}")
    if "inputs" in m:
        print(f"inputs:     {_fmt_values(m['inputs'])}")
        print(f"outputs:    {_fmt_values(m['outputs'])}")
        print(f"nodes:      {m['node_count']:,}")
    for name, sig in (m.get("signatures") or {}).items():
        print(f"signature:  {name}: ({_fmt_values(sig['inputs'])}) -> ({_fmt_values(sig['outputs'])})")
    if "weight_count" in m:
        print(f"weights:    {m['weight_count']:,} tensors (weights only; attach an architecture for a graph)")
    print(f"parameters: {m['param_count']:,}" + (" (tied weights counted once)" if _has_alias(m) else ""))
    if m.get("buffer_count"):
        print(f"buffers:    {m['buffer_count']:,} (stored tensors that are not parameters: running statistics, "
              f"ids, constants)")
    for k, v in (m.get("extra") or {}).items():
        if isinstance(v, (str, int, float)):
            print(f"{k + ':':<12}{v}")
    for w in m.get("warnings") or []:
        print(f"warning:    {w}")
    return 0


COMMANDS["inspect"] = ("show a model's format, inputs, outputs, node and parameter counts",
                       _inspect_args, _inspect_run)


def _load_plugins() -> None:
    """Subcommands defined by other engine modules register themselves on import."""
    import importlib

    for mod in ("converters.routes.cli", "converters.compare.cli"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and mod.startswith(exc.name):
                continue
            raise
    COMMANDS.update(importlib.import_module("converters.parity.cli").COMMANDS)  # parity may not import the CLI


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    p = argparse.ArgumentParser(prog="tensorbridge",
                                description="Open, convert, run and compare PyTorch, TensorFlow, TFLite and ONNX models.")
    p.add_argument("--debug", action="store_true", help="show tracebacks and worker logs on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_, add, _run) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and worker logs on errors")
        add(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    debug = getattr(args, "debug", False)
    from .jobs import Stopped, cli_run

    # Ends the run's jobs on SIGTERM/SIGINT/SIGHUP and removes its job folders at the end (--debug keeps
    # those of failed jobs, for their logs).
    try:
        with cli_run(keep_failed=debug):
            return _dispatch(args, debug, Stopped)
    except Stopped as exc:  # a signal while an error was being reported
        _err(f"stopped by {exc.signal_name}; its running jobs were ended")
        return 2
    except KeyboardInterrupt:
        _err("cancelled")
        return 130


def _dispatch(args, debug: bool, Stopped) -> int:
    try:
        return COMMANDS[args.command][2](args)
    except Stopped as exc:
        _err(f"stopped by {exc.signal_name}; its running jobs were ended")
        return 2
    except KeyboardInterrupt:
        _err("cancelled")
        return 130
    except TensorbridgeError as exc:
        if debug:
            import traceback
            traceback.print_exc()
            log = getattr(exc, "log_path", None)
            if log and os.path.exists(log):
                print(f"--- worker log {log} ---", file=sys.stderr)
                try:
                    print(open(log).read()[-8000:], file=sys.stderr)
                except OSError:
                    pass
                print(f"--- the job folder is kept: {os.path.dirname(log)} ---", file=sys.stderr)
        _err(exc.message)
        return exc.exit_code
    except Exception as exc:  # anything else: still one line unless --debug
        if debug:
            raise
        _err(f"{one_line(exc)} (run with --debug for details)")
        return 2


if __name__ == "__main__":
    sys.exit(main())
