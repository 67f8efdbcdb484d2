"""``tensorbridge diff A B``: the structural diff of two models, read without running either.

Exit codes: 0 the two are identical node for node, 1 they differ, 2 an error (one line on stderr).
Offered in :data:`COMMANDS` (this package may not import the CLI); converters/parity/cli.py merges it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="the first model (any format: .onnx, .pt2, .keras, .tflite, SavedModel folder, …)")
    p.add_argument("b", help="the second model (often another version of A)")
    p.add_argument("--all", action="store_true", help="list the unchanged nodes too")
    p.add_argument("--json", action="store_true", help="print the whole diff as JSON")
    p.add_argument("--trust", action="store_true", help="allow running code stored in the files to read them")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed for reading both (default: no limit)")


def _run(args) -> int:
    from ..errors import TensorbridgeError
    from ..jobs import run_job
    from ..jobs.protocol import StructDiffParams

    for p in (args.a, args.b):
        if not os.path.exists(p):
            raise TensorbridgeError(f"no such file or folder: {p}")
    params = StructDiffParams(os.path.abspath(args.a), os.path.abspath(args.b), trust=args.trust)
    result, job = run_job("struct_diff", params.to_dict(), timeout=args.timeout)
    job.cleanup()
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        from .structdiff import StructDiff

        for line in StructDiff.from_dict(result).summary_lines(all=args.all):
            print(line)
    return 0 if result.get("identical") else 1


# name -> (help, add_arguments, run), merged into converters.cli.COMMANDS through converters.parity.cli
COMMANDS = {"diff": ("structural diff of two models without running them: nodes added, removed or changed (op, "
                     "attributes, shapes, weights); exit 0 identical, 1 they differ, 2 error", _args, _run)}
