"""``tensorbridge convert``: plan and run a conversion in a worker process (progress on stderr)."""
from __future__ import annotations

import json
import os
import sys

from ..cli import COMMANDS
from .planner import TARGETS


def _args(p) -> None:
    p.add_argument("src", help="model file or SavedModel folder to convert (never modified)")
    p.add_argument("--to", required=True, choices=TARGETS,
                   help="target format: onnx, tf (SavedModel folder), keras (tf_keras .h5), tflite, torch (.pt2)")
    p.add_argument("-o", "--output", help="output path (default: beside SRC under a new name)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--opset", type=int, help="ONNX opset for hops that write ONNX")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME:1,3,224,224",
                   help="shape of an input (repeat per input); needed for TorchScript and pickled modules")
    p.add_argument("--input-names", help="comma-separated names for the ONNX inputs")
    p.add_argument("--output-names", help="comma-separated names for the ONNX outputs")
    p.add_argument("--dynamic-batch", action="store_true", help="make the batch dimension dynamic")
    p.add_argument("--fp16", action="store_true", help="TFLite with float16 weights")
    p.add_argument("--keep-nchw", action="store_true",
                   help="onnx2tf keeps every input channels-first (NCHW) instead of making it NHWC")
    p.add_argument("--keep-nchw-inputs", metavar="NAMES",
                   help="like --keep-nchw for some inputs only (comma-separated ONNX input names)")
    p.add_argument("--simplify", action="store_true", help="run onnxsim inside onnx2tf (slower)")
    p.add_argument("--no-optimize", action="store_true",
                   help="ONNX from torch: skip the ONNX optimizer (one node group per module; ONNX target only)")
    p.add_argument("--all-outputs", action="store_true",
                   help="keep every onnx2tf product (SavedModel, tf_keras .h5, fp32/fp16 TFLite)")
    p.add_argument("--keep-intermediates", action="store_true", help="keep the files of intermediate hops")
    p.add_argument("--plan", action="store_true", help="only show the route")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--trust", action="store_true", help="allow running code stored in the source file")
    p.add_argument("--timeout", type=float, help="give up after this many seconds")
    p.add_argument("--progress", action="store_true",
                   help="print progress lines on stderr even when it is not a terminal")


def options_from_args(args) -> dict:
    from .options import parse_shape_arg

    shapes = {}
    for i, text in enumerate(args.input_shape):
        name, shape = parse_shape_arg(text)
        shapes[name or str(i)] = shape
    keep = bool(args.keep_nchw)
    if args.keep_nchw_inputs:
        keep = [k for k in args.keep_nchw_inputs.split(",") if k]
    opts = {"opset": args.opset, "dynamic_batch": args.dynamic_batch, "input_shapes": shapes or None,
            "input_names": args.input_names.split(",") if args.input_names else None,
            "output_names": args.output_names.split(",") if args.output_names else None,
            "keep_nchw": keep, "fp16": args.fp16, "simplify": args.simplify,
            "onnx_optimize": False if args.no_optimize else None, "trust": args.trust,
            "all_outputs": args.all_outputs, "keep_intermediates": args.keep_intermediates}
    from .options import ConvertOptions
    ConvertOptions.from_dict(opts)  # fail here, before a worker starts
    return opts


def _run(args) -> int:
    from .planner import plan

    route = plan(args.src, args.to)
    opts = options_from_args(args)
    if args.plan:
        if args.json:
            json.dump(route.to_dict(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            print(route.describe())
        return 0
    from ..jobs import run_job

    tty = sys.stderr.isatty()
    show = tty or args.progress  # piped or logged: an error stays the only line unless asked for more

    def on_event(ev) -> None:
        if ev.kind == "progress" and show:
            frac = ev.data.get("fraction")
            pct = "" if frac is None else f"{frac * 100:3.0f}% "
            end = "\r" if tty else "\n"
            print(f"\x1b[2K{pct}{ev.data.get('message', '')}" if tty else f"{pct}{ev.data.get('message', '')}",
                  end=end, file=sys.stderr, flush=True)

    # The worker runs in its job folder: hand it absolute paths.
    params = {"src": os.path.abspath(args.src), "to": args.to,
              "out": os.path.abspath(args.output) if args.output else None, "overwrite": args.overwrite,
              "options": opts}
    result, job = run_job("convert", params, on_event=on_event, timeout=args.timeout)
    if tty:
        print(file=sys.stderr)
    job.cleanup()
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for h in result["hops"]:
            print(f"{h['name']:<24} {h['seconds']:7.2f} s", file=sys.stderr)
        for w in result.get("warnings") or []:
            print(f"warning: {w}", file=sys.stderr)
        print(result["output"])
    return 0


COMMANDS["convert"] = ("convert a model between PyTorch, ONNX, TensorFlow/Keras and TFLite", _args, _run)
