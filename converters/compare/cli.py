"""``tensorbridge compare A B`` and ``tensorbridge devices`` (registered into converters.cli.COMMANDS).

compare exit codes: 0 parity holds, 1 it does not, 2 an error (one line on stderr), including one side
failing to load or run.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..cli import COMMANDS
from ..errors import TensorbridgeError


class CompareError(TensorbridgeError):
    """A comparison could not be carried out (a side failed, bad options)."""


def _kv_int(text: str) -> tuple[str, int]:
    k, _, v = text.partition("=")
    if not k or not v:
        raise argparse.ArgumentTypeError(f"expected NAME=N, got '{text}'")
    return k, int(v)


def _shape(text: str) -> tuple[str, list[int]]:
    k, _, v = text.rpartition("=")
    if not k or not v:
        raise argparse.ArgumentTypeError(f"expected NAME=1x3x224x224, got '{text}'")
    try:
        return k, [int(x) for x in v.replace(",", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=1x3x224x224, got '{text}'") from None


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


def _out_tol(text: str) -> tuple[str, dict]:
    name, _, v = text.rpartition("=")
    if not name:
        raise argparse.ArgumentTypeError(f"expected OUTPUT=PRESET or OUTPUT=ATOL,RTOL, got '{text}'")
    parts = v.split(",")
    try:
        if len(parts) == 2:
            return name, {"atol": float(parts[0]), "rtol": float(parts[1])}
        return name, {"atol": float(parts[0])}
    except ValueError:
        return name, {"preset": v}


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", help="reference model (file or SavedModel folder)")
    p.add_argument("b", help="model to check against A")
    p.add_argument("--device-a", default="cpu", help="device for A: cpu, cuda:N (torch/onnxruntime), gpu:N (TF)")
    p.add_argument("--device-b", default="cpu", help="device for B")
    p.add_argument("--inputs", action="append", default=[], metavar="FILE",
                   help=".npz/.npy (matched by name, then position) or image files; repeat for several")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--batch", type=int, default=None, help="batch size for a dynamic first dim (default 1)")
    p.add_argument("--dim", action="append", type=_kv_int, default=[], metavar="NAME=N",
                   help="size of a named dynamic dim, e.g. --dim seq=128")
    p.add_argument("--shape", action="append", type=_shape, default=[], metavar="INPUT=1x3x224x224",
                   help="full shape of one input")
    p.add_argument("--preset", choices=["fp32", "fp16", "bf16", "int8"], default=None,
                   help="tolerance preset (default fp32)")
    p.add_argument("--atol", type=float, default=None, help="absolute tolerance (overrides the preset's)")
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (overrides the preset's)")
    p.add_argument("--noise-factor", type=float, default=None, metavar="K",
                   help="also allow K times A's own change when its inputs move by one rounding step (the "
                        "error any correct re-implementation of a deep network shows; default 2, 0: off)")
    p.add_argument("--output-tol", action="append", type=_out_tol, default=[], metavar="OUTPUT=ATOL,RTOL",
                   help="tolerance for one output (ATOL,RTOL or a preset name)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per side (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per side (default 5)")
    p.add_argument("--image-size", type=lambda s: [int(x) for x in s.split(",")], default=None, metavar="H,W",
                   help="resize images to H,W (default: the model input's size)")
    p.add_argument("--mean", type=_floats, default=None, help="per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406")
    p.add_argument("--std", type=_floats, default=None, help="per-channel std divided after scaling")
    p.add_argument("--no-scale", action="store_true", help="keep image values in 0..255 (default: scale to 0..1)")
    p.add_argument("--layout", choices=["auto", "NCHW", "NHWC"], default="auto", help="image layout (default auto)")
    p.add_argument("--signature-a", default=None, help="SavedModel signature of A (default serving_default)")
    p.add_argument("--signature-b", default=None, help="SavedModel signature of B")
    p.add_argument("--trust", action="store_true", help="allow running code stored in the files")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--report", default=None, metavar="OUT.html", help="write the HTML report here")
    p.add_argument("--save-dir", default=None, metavar="DIR",
                   help="keep result.json, arrays.npz (inputs and both outputs) and the job logs here")
    p.add_argument("--timeout", type=float, default=None, help="seconds allowed per side (default: no limit)")
    p.add_argument("--capture", action="append", default=[], metavar="A_TENSOR[=B_TENSOR]",
                   help="also compare an intermediate tensor (module path / node output / layer / tensor name "
                        "in A, and its name in B when it differs); repeatable")
    p.add_argument("--samples", type=int, default=1, metavar="N",
                   help="compare on N seeded random input sets (seed, seed+1, …) and keep each output's and each "
                        "layer's worst (default 1)")
    p.add_argument("--per-layer", action="store_true",
                   help="pair every layer of the two models (converter map, then the exporters' tensor names), "
                        "compare each, and name the first layer that is wrong itself rather than inheriting error")
    p.add_argument("--pairs", default=None, metavar="FILE.json",
                   help="layer pairs to add or correct (with --per-layer; also --capture A=B): a JSON list of "
                        "[A tensor, B tensor] or {\"a\": …, \"b\": …, \"perm\": [B's axes in A's order]}, "
                        "or {\"pairs\": that list}")
    p.add_argument("--capture-map", action="store_true",
                   help="also compare every inner tensor pair listed in the converter's map (<model>.tbmap.json) "
                        "and report the first that diverges")


def read_pairs(path: str) -> list[tuple]:
    """Layer pairs from a small JSON file (see ``--pairs``): [(A tensor, B tensor, perm or None)]."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise CompareError(f"{path}: cannot read the pairs file ({exc.strerror})") from None
    except ValueError as exc:
        raise CompareError(f"{path}: not JSON ({exc}); give a list of [A tensor, B tensor] pairs") from None
    items = doc.get("pairs") if isinstance(doc, dict) else doc
    out: list[tuple] = []
    for k, it in enumerate(items if isinstance(items, list) else [None]):
        if isinstance(it, dict) and it.get("a") and it.get("b"):
            perm = it.get("perm")
            out.append((str(it["a"]), str(it["b"]), tuple(int(x) for x in perm) if perm else None))
        elif isinstance(it, (list, tuple)) and len(it) in (2, 3) and all(isinstance(x, str) for x in it[:2]):
            out.append((it[0], it[1], tuple(int(x) for x in it[2]) if len(it) == 3 and it[2] else None))
        else:
            raise CompareError(f"{path}: entry {k} is not a pair; give [A tensor, B tensor] or "
                               f"{{\"a\": …, \"b\": …}}")
    return out


