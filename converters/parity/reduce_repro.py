"""The repro folder of a reduction: moving its files in whole, README.md and check.py.

:func:`publish` fills a fresh folder (see :func:`fresh_folder`) from a
:class:`converters.parity.reduce.ReduceResult`; the folder appears whole or not at all. The number
formats here (:func:`_g`, :func:`_size`, :func:`_tol`) are also the result's summary lines'.
"""
from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .reduce import ReduceResult

__all__ = ["fresh_folder", "publish"]


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _tol(t: dict) -> str:
    s = f"atol {t.get('atol', 0):g}, rtol {t.get('rtol', 0):g}"
    if t.get("max_mismatch_fraction"):
        s += f", up to {t['max_mismatch_fraction']:.2%} mismatching"
    if t.get("min_cosine") is not None:
        s += f", cosine >= {t['min_cosine']:g}"
    return s



def fresh_folder(path: str) -> str:
    """``path`` if nothing is there yet, else ``path_1``, ``path_2``, … (an existing folder is never touched)."""
    path = os.path.abspath(path.rstrip(os.sep) or path)
    if not os.path.lexists(path):
        return path
    k = 1
    while os.path.lexists(f"{path}_{k}"):
        k += 1
    return f"{path}_{k}"



def _bytes(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
    return os.path.getsize(path) if os.path.exists(path) else 0


def publish(res: ReduceResult, out: str, path_a: str, path_b: str) -> None:
    """Move the repro files into ``out`` (a fresh folder) and write README.md and check.py."""
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    stage = out + ".part"
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    try:
        names = {"model": "repro.onnx", "inputs": "inputs.npz", "expected": "expected.npz", "actual": "actual.npz"}
        if res.files.get("converted"):
            names["converted"] = "converted" + os.path.splitext(res.files["converted"])[1]
        moved = {}
        for key, name in names.items():
            src = res.files.get(key)
            if src and os.path.exists(src):
                shutil.move(src, os.path.join(stage, name))
                moved[key] = os.path.join(out, name)
                data = os.path.join(os.path.dirname(src), "repro.onnx.data")  # initializers past 2 GB
                if key == "model" and os.path.exists(data):
                    shutil.move(data, os.path.join(stage, "repro.onnx.data"))
        res.bytes_before = _bytes(path_b if res.case == "onnx" else path_a)
        res.bytes_after = _bytes(os.path.join(stage, "repro.onnx")) + _bytes(os.path.join(stage, "repro.onnx.data"))
        res.ratio = res.nodes_before / max(res.nodes_after, 1)
        if res.case == "onnx":  # the repro runs in onnxruntime alone; a conversion's needs the converter
            with open(os.path.join(stage, "check.py"), "w") as f:
                f.write(_check_py(res))
        with open(os.path.join(stage, "README.md"), "w") as f:
            f.write(_readme(res, path_a, path_b))
        os.rename(stage, out)  # the folder appears whole, or not at all
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    res.out_dir = out
    res.files = {**moved, "readme": os.path.join(out, "README.md")}
    if res.case == "onnx":
        res.files["check"] = os.path.join(out, "check.py")


def _check_py(res: ReduceResult) -> str:
    t = res.tolerance
    return f'''"""Re-run the repro: exit 1 while repro.onnx still differs from expected.npz, 0 once it matches."""
import sys

import numpy as np
import onnxruntime as ort

ATOL, RTOL, ALLOWANCE = {float(t.get("atol", 1e-5))!r}, {float(t.get("rtol", 1e-4))!r}, {float(res.allowance)!r}
feeds = dict(np.load("inputs.npz"))
expected = np.load("expected.npz")[{res.target!r}]
got = ort.InferenceSession("repro.onnx", providers=["CPUExecutionProvider"]).run(None, feeds)[0]
bad = ~np.isclose(got.reshape(expected.shape), expected, atol=ATOL + ALLOWANCE, rtol=RTOL, equal_nan=True)
err = float(np.nanmax(np.abs(got.astype(np.float64).reshape(expected.shape) - expected)))
print(f"max abs {{err:.3g}}, {{int(bad.sum())}} of {{bad.size}} elements outside atol {{ATOL:g}}, rtol {{RTOL:g}}")
sys.exit(1 if bad.mean() > {float(t.get("max_mismatch_fraction") or 0.0)!r} else 0)
'''


def _readme(res: ReduceResult, path_a: str, path_b: str) -> str:
    t = res.tolerance
    conv = os.path.basename(res.files.get("converted", "converted"))
    ext = os.path.splitext(conv)[1]
    if res.case == "onnx":
        pair = (f"The first layer of B that is wrong by itself makes tensor `{res.target}` ({res.op})" if res.first
                else f"The layer pair chosen (layer {res.layer}) is B's tensor `{res.target}` ({res.op})")
        how = (f"B ({os.path.basename(path_b)}) was compared with A ({os.path.basename(path_a)}) layer by layer. "
               f"{pair}; this repro is B's subgraph that ends there. Its inputs are tensors B shares with A, fed "
               f"with **A's** values (`inputs.npz`), so no error made outside it reaches it; `expected.npz` is A's "
               f"value of `{res.target}`, `actual.npz` what the repro gives in onnxruntime.")
        fix = "The wrong numbers are made inside these nodes of B."
        cmd = "python check.py"
    else:
        pair = "first layer that differs" if res.first else "layer pair chosen"
        how = (f"B ({os.path.basename(path_b)}) is a conversion of A ({os.path.basename(path_a)}, ONNX), and the "
               f"{pair} is `{res.target}` ({res.op}). This repro is A's subgraph that ends there, fed with A's "
               f"own values (`inputs.npz`); converted again ({res.route}) it still differs from A: `expected.npz` "
               f"is A's value, `actual.npz` what the conversion (`{conv}`) gives. The converter gets these nodes "
               f"wrong.")
        fix = ""
        flags = "".join(f" --{k.replace('_', '-')}" for k in ("fp16", "keep_nchw", "simplify")
                        if res.convert_options.get(k) is True)
        if isinstance(res.convert_options.get("keep_nchw"), list):
            flags += " --keep-nchw-inputs " + ",".join(res.convert_options["keep_nchw"])
        tol = "" if t.get("name") == "fp32" else f" --atol {t.get('atol', 1e-5):g} --rtol {t.get('rtol', 1e-4):g}"
        cmd = (f"tensorbridge convert repro.onnx --to {res.route.split()[-1]}{flags} -o again{ext} && "
               f"tensorbridge compare repro.onnx again{ext} --inputs inputs.npz{tol}")
    lines = [
        "# Parity failure repro", "",
        how, "",
        f"Cut by `tensorbridge reduce` ({res.how}; {res.checks} check(s)).", "",
        "| | original | repro |", "|---|---|---|",
        f"| nodes | {res.nodes_before} | {res.nodes_after} ({res.ratio:.0f}x fewer) |",
        f"| bytes | {res.bytes_before:,} | {res.bytes_after:,} |",
        f"| max abs error at `{res.target}` | {_g(res.layer_max_abs)} | {_g(res.max_abs)} |", "",
        f"Tolerance: {_tol(t)}" + (f", plus {res.allowance:.3g} (A's own rounding allowance for this tensor)"
                                   if res.allowance else "") + ".", "",
        f"Repro inputs: {', '.join(f'`{x}`' for x in res.inputs) or '-'}.  ",
        f"Repro nodes: {', '.join(f'{n} ({op})' for n, op in zip(res.nodes[:20], res.ops[:20]))}"
        + (" …" if len(res.nodes) > 20 else "") + ".", "",
        "## Reproduce", "", "```", cmd, "```", "",
    ]
    if res.case == "onnx":
        lines += ["exits 1 while the repro still fails. The same in five lines:", "", "```python",
                  "import numpy as np, onnxruntime as ort",
                  "feeds = dict(np.load('inputs.npz'))",
                  "got = ort.InferenceSession('repro.onnx').run(None, feeds)[0]",
                  f"exp = np.load('expected.npz')['{res.target}']",
                  f"print(np.abs(got - exp).max(), np.allclose(got, exp, atol={float(t.get('atol', 1e-5)) + res.allowance:g}, "
                  f"rtol={float(t.get('rtol', 1e-4)):g}))",
                  "```", ""]
        if fix:
            lines += [fix, ""]
    return "\n".join(lines)
