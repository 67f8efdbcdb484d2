"""``tensorbridge reduce A B``: cut the smallest ONNX subgraph that still fails the comparison the same way.

Exit codes: 0 a repro was written, 1 A and B agree (nothing to reduce), 2 an error (one line on stderr).

This package may not import the CLI (see the import contracts in pyproject.toml), so the command is
offered in :data:`COMMANDS` and converters/cli.py merges it into its own.
"""
from __future__ import annotations

import argparse
import json
import sys


def _kv(text: str) -> tuple[str, object]:
    k, _, v = text.partition("=")
    if not k or not v:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    try:
        return k.replace("-", "_"), json.loads(v)
    except ValueError:
        return k.replace("-", "_"), v


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="reference model (any format: .pt2, .onnx, .keras, .tflite, SavedModel folder)")
    p.add_argument("b", help="the model that fails against A (ONNX; or A's conversion to another format when "
                             "A is ONNX)")
    p.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="repro folder (default: <B>.repro beside B; an existing folder is never replaced: "
                        "a fresh name is picked)")
    p.add_argument("--inputs", action="append", default=[], metavar="FILE",
                   help=".npz/.npy inputs (matched by name, then position); repeat for several (default: random)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--preset", choices=["fp32", "fp16", "bf16", "int8"], default=None,
                   help="tolerance preset (default fp32)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (overrides the preset's)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (overrides the preset's)")
    p.add_argument("--noise-factor", type=float, default=None, metavar="K",
                   help="allowance for A's own rounding sensitivity, as in compare (0: off)")
    p.add_argument("--max-steps", type=int, default=8, metavar="N",
                   help="conversions tried at most when B is a conversion of ONNX A (default 8)")
    p.add_argument("--convert-option", action="append", default=[], type=_kv, metavar="KEY=VALUE",
                   help="an option B was converted with, when B is a conversion of ONNX A (as in convert: "
                        "fp16=true, keep_nchw=true, opset=17; default: what B's converter map records)")
    p.add_argument("--layer", default=None, metavar="NAME|INDEX",
                   help="the failing pair to reduce: A's tensor name or the layer index of the per-layer result "
                        "(default: the first divergence)")
    p.add_argument("--result-dir", default=None, metavar="DIR",
                   help="reuse a kept per-layer comparison of the same A and B (compare --per-layer --save-dir DIR) "
                        "instead of comparing again; its tolerance and inputs are used")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per job (default: no limit)")
    p.add_argument("--trust", action="store_true", help="allow running code stored in the files")
    p.add_argument("--progress", action="store_true",
                   help="print each step on stderr even when it is not a terminal (one line each)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _run(args) -> int:
    from ..errors import TensorbridgeError
    from .reduce import ReduceOptions, reduce_failure

    if args.max_steps < 1:
        raise TensorbridgeError("--max-steps: give at least 1")
    opts = ReduceOptions(preset=args.preset, atol=args.atol, rtol=args.rtol, noise_factor=args.noise_factor,
                         seed=args.seed, inputs=list(args.inputs), trust=args.trust, out=args.output,
                         max_steps=args.max_steps, timeout=args.timeout,
                         convert_options=dict(args.convert_option) if args.convert_option else None,
                         layer=args.layer, result_dir=args.result_dir)
    tty = sys.stderr.isatty()

    def progress(fraction=None, message="") -> None:
        if not message:
            return
        if tty and not args.json:
            print(f"\r\x1b[2K  {message[:150]}…", end="", file=sys.stderr, flush=True)
        elif args.progress:
            print(f"  {message}", file=sys.stderr, flush=True)

    try:
        res = reduce_failure(args.a, args.b, opts, progress=progress)
    finally:
        if tty and not args.json:
            print("\r\x1b[2K", end="", file=sys.stderr, flush=True)
    if args.json:
        json.dump(res.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for line in res.summary_lines():
            print(line)
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return 0 if res.differ else 1


# name -> (help, add_arguments, run), merged into converters.cli.COMMANDS by its plug-in loader
COMMANDS = {"reduce": ("cut the smallest ONNX subgraph that still fails a comparison the same way, saved as a repro "
                       "folder (exit 0 written, 1 A and B agree, 2 error)", _args, _run)}


def _more_commands() -> None:
    from .diff_cli import COMMANDS as diff_commands

    COMMANDS.update(diff_commands)


_more_commands()