def params_from_args(args) -> dict:
    given = [tuple(c.split("=", 1)) if "=" in c else (c, c) for c in args.capture]
    if getattr(args, "pairs", None):
        given += read_pairs(args.pairs)
    return {"device_a": args.device_a, "device_b": args.device_b, "inputs": args.inputs, "seed": args.seed,
            "batch": args.batch, "dims": dict(args.dim), "shapes": dict(args.shape), "preset": args.preset,
            "atol": args.atol, "rtol": args.rtol, "noise_factor": args.noise_factor,
            "overrides": dict(args.output_tol), "warmup": args.warmup,
            "repeats": args.repeats, "trust": args.trust, "signature_a": args.signature_a,
            "signature_b": args.signature_b, "save_dir": args.save_dir, "report": args.report,
            "timeout": args.timeout,
            "capture": given,
            "capture_map": args.capture_map, "per_layer": args.per_layer,
            "image": {"size": args.image_size, "mean": args.mean, "std": args.std, "scale": not args.no_scale,
                      "layout": args.layout}}


def _compare_run(args) -> int:
    from .engine import compare_models, options_from_params
    from .results import _json_safe

    try:
        opts = options_from_params(params_from_args(args))
    except ValueError as exc:
        raise CompareError(str(exc)) from None

    def progress(fraction=None, message=""):
        if not args.json and message and sys.stderr.isatty():
            print(f"  {message}…", file=sys.stderr)

    if args.samples > 1:
        from .engine import compare_samples
        try:
            res = compare_samples(args.a, args.b, opts, args.samples, progress=progress)
        except TensorbridgeError as exc:
            raise CompareError(exc.message) from None
    else:
        res = compare_models(args.a, args.b, opts, progress=progress)
    if args.json:
        json.dump(_json_safe(res.to_dict()), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for line in res.summary_lines():
            if res.error and line == f"error: {res.error}":
                continue  # the error is the one line on stderr below
            print(line)
        for k in ("report", "json", "npz"):
            if res.files.get(k):
                print(f"{k}: {res.files[k]}")
    if res.error:
        err = CompareError(res.error)
        side = res.a if res.a.error else res.b
        err.log_path = side.log_path
        raise err
    return 0 if res.passed else 1


def _devices_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument("--runtime", action="append", choices=["torch", "tensorflow", "tflite", "onnxruntime"],
                   help="only these runtimes (repeatable)")


def _devices_run(args) -> int:
    from ..jobs import run_job

    result, job = run_job("devices", {"runtimes": args.runtime})
    job.cleanup()
    devs = result["devices"]
    if args.json:
        json.dump(devs, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    for d in devs:
        mark = "yes" if d["available"] else "no "
        extra = d["name"] if d["available"] else d["reason"]
        print(f"{d['runtime']:<12} {d['device']:<24} {mark}  {extra}")
    return 0


COMMANDS["compare"] = ("run two models on the same inputs and compare their outputs (exit 0 same, 1 differ, 2 error)",
                       _compare_args, _compare_run)
COMMANDS["devices"] = ("list the devices each runtime can use here, and why others are missing",
                       _devices_args, _devices_run)
