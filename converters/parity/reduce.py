"""A minimal repro of a parity failure: the smallest ONNX subgraph that still fails the same way.

>>> from converters.parity.reduce import ReduceOptions, reduce_failure
>>> r = reduce_failure("model.pt2", "model.onnx", ReduceOptions(out="repro"))
>>> r.nodes_before, r.nodes_after, r.out_dir

Two cases, told apart by which side is ONNX:

*B is ONNX* (the ONNX is the one that is wrong: torch -> ONNX mistranslated, or two ONNX files). A
per-layer comparison (``compare`` task) names the first divergence: the first layer of B that is wrong
itself. Its tensor in B is the repro's one output, and the repro's inputs are paired tensors upstream fed
with A's own values, so no error from upstream reaches it. The search (:func:`search_cut`, run in one
``reduce_cut`` worker with B loaded once) tries first the cut that starts at the nearest paired tensors;
if that one passes (the failure needs error accumulated further up), it bisects over how far up the cut
starts, then drops the paired tensors nearest the inputs one at a time while the cut still fails.

*A is ONNX and B is its conversion* (the ONNX hop of a route: ONNX -> TFLite, -> PyTorch, -> TF). The
failing layer is in the converter, so the cut is of A: A's subgraph up to the first divergence, fed with
A's values, is converted again by the same route and compared with its conversion; the same search
shrinks it, each step a real conversion (at most ``max_steps`` of them).

Which pair: the first divergence by default; ``ReduceOptions.layer`` names another failing pair (A's
tensor name or the engine's layer index), for instance one that only inherits error (its cut then reaches
up to where the error is made) or a second layer that is wrong itself. ``ReduceOptions.result_dir``
reuses a kept per-layer result folder (``result.json``, ``inputs.npz``; what the window's comparison
keeps) instead of running the comparison again: its tolerance and inputs are the repro's.

"Fails the same way" (:func:`same_way`): the cut's output fails the comparison's own tolerance (with the
same rounding allowance the full comparison gave that tensor), and its max abs error is at least
``SAME_ORDER`` (a tenth) of that layer's error in the full comparison: a cut that fails only by rounding
while the model fails by a wrong weight does not count.

Every read or run of a user's file happens in workers (the ``compare``, ``run_model``, ``reduce_cut``,
``reduce_slice`` and ``convert`` tasks); this module only plans them. The pure search and the "same
way" rule live in :mod:`converters.parity.reduce_search`, the repro folder's files in
:mod:`converters.parity.reduce_repro`; their public names are importable from here too.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..errors import TensorbridgeError
from ..jobs.protocol import ConvertParams, ReduceCutParams, ReduceSliceParams
from .reduce_repro import _g, _size, _tol, fresh_folder, publish
from .reduce_search import SAME_ORDER, same_way, search_cut

__all__ = ["ReduceOptions", "ReduceResult", "reduce_failure", "read_result_dir", "search_cut", "same_way", "fresh_folder",
           "SAME_ORDER"]

# converted model's file name -> the ``convert --to`` target that makes it
_TARGET_BY_EXT = {".tflite": "tflite", ".pt2": "torch", ".keras": "keras", ".h5": "keras", ".onnx": "onnx"}


class ReduceError(TensorbridgeError):
    """A repro could not be made (a side failed, the failure does not reproduce on any cut)."""


@dataclass
class ReduceOptions:
    """How to reduce. Tolerance as ``compare`` has it (``preset``, ``atol``, ``rtol``, ``noise_factor``);
    inputs: ``inputs`` (.npz/.npy files) or seeded random (``seed``); ``out``: the repro folder (default
    ``<B>.repro`` beside B; an existing folder is never replaced, a fresh name is picked); ``max_checks``:
    cuts tried in case 1; ``max_steps``: conversions tried in case 2; ``timeout`` seconds per job;
    ``convert_options``: the options B was converted with (case 2; default: read from B's converter map,
    else the defaults). ``layer``: the pair to reduce, A's tensor name or the layer index of the per-layer
    result (default: the first divergence, else the first failing output); it must not be within
    tolerance. ``result_dir``: a kept per-layer result folder of the same A and B to reuse (its
    ``result.json`` and ``inputs.npz``) instead of comparing again; the tolerance and inputs are then the
    folder's, and the options' tolerance, ``seed`` and ``inputs`` are not used."""

    preset: str | None = None
    atol: float | None = None
    rtol: float | None = None
    noise_factor: float | None = None
    seed: int = 0
    inputs: list[str] = field(default_factory=list)
    trust: bool = False
    out: str | None = None
    max_checks: int = 200
    max_steps: int = 8
    timeout: float | None = None
    convert_options: dict[str, Any] | None = None
    layer: str | int | None = None
    result_dir: str | None = None


@dataclass
class ReduceResult:
    """What the reduction found. ``differ`` False: A and B agree (``message`` says so), nothing written.
    Otherwise ``out_dir`` holds repro.onnx, inputs.npz, expected.npz, actual.npz, README.md and check.py."""

    differ: bool
    message: str = ""
    case: str = ""  # "onnx" (B's ONNX is wrong) or "conversion" (A's ONNX converts wrongly)
    out_dir: str = ""
    files: dict[str, str] = field(default_factory=dict)
    target: str = ""  # the repro's output: the first divergence's tensor in the ONNX that was cut
    target_a: str = ""
    op: str = ""
    nodes_before: int = 0
    nodes_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    ratio: float = 0.0
    max_abs: float | None = None
    layer_max_abs: float | None = None
    tolerance: dict = field(default_factory=dict)
    allowance: float = 0.0
    inputs: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    how: str = ""
    checks: int = 0
    seconds: float = 0.0
    route: str = ""
    convert_options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    layer: int | None = None  # the reduced pair's layer index in the per-layer result (None: a model output)
    reused: str = ""  # the per-layer result folder reused instead of a comparison of its own
    jobs: dict[str, int] = field(default_factory=dict)  # worker jobs run, per task
    first: bool = True  # the pair reduced is the comparison's first divergence (else one chosen with ``layer``)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("max_abs", "layer_max_abs"):
            if isinstance(d[k], float) and not math.isfinite(d[k]):
                d[k] = str(d[k])
        return d

    def summary_lines(self) -> list[str]:
        if not self.differ:
            return [self.message]
        what = "B's ONNX" if self.case == "onnx" else f"A's ONNX, converted again ({self.route})"
        what_pair = "first divergence" if self.first else f"layer {self.layer}" if self.layer is not None else "pair"
        return [f"{what_pair}: {self.target} ({self.op}), max abs {_g(self.layer_max_abs)} in the full comparison",
                f"repro: {self.nodes_after} of {self.nodes_before} nodes of {what} ({self.ratio:.0f}x fewer), "
                f"{_size(self.bytes_after)} of {_size(self.bytes_before)}",
                f"still fails: max abs {_g(self.max_abs)} (tolerance {_tol(self.tolerance)})",
                f"written: {self.out_dir}"]


def _default_out(path_b: str) -> str:
    base = os.path.abspath(os.path.normpath(path_b))
    stem = os.path.splitext(base)[0] if os.path.isfile(base) else base
    return stem + ".repro"



# ---- the jobs ------------------------------------------------------------------------------------------

class _Runner:
    """Runs the tasks of one reduction in workers, in a work folder that goes at the end."""

    def __init__(self, options: ReduceOptions, progress: Callable[[float | None, str], None]):
        from ..jobs import jobs_root, own_folder

        self.o = options
        self.progress = progress
        self.work = tempfile.mkdtemp(prefix="reduce-", dir=jobs_root())
        own_folder(self.work)  # a CLI run removes it at its end, even when stopped by a signal
        self.jobs = 0
        self.tasks: dict[str, int] = {}

    def job(self, task: str, params: dict, what: str) -> dict:
        from ..jobs import run_job

        def on_event(ev) -> None:
            if ev.kind == "progress" and ev.data.get("message"):
                self.progress(None, f"{what}: {ev.data['message']}")

        self.jobs += 1
        self.tasks[task] = self.tasks.get(task, 0) + 1
        res, job = run_job(task, params, on_event=on_event, timeout=self.o.timeout,
                           job_dir=os.path.join(self.work, "jobs", f"{self.jobs}-{task}"))
        return res

    def tolerance_params(self) -> dict:
        return {"preset": self.o.preset, "atol": self.o.atol, "rtol": self.o.rtol, "noise_factor": self.o.noise_factor}

    def compare(self, a: str, b: str, save_dir: str, *, per_layer: bool, inputs: list[str] | None = None) -> dict:
        params = {"a": a, "b": b, "per_layer": per_layer, "save_dir": save_dir, "seed": self.o.seed,
                  "inputs": inputs if inputs is not None else [os.path.abspath(f) for f in self.o.inputs],
                  "trust": self.o.trust, "warmup": 0, "repeats": 1, "timeout": self.o.timeout,
                  **self.tolerance_params()}
        return self.job("compare", params, "comparing")

    def capture(self, path: str, names: list[str], inputs_npz: str, folder: str) -> dict[str, str]:
        """A's values of ``names`` on the comparison's inputs: {name: .npy}."""
        if not names:
            return {}
        res = self.job("run_model", {"path": path, "device": "cpu", "trust": self.o.trust, "inputs_npz": inputs_npz,
                                     "capture": names, "capture_dir": folder, "warmup": 0, "repeats": 1,
                                     "outputs_out": os.path.join(folder, "outputs.npz")}, "capturing A's tensors")
        return dict(res.get("captured") or {})

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _target_of(cmp: dict, layer: str | int | None = None) -> dict | None:
    """The pair to reduce to: layer ``layer`` (A's tensor name or layer index) when given, else the first
    divergence, else the first failing model output."""
    def allowance(a: str, b: str) -> float:
        return next((o.get("noise_allowance") or 0.0 for o in cmp.get("outputs") or []
                     if o.get("intermediate") and o.get("name") == a and o.get("name_b") == b), 0.0)

    def of_layer(r: dict) -> dict:
        return {"a": r["a"], "b": r["b"], "perm": r.get("perm"), "op": r.get("op_b") or r.get("op"),
                "max_abs": r.get("max_abs"), "allowance": allowance(r["a"], r["b"]), "index": r.get("index"),
                "layer": True}

    if layer is not None and str(layer) != "":
        layers = cmp.get("layers") or []
        r = _find_layer(layers, layer)
        if r is None:
            raise ReduceError(f"no layer '{layer}' in the per-layer result ({len(layers)} layers: give A's tensor "
                              f"name or the layer index)")
        if r.get("status") in ("ok", "missing"):
            what = "matches within tolerance" if r.get("status") == "ok" else "was not compared"
            raise ReduceError(f"layer '{r['a']}' {what}: nothing to reduce there; pick a failing layer")
        return {**of_layer(r), "chosen": True}
    first = cmp.get("layer_first")
    if first:
        return of_layer(first)
    bad = [o for o in cmp.get("outputs") or [] if not o.get("intermediate") and not o.get("passed")]
    if not bad:
        return None
    o = bad[0]
    return {"a": o["name"], "b": o["name_b"], "perm": o.get("perm_b"), "op": "output", "max_abs": o.get("max_abs"),
            "allowance": o.get("noise_allowance") or 0.0, "index": None, "layer": False}


def _find_layer(layers: list[dict], layer: str | int) -> dict | None:
    """The per-layer row of ``layer``: an int (or digits) is a layer index, else A's tensor name."""
    if isinstance(layer, int) or (isinstance(layer, str) and layer.isdigit()
                                  and not any(r.get("a") == layer for r in layers)):
        return next((r for r in layers if int(r.get("index", -1)) == int(layer)), None)
    return next((r for r in layers if r.get("a") == layer), None)


_SPECIAL = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _restore(x: Any) -> Any:
    # result.json writes NaN and the infinities as strings (JSON has none)
    if isinstance(x, str) and x in _SPECIAL:
        return _SPECIAL[x]
    if isinstance(x, dict):
        return {k: _restore(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_restore(v) for v in x]
    return x


def read_result_dir(folder: str, path_a: str, path_b: str) -> dict:
    """The per-layer comparison kept in ``folder`` (its result.json as a dict), checked to be of A and B
    and to have what a reduction reads (the layers, A's inputs)."""
    folder = os.path.abspath(folder)
    rj = os.path.join(folder, "result.json")
    if not os.path.isfile(rj):
        raise ReduceError(f"{folder}: no result.json (give the folder a per-layer comparison kept)")
    try:
        with open(rj) as f:
            cmp = _restore(json.load(f))
    except (OSError, ValueError) as exc:
        raise ReduceError(f"{rj}: unreadable ({exc})") from None
    for side, want in (("a", path_a), ("b", path_b)):
        got = str((cmp.get(side) or {}).get("path") or "")
        if not got or os.path.abspath(got) != want:
            raise ReduceError(f"{folder} is a comparison of {os.path.basename(got) or '?'} as {side.upper()}, "
                              f"not {os.path.basename(want)}; compare again or leave the folder out")
    if not cmp.get("layers"):
        raise ReduceError(f"{folder} holds a comparison of the outputs only; reduce needs a per-layer one")
    if not os.path.isfile(os.path.join(folder, "inputs.npz")):
        raise ReduceError(f"{folder}: inputs.npz is missing (the inputs the comparison ran on)")
    return cmp


def _num(x) -> float | None:
    if x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def reduce_failure(path_a: str, path_b: str, options: ReduceOptions | None = None, *,
                   progress: Callable[[float | None, str], None] | None = None) -> ReduceResult:
    """Compare B with reference A layer by layer and cut the smallest ONNX subgraph that still fails the
    same way (see the module docs). Returns a :class:`ReduceResult` (``differ`` False when A and B agree);
    raises :class:`TensorbridgeError` (one line) when either side cannot run or no cut reproduces."""
    o = options or ReduceOptions()
    prog = progress or (lambda f=None, m="": None)
    t0 = time.perf_counter()
    path_a, path_b = os.path.abspath(os.fspath(path_a)), os.path.abspath(os.fspath(path_b))
    for p in (path_a, path_b):
        if not os.path.exists(p):
            raise ReduceError(f"{p}: no such file")
    for f in o.inputs:
        if not os.path.exists(f):
            raise ReduceError(f"{f}: no such input file")
    out_wanted = os.path.abspath(o.out) if o.out else _default_out(path_b)
    reuse = read_result_dir(o.result_dir, path_a, path_b) if o.result_dir else None
    run = _Runner(o, prog)
    try:
        if reuse is not None:
            prog(0.0, "reading the per-layer comparison kept")
            cmp_dir, cmp = os.path.abspath(str(o.result_dir)), reuse
        else:
            prog(0.0, "comparing A and B layer by layer")
            cmp_dir = os.path.join(run.work, "compare")
            cmp = run.compare(path_a, path_b, cmp_dir, per_layer=True)
        if cmp.get("error"):
            raise ReduceError(cmp["error"])
        target = _target_of(cmp, o.layer)
        tol = dict(cmp.get("tolerance") or {})
        if target is None:
            return ReduceResult(differ=False, tolerance=tol, seconds=time.perf_counter() - t0,
                                message=f"A and B agree within tolerance ({_tol(tol)}): nothing to reduce")
        rt_a, rt_b = (cmp.get("a") or {}).get("runtime"), (cmp.get("b") or {}).get("runtime")
        if rt_b == "onnxruntime":
            res = _reduce_onnx(run, path_a, path_b, cmp, cmp_dir, target, tol)
        elif rt_a == "onnxruntime":
            res = _reduce_conversion(run, path_a, path_b, cmp, cmp_dir, target, tol)
        else:
            raise ReduceError(f"reduce cuts an ONNX model, and neither {os.path.basename(path_a)} nor "
                              f"{os.path.basename(path_b)} is ONNX; convert the wrong one to ONNX first "
                              f"(tensorbridge convert … --to onnx)")
        res.warnings = [w for w in cmp.get("warnings") or [] if "transposed" not in w][:5] + res.warnings
        res.tolerance = tol
        res.layer_max_abs = _num(target.get("max_abs"))
        res.allowance = float(target.get("allowance") or 0.0)
        res.target_a = target["a"]
        res.op = res.op or str(target.get("op") or "")
        res.layer = int(target["index"]) if target.get("index") is not None else None
        first = cmp.get("layer_first") or {}
        res.first = res.layer is None or (first.get("index") is not None and int(first["index"]) == res.layer)
        res.reused = cmp_dir if reuse is not None else ""
        res.jobs = dict(run.tasks)
        out = fresh_folder(out_wanted)
        publish(res, out, path_a, path_b)
        res.seconds = time.perf_counter() - t0
        with open(os.path.join(out, "reduce.json"), "w") as f:
            json.dump(res.to_dict(), f, indent=1)
        res.files["json"] = os.path.join(out, "reduce.json")
        return res
    finally:
        run.close()


def _feedable(target: dict) -> tuple[str, ...]:
    """Statuses of the paired tensors upstream that a cut may be fed with (A's values). At the first
    divergence every pair above is within tolerance. A chosen pair may sit below others that fail: they are
    fed with A's values too, so the nearest cut shows whether the pair is wrong itself (a second layer wrong
    itself shows as inherited when its inputs already differ); when it only inherits error, the search grows
    the cut upstream to where the error is made."""
    return ("ok", "source", "inherited", "layout") if target.get("chosen") else ("ok",)


# ---- case 1: B is the ONNX that is wrong ----------------------------------------------------------------

def _reduce_onnx(run: _Runner, path_a: str, path_b: str, cmp: dict, cmp_dir: str, target: dict, tol: dict) -> ReduceResult:
    layers = cmp.get("layers") or []
    below = target["index"] if target["index"] is not None else len(layers)
    feedable = [r for r in layers if r.get("status") in _feedable(target) and r.get("index", 0) < below
                and r.get("depth", -1) >= 0 and r["b"] != target["b"]]
    names_a = list(dict.fromkeys([target["a"]] + [r["a"] for r in feedable]))
    run.progress(0.5, f"capturing {len(names_a)} tensors of A")
    inputs_a = os.path.join(cmp_dir, "inputs.npz")
    inputs_b = os.path.join(cmp_dir, "inputs_b.npz")
    captured = run.capture(path_a, names_a, inputs_a, os.path.join(run.work, "a_values"))
    if target["a"] not in captured:
        raise ReduceError(f"A's tensor '{target['a']}' of the pair to reduce could not be captured again")
    feeds = {r["b"]: captured[r["a"]] for r in feedable if r["a"] in captured}
    perms = {r["b"]: r["perm"] for r in feedable if r.get("perm")}
    run.progress(0.6, "cutting B")
    params = ReduceCutParams(path=path_b, target=target["b"], expected=captured[target["a"]],
                             graph_inputs=inputs_b if os.path.exists(inputs_b) else inputs_a,
                             out=os.path.join(run.work, "cut"), feeds=feeds, perm=target.get("perm"), feed_perms=perms,
                             tolerance=tol, allowance=float(target["allowance"] or 0.0),
                             layer_max_abs=_num(target.get("max_abs")), same_order=SAME_ORDER,
                             max_checks=run.o.max_checks)
    cut = run.job(params.TASK, params.to_dict(), "cutting B")
    checks = sum(1 for s in cut.get("steps") or [] if s.get("what") == "check")
    if not cut.get("found"):
        raise ReduceError(f"no cut of {os.path.basename(path_b)} reproduces the failure: {cut.get('why')}")
    v = cut["verdict"]
    return ReduceResult(differ=True, case="onnx", target=target["b"], files=dict(cut["files"]),
                        nodes_before=int(cut["nodes_before"]), nodes_after=len(cut["nodes"]),
                        nodes=list(cut["nodes"]), ops=list(cut["ops"]), inputs=list(cut["inputs"]),
                        max_abs=_num(v.get("max_abs")), how=cut.get("how", ""), checks=checks,
                        op=cut["ops"][-1] if cut.get("ops") else "")


# ---- case 2: A is the ONNX a converter got wrong --------------------------------------------------------

def _convert_target(path_b: str) -> str:
    if os.path.isdir(path_b):
        return "tf"
    ext = os.path.splitext(path_b)[1].lower()
    if ext not in _TARGET_BY_EXT:
        raise ReduceError(f"{os.path.basename(path_b)}: cannot tell which conversion made it; reduce handles "
                          f"B as .tflite, .pt2, .keras/.h5 or a SavedModel folder")
    return _TARGET_BY_EXT[ext]


def _convert_options(path_b: str, o: ReduceOptions) -> dict[str, Any]:
    """The options to convert each cut with: the caller's, else what B's converter map says B was made
    with (a float16 TFLite), else the defaults."""
    if o.convert_options is not None:
        return dict(o.convert_options)
    from ..tbmap import read_map

    m = read_map(path_b, [])
    product = str(m.extra.get("product") or "") if m else ""
    return {"fp16": True} if product.endswith("fp16") else {}


def _cut_options(options: dict[str, Any], to: str, cut: dict) -> dict[str, Any]:
    """B's conversion options for one cut. A cut's inputs are inner tensors, and one whose sizes after the
    batch repeat (1x8x8x8) gives no sign of its layout: onnx2tf would make it channels-last while the
    comparison cannot tell, and feed it as it is. Such inputs stay channels-first (``keep_nchw``), unless
    the options already say how to lay out the inputs."""
    opts = dict(options)
    if to not in ("tflite", "tf", "keras") or "keep_nchw" in opts:
        return opts
    shapes = cut.get("shapes") or {}
    amb = [x for x in cut.get("inputs") or [] if len(shapes.get(x) or []) >= 3
           and len(set(shapes[x][1:])) < len(shapes[x][1:])]
    if amb:
        opts["keep_nchw"] = amb
    return opts


def _reduce_conversion(run: _Runner, path_a: str, path_b: str, cmp: dict, cmp_dir: str, target: dict,
                       tol: dict) -> ReduceResult:
    to = _convert_target(path_b)
    conv_opts = _convert_options(path_b, run.o)
    layers = cmp.get("layers") or []
    below = target["index"] if target["index"] is not None else len(layers)
    feedable = [r for r in layers if r.get("status") in _feedable(target) and r.get("index", 0) < below
                and r.get("depth", -1) >= 0 and r["a"] != target["a"]]
    names = list(dict.fromkeys([target["a"]] + [r["a"] for r in feedable]))
    run.progress(0.4, f"capturing {len(names)} tensors of A")
    inputs_a = os.path.join(cmp_dir, "inputs.npz")
    values = run.capture(path_a, names, inputs_a, os.path.join(run.work, "a_values"))
    if target["a"] not in values:
        raise ReduceError(f"A's tensor '{target['a']}' of the pair to reduce could not be captured again")
    def sliced(fed: list[str] | None, out: str, what: str) -> dict:
        p = ReduceSliceParams(path=path_a, target=target["a"], graph_inputs=inputs_a, out=out, values=values, fed=fed)
        return run.job(p.TASK, p.to_dict(), what)

    listed = sliced(None, os.path.join(run.work, "list"), "reading A")
    cands, nodes_before = list(listed["candidates"]), int(listed["nodes_before"])
    layer_err = _num(target.get("max_abs"))
    tried: dict[tuple[str, ...], dict] = {}
    steps = 0

    def step(fed: list[str]) -> bool:
        nonlocal steps
        key = tuple(sorted(fed))
        if key in tried:
            return bool(tried[key]["fails"])
        if steps >= run.o.max_steps:
            return False
        steps += 1
        d = os.path.join(run.work, f"step{steps}")
        cut = sliced(list(fed), d, f"step {steps}: cutting A")
        run.progress(None, f"step {steps} of at most {run.o.max_steps}: converting a cut of {len(cut['nodes'])} "
                           f"node(s) to {to}")
        converted = os.path.join(d, "converted" + _suffix(to))
        opts = _cut_options(conv_opts, to, cut)
        rec: dict[str, Any] = {"cut": cut, "converted": converted, "fails": False, "options": opts}
        tried[key] = rec
        try:
            conv = ConvertParams(src=cut["files"]["model"], to=to, out=converted, options=opts)
            run.job(conv.TASK, conv.to_dict(), f"step {steps}: converting")
        except TensorbridgeError as exc:
            rec["why"] = exc.message  # a cut the converter does not take is not a repro
            return False
        c = run.compare(cut["files"]["model"], converted, os.path.join(d, "compare"), per_layer=False,
                        inputs=[cut["files"]["inputs"]])
        outs = [x for x in c.get("outputs") or [] if not x.get("intermediate")]
        if c.get("error") or not outs:
            rec["why"] = c.get("error") or "no output compared"
            return False
        o = outs[0]
        rec["verdict"] = {"passed": bool(o.get("passed")), "max_abs": _num(o.get("max_abs")), "name_b": o.get("name_b")}
        rec["npz"] = (c.get("files") or {}).get("npz")
        rec["fails"] = same_way(rec["verdict"], layer_err)
        run.progress(None, f"step {steps}: {'fails' if rec['fails'] else 'passes'} "
                           f"(max abs {_g(rec['verdict']['max_abs'])})")
        return bool(rec["fails"])

    fed, how = search_cut(cands, step, max_checks=run.o.max_steps)
    if fed is None:
        why = next((r.get("why") for r in tried.values() if r.get("why")), None)
        if why:
            raise ReduceError(f"no cut of {os.path.basename(path_a)} converted to {to} fails the same way ({why})")
        raise ReduceError(f"converted again to {to}, {os.path.basename(path_a)} up to '{target['a']}' matches A "
                          f"({steps} conversion(s)): the difference is not made by this conversion; give the options "
                          f"B was converted with (--convert-option) or compare B with the ONNX it was made from")
    rec = tried[tuple(sorted(fed))]
    cut = rec["cut"]
    files = dict(cut["files"])
    files["converted"] = rec["converted"]
    if rec.get("npz") and os.path.exists(rec["npz"]):
        import numpy as np

        with np.load(rec["npz"]) as z:
            b_keys = [k for k in z.files if k.startswith("b/")]
            if b_keys:
                files["actual"] = os.path.join(os.path.dirname(files["model"]), "actual.npz")
                np.savez(files["actual"], **{target["a"]: z[b_keys[0]]})
    return ReduceResult(differ=True, case="conversion", target=target["a"], files=files, nodes_before=nodes_before,
                        nodes_after=len(cut["nodes"]), nodes=list(cut["nodes"]), ops=list(cut["ops"]),
                        inputs=list(cut["inputs"]), max_abs=rec["verdict"]["max_abs"], how=how, checks=steps,
                        route=f"onnx -> {to}", op=cut["ops"][-1] if cut.get("ops") else "",
                        convert_options=rec["options"])


def _suffix(to: str) -> str:
    return {"tflite": ".tflite", "torch": ".pt2", "keras": ".keras", "tf": ".tf", "onnx": ".onnx"}[to]
