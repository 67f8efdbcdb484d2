"""Side-by-side comparison of two models: each side runs in its own worker process (``run_model`` task),
on the same inputs, and the outputs are compared here (numpy only: this module imports no framework).

Side A makes (or loads) the inputs; side B's worker opens its model at the same time and, once A has
saved the inputs, matches them to its own inputs by name, then by position, transposing layout changes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import ErrorKind
from ..errors import TensorbridgeError
from .diff import OutputDiff, compare_arrays
from ..tbmap import TensorMap, read_map
from ..runners.stream import make_pipe
from .layers import compare_spilled, local_errors, plan_layers_job, rounding_pass
from .matching import align, pair_outputs
from .results import CompareResult, SideInfo
from .tolerances import PRESETS, Tolerance

__all__ = ["CompareOptions", "compare_models", "compare_samples", "compare_outputs", "compare_task", "SideFailed"]


class SideFailed(TensorbridgeError):
    """One side of a comparison could not run (load error, bad inputs, crash)."""


@dataclass
class CompareOptions:
    """How to compare. Inputs: ``input_files`` (.npy/.npz/images) or seeded random (``seed``, ``batch``,
    ``dims`` {dim name: size}, ``shapes`` {input: shape}). ``tolerance`` (default fp32 preset) and
    ``overrides`` {output name of A: Tolerance}. Timing: ``warmup`` then ``repeats`` runs per side.
    ``save_dir``: keep result.json, arrays.npz and the inputs there (default: a temp folder, removed).
    ``report``: write the HTML report to this path. ``timeout`` seconds per side (None: no limit).
    ``capture``: intermediate tensors to compare as well, as (name in A, name in B) pairs — runtime
    names (module path or FX node for torch, node output for ONNX, layer for Keras, tensor for TFLite);
    a per-layer comparison feeds the pairs of a converter's map here. ``capture_map``: capture and compare
    every inner tensor pair the converter's map (.tbmap.json) lists, in its order. ``per_layer``: pair
    every layer the two models share (converter map, then the exporters' names; see
    :mod:`converters.parity`), compare each, and tell the layers that make an error from those that
    inherit it (``CompareResult.layers``, ``layer_first``)."""

    device_a: str = "cpu"
    device_b: str = "cpu"
    input_files: list[str] = field(default_factory=list)
    image: dict = field(default_factory=dict)
    seed: int = 0
    batch: int | None = None
    dims: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    tolerance: Tolerance = field(default_factory=lambda: PRESETS["fp32"])
    overrides: dict[str, Tolerance] = field(default_factory=dict)
    warmup: int = 1
    repeats: int = 5
    trust: bool = False
    signature_a: str | None = None
    signature_b: str | None = None
    save_dir: str | None = None
    report: str | None = None
    timeout: float | None = None
    parallel: bool = True
    capture: list[tuple] = field(default_factory=list)
    capture_map: bool = False
    per_layer: bool = False


SCORE_SAMPLE = 1 << 16  # elements a layout is judged on, for large arrays


def _score_fn(tol: Tolerance) -> Callable[[np.ndarray, np.ndarray], bool]:
    """Whether ``b`` (possibly a transposed view) matches ``a`` within ``tol``: what picks a layout. A large
    array is judged on an even sample of its elements; a wrong layout misses on nearly all of them, and a
    whole-array check would cost several array-sized temporaries per candidate layout."""
    def score(a, b):
        if a.size > SCORE_SAMPLE * 16:
            idx = np.linspace(0, a.size - 1, SCORE_SAMPLE).astype(np.int64)
            a, b = np.asarray(a).flat[idx], np.asarray(b).flat[idx]
        with np.errstate(invalid="ignore"):
            return bool(np.allclose(b, a, atol=tol.atol, rtol=tol.rtol, equal_nan=True))
    return score


def compare_outputs(outs_a: dict[str, np.ndarray], outs_b: dict[str, np.ndarray], *,
                    tolerance: Tolerance | None = None, overrides: dict[str, Tolerance] | None = None,
                    sidecar: TensorMap | None = None, warnings: list[str] | None = None,
                    names_a: list[str] | None = None, names_b: list[str] | None = None,
                    pairs: list[tuple] | None = None, only_given: bool = False,
                    noise: dict[str, float] | None = None, detail: bool = True) -> list[OutputDiff]:
    """Pair and compare two sets of outputs (A is the reference). Layout changes on B are undone first.
    ``noise`` {name in A: A's own change under a rounding step} widens each tolerance (see tolerances).
    ``pairs`` (A name, B name[, perm]) are paired before anything else (captured intermediates); with
    ``only_given`` nothing else is paired, and one B tensor may serve several given pairs."""
    tol = tolerance or PRESETS["fp32"]
    overrides = overrides or {}
    warnings = warnings if warnings is not None else []
    names_a = names_a or list(outs_a)
    names_b = names_b or list(outs_b)
    given = list(pairs or [])
    paired, left_a, left_b = pair_outputs(names_a, names_b, outs_a, outs_b, sidecar=sidecar, warnings=warnings,
                                          explicit=given, explicit_only=only_given)
    diffs = []
    for p in paired:
        t = overrides.get(p.a) or overrides.get(p.b) or tol
        a, b = outs_a[p.a], outs_b[p.b]
        if a.shape != b.shape and a.size == b.size and \
                tuple(d for d in a.shape if d != 1) == tuple(d for d in b.shape if d != 1):
            b = np.asarray(b).reshape(a.shape)  # the same values with kept or dropped unit axes (keepdims)
        b2, perm, note = align(a, b, p.perm, _score_fn(t))
        if perm is not None and p.by != "given":  # inner tensors: the perm is in their diff, not a warning each
            warnings.append(f"output '{p.b}' of B transposed by {list(perm)} to A's layout ({note})")
        d = compare_arrays(a, b2, t, name=p.a, name_b=p.b, matched_by=p.by, perm_b=list(perm) if perm else None,
                           noise=(noise or {}).get(p.a), detail=detail)
        d.shape_b = list(b.shape)  # B's own layout, before the transpose
        d.intermediate = p.by == "given"
        diffs.append(d)
    if not only_given:
        for n in left_a:
            warnings.append(f"output '{n}' of A has no counterpart in B; not compared")
        for n in left_b:
            warnings.append(f"output '{n}' of B has no counterpart in A; not compared")
    return diffs


def _no_progress(fraction: float | None = None, message: str = "") -> None:
    """The progress callback when the caller gives none."""


def _side(path: str, label: str, device: str) -> SideInfo:
    return SideInfo(path=str(path), label=label, device=device)


def _fill_side(side: SideInfo, res: dict, started: float, job) -> None:
    side.runtime = res.get("runtime")
    side.device = res.get("device", side.device)
    side.inputs = res.get("inputs", [])
    side.outputs = res.get("outputs", [])
    side.timing = res.get("timing", {})
    side.open_s = res.get("open_s")
    side.startup_s = res.get("boot_s")
    side.cpu_s = res.get("cpu_s")
    side.log_path = str(job.log_path)


def compare_models(path_a: str, path_b: str, options: CompareOptions | None = None, *,
                   progress: Callable[[float | None, str], None] | None = None, pool=None) -> CompareResult:
    """Run both models in their own workers on the same inputs and compare their outputs.

    ``pool`` (a :class:`converters.jobs.WorkerPool`) hands each side to a pre-started worker of its
    framework family, so neither side waits for its framework import.

    Never raises for a failure of one side: the result's ``error`` says which side failed and why
    (``SideInfo.crashed`` when its process died). Raises TensorbridgeError only for bad options.
    """
    from ..jobs import Job, JobFailed
    from ..runners import runtime_for

    o = options or CompareOptions()
    prog = progress or _no_progress
    # workers run in their job folders: relative paths must be made absolute here, in the caller
    path_a, path_b = os.path.abspath(os.fspath(path_a)), os.path.abspath(os.fspath(path_b))
    res = CompareResult(a=_side(path_a, "A", o.device_a), b=_side(path_b, "B", o.device_b),
                        tolerance=o.tolerance.to_dict(), seed=None if o.input_files else o.seed)
    for side in (res.a, res.b):
        try:
            side.runtime = runtime_for(side.path)[1]
        except TensorbridgeError as exc:
            side.error, side.error_kind = exc.message, type(exc).__name__
            res.error = f"side {side.label}: {exc.message}"
            return res

    keep = o.save_dir is not None
    if o.save_dir is not None:
        work = os.path.abspath(o.save_dir)
    else:
        from ..jobs import jobs_root, own_folder
        work = tempfile.mkdtemp(prefix="compare-", dir=jobs_root())
        own_folder(work)  # a CLI run removes it at its end, even when stopped by a signal
    os.makedirs(work, exist_ok=True)
    inputs_path = os.path.join(work, "inputs.npz")
    index_a = os.path.join(work, "layers_a.json")
    for stale in (inputs_path, index_a):
        if os.path.exists(stale):
            os.remove(stale)

    # a converter's map beside B (B converted from A) or beside A (A converted from B, inverted)
    sidecar = read_map(path_b, res.warnings)
    if sidecar and not _written_for(sidecar.source, path_a):
        res.warnings.append(f"the converter map beside B was written for "
                            f"'{os.path.basename(str(sidecar.source.get('path')))}', not A; not used")
        sidecar = TensorMap()
    if not sidecar:
        sa = read_map(path_a, res.warnings)
        if sa and not _written_for(sa.source, path_b):
            sa = TensorMap()
        sidecar = sa.inverted() if sa else sa

    params_a: dict[str, Any] = {"path": path_a, "device": o.device_a, "trust": o.trust, "warmup": o.warmup,
                                "repeats": o.repeats, "inputs_out": inputs_path,
                                "outputs_out": os.path.join(work, "outputs_a.npz")}
    if o.signature_a:
        params_a["signature"] = o.signature_a
    wants_noise = bool(o.tolerance.noise_factor or any(t.noise_factor for t in o.overrides.values()))
    if wants_noise and not o.per_layer:  # per layer: measured afterwards, for what fails strictly only
        params_a["noise_out"] = os.path.join(work, "outputs_a_noise.npz")
    capture = [tuple(c) for c in o.capture]
    plan = None
    if o.per_layer:
        prog(0.0, "pairing the layers of both models")
        os.makedirs(os.path.join(work, "jobs"), exist_ok=True)
        plan = plan_layers_job(path_a, path_b, o, sidecar, res, os.path.join(work, "jobs"))
        if plan is None:
            return _finish(res, work, keep, o, None, None)
        capture += [c for c in plan.captures() if c[0] not in {x[0] for x in capture}]
    elif o.capture_map:
        if not sidecar.tensors:
            res.warnings.append("no converter map with inner tensors beside either model; compared outputs only")
        capture += [c for c in sidecar.tensor_pairs() if c[0] not in {x[0] for x in capture}]
    if capture:
        params_a["capture"] = [c[0] for c in capture]
    if o.input_files:
        params_a["files"] = [os.path.abspath(f) for f in o.input_files]
        params_a["image"] = o.image
    else:
        params_a["generate"] = {"seed": o.seed, "batch": o.batch, "dims": o.dims, "shapes": o.shapes}
    params_b: dict[str, Any] = {"path": path_b, "device": o.device_b, "trust": o.trust, "warmup": o.warmup,
                                "repeats": o.repeats, "inputs_npz": inputs_path,
                                "inputs_out": os.path.join(work, "inputs_b.npz"),
                                "outputs_out": os.path.join(work, "outputs_b.npz"),
                                "wait_s": 24 * 3600, "perms": {k: list(v) for k, v in sidecar.target_perms().items()}}
    if o.signature_b:
        params_b["signature"] = o.signature_b
    task_b = "run_model"
    if capture:
        params_b["capture"] = [c[1] for c in capture]
        if o.per_layer:
            # Both sides run at once: A hands each captured tensor to B as it is made (a named pipe, or
            # files when there is none or every tensor is kept); B compares each of its own with A's as
            # it is made, and keeps only those that fail (see compare.side)
            layers_a = os.path.join(work, "layers_a")
            os.makedirs(layers_a, exist_ok=True)
            params_a["capture_dir"] = layers_a
            params_b["capture_dir"] = os.path.join(work, "layers_b")
            params_b.update(a_dir=layers_a, tolerance=o.tolerance.to_dict(),
                            overrides={k: t.to_dict() for k, t in o.overrides.items()},
                            pairs=[[c[0], c[1], list(c[2]) if len(c) > 2 and c[2] else None] for c in capture])
            pipe = os.path.join(work, "a_to_b.pipe")
            if os.path.exists(pipe):
                os.remove(pipe)
            if not keep and make_pipe(pipe):
                params_a["stream_to"] = params_b["against_pipe"] = pipe
            else:
                first: dict[str, int] = {}
                for k, c in enumerate(capture):
                    first.setdefault(c[0], k)
                params_a["capture_index_out"] = index_a
                params_b.update(against={n: os.path.join(layers_a, f"{k}.npy") for n, k in first.items()},
                                against_done=index_a, keep_against=keep)
            params_a["share_cores"] = params_b["share_cores"] = True
            task_b = "compare_side"
        elif o.capture_map:  # map names may not exist in a runner: compare what can be captured, warn of the rest
            params_a["capture_optional"] = params_b["capture_optional"] = True

    jobs_dir = os.path.join(work, "jobs")
    os.makedirs(jobs_dir, exist_ok=True)
    prog(0.0, "starting both sides")
    params_a["spawned_at"] = params_b["spawned_at"] = time.monotonic()
    if pool is not None:
        from ..jobs import family_of
        job_a = pool.start("run_model", params_a, family=family_of(path_a))
        job_b = pool.start(task_b, params_b, family=family_of(path_b))
    else:
        # a per-layer run's workers: large tensors in huge pages (glibc), a page fault per 2 MiB instead
        # of per 4 KiB; that took a third of a capture run's CPU time
        env = {"GLIBC_TUNABLES": ":".join(x for x in (os.environ.get("GLIBC_TUNABLES"),
                                                        "glibc.malloc.hugetlb=1") if x)} if o.per_layer else None
        job_a = Job("run_model", params_a, job_dir=os.path.join(jobs_dir, "a"), env=env).start()
        job_b = Job(task_b, params_b, job_dir=os.path.join(jobs_dir, "b"), env=env)
        if o.parallel or task_b == "compare_side":  # B reads A's tensors as they come: both at once
            job_b.start()
    t_start = time.monotonic()
    results: dict[str, dict] = {}
    sides = {"A": (job_a, res.a), "B": (job_b, res.b)}
    started = {x: t_start for x in sides if sides[x][0].proc is not None}
    try:
        pending = ["A", "B"]
        prog(0.1, "running side A" + (" and side B" if "B" in started else ""))
        while pending:
            if "B" in pending and "B" not in started and "A" not in pending:  # one after the other
                job_b.start()
                started["B"] = time.monotonic()
                prog(0.5, "running side B")
            running = [x for x in pending if x in started]
            ended = [x for x in running if sides[x][0].done]
            late = [x for x in running if o.timeout is not None and time.monotonic() - started[x] > o.timeout]
            if not ended and not late:  # both at once: the first to end, since one that fails must
                sides[running[0]][0]._done.wait(0.05)  # stop the other, which may wait for its tensors
                continue
            label = (ended or late)[0]
            job, side = sides[label]
            pending.remove(label)
            try:
                if label in ended:
                    results[label] = job.wait(0)
                    _fill_side(side, results[label], t_start, job)
                else:
                    raise TimeoutError
            except TimeoutError:
                job.cancel(grace=0.5)
                side.error = f"did not finish within {o.timeout:g} s"
                side.error_kind = "Timeout"
            except JobFailed as exc:
                side.error, side.error_kind = exc.message, exc.kind
                side.crashed = exc.kind == ErrorKind.WORKER_CRASHED
                side.log_path = exc.log_path
            if side.error:
                what = "crashed" if side.crashed else "failed"
                res.error = f"side {label} ({os.path.basename(side.path)}) {what}: {side.error}"
                for other in pending:
                    oj = sides[other][0]
                    if oj.proc is not None:
                        oj.cancel(grace=0.5)
                        oj._done.wait(5)
                return _finish(res, work, keep, o, None, None)
    except KeyboardInterrupt:
        for j in (job_a, job_b):
            if j.proc is not None:
                j.cancel(grace=0.5)
        raise

    prog(0.8, "comparing outputs")
    for label in ("A", "B"):
        res.warnings.extend(f"side {label}: {w}" for w in results[label].get("warnings", []))
    res.inputs = results["A"].get("feeds", {})
    with np.load(results["A"]["outputs_npz"]) as za, np.load(results["B"]["outputs_npz"]) as zb:
        outs_a = {k: za[k] for k in za.files}
        outs_b = {k: zb[k] for k in zb.files}
    noise = _noise(outs_a, results["A"].get("noise_npz"))
    # the map may name tensors the way the file stores them; the runners may call them otherwise
    sidecar = sidecar.renamed(results["A"].get("aliases") or {}, results["B"].get("aliases") or {})
    names_a, names_b = results["A"].get("output_names"), results["B"].get("output_names")
    planned = list(capture)
    if capture:
        # an inner tensor captured on one side only has no partner: keep it out of output pairing
        kept = [c for c in capture if c[0] in outs_a and c[1] in outs_b]
        model_out_a = {s["name"] for s in results["A"].get("outputs", []) if isinstance(s, dict)}
        model_out_b = {s["name"] for s in results["B"].get("outputs", []) if isinstance(s, dict)}
        inner_a, inner_b = {c[0] for c in capture}, {c[1] for c in capture}
        # The model's outputs pair among themselves, as without a map: an inner tensor that the map pairs
        # with one of them (``encoder`` -> ``last_hidden_state``) must not take it away from its output.
        names_a = [n for n in (names_a or list(outs_a)) if n not in inner_a or n in model_out_a]
        names_b = [n for n in (names_b or list(outs_b)) if n not in inner_b or n in model_out_b]
        capture = kept
    res.outputs = compare_outputs(outs_a, outs_b, tolerance=o.tolerance, overrides=o.overrides, sidecar=sidecar,
                                  warnings=res.warnings, names_a=names_a, names_b=names_b, noise=noise)
    if capture:
        res.outputs += compare_outputs(outs_a, outs_b, tolerance=o.tolerance, overrides=o.overrides,
                                       warnings=res.warnings, names_a=[c[0] for c in capture],
                                       names_b=[c[1] for c in capture], pairs=capture, only_given=True,
                                       noise=noise)
    if planned and o.per_layer:
        if "layer_diffs" in results["B"]:  # compared in B's worker as it ran
            res.outputs += [OutputDiff.from_dict(d) for d in results["B"]["layer_diffs"]]
            gone = set(results["B"].get("released") or [])
            kept_a = {k: v for k, v in (results["A"].get("captured") or {}).items() if k not in gone}
            kept_a.update(results["B"].get("a_files") or {})  # A's tensors of failing layers (B kept them)
            results["A"]["captured"] = kept_a
            res.warnings.extend(results["B"].get("compare_warnings") or [])
        else:
            prog(0.85, f"comparing {len(planned)} layers")
            res.outputs += compare_spilled(planned, results, o, noise, res.warnings)
    if o.per_layer and wants_noise and any(not d.passed for d in res.outputs):
        prog(0.9, "measuring A's rounding sensitivity where the layers differ")
        rounding_pass(res, results, o, path_a, inputs_path, work, outs_a, outs_b, planned)
    if not res.model_outputs:
        res.error = "no output of A could be paired with an output of B (names and shapes all differ)"
    if plan is not None:
        from ..parity import judge_layers
        inner = {(d.name, d.name_b): d for d in res.intermediates}
        layers, first_layer = judge_layers(plan, inner)
        res.layers, res.layer_first = layers, first_layer
        if res.b.runtime in ("onnxruntime", "torch") and any(r.status in ("source", "inherited") for r in layers):
            prog(0.95, "re-running B's failing layers on A's tensors")
            local_errors(layers, planned, results, o, path_b, work, res.warnings)
        res.layer_notes = list(plan.notes)
        res.unmatched = {"a": list(plan.unmatched_a), "b": list(plan.unmatched_b)}
        if keep:  # where each side's kept tensors are: {tensor name: .npy path}, for readers of the folder
            import json

            for which, found in (("a", results["A"].get("captured") or {}),
                                 ("b", results["B"].get("captured") or {})):
                index = os.path.join(work, f"layers_{which}.json")
                with open(index, "w") as f:
                    json.dump({k: v for k, v in found.items() if os.path.exists(v)}, f)
                res.files[f"layers_{which}"] = index
            if os.path.isdir(os.path.join(work, "local")):
                res.files["local"] = os.path.join(work, "local")
    return _finish(res, work, keep, o, outs_a, outs_b)


def _written_for(side: dict, path: str) -> bool:
    """Whether a map's recorded source (or target) is ``path``: the same file, or, once files have moved,
    the same file name. A map that names no path is taken at its word."""
    recorded = str((side or {}).get("path") or "")
    if not recorded:
        return True
    try:
        if os.path.exists(recorded) and os.path.samefile(recorded, path):
            return True
    except OSError:
        pass
    return os.path.basename(os.path.normpath(recorded)) == os.path.basename(os.path.normpath(path))


def _noise(outs_a: dict[str, np.ndarray], path: str | None) -> dict[str, float]:
    """Per tensor of A: max |A(x) - A(x')| over finite elements, x' one rounding step from x."""
    if not path or not os.path.exists(path):
        return {}
    noise = {}
    with np.load(path) as z:
        for k in z.files:
            a = outs_a.get(k)
            if a is None or a.shape != z[k].shape or a.dtype.kind != "f":
                continue
            d = np.abs(a.astype(np.float64) - z[k].astype(np.float64))
            d = d[np.isfinite(d)]
            noise[k] = float(d.max()) if d.size else 0.0
    return noise


_RANK = {"source": 4, "layout": 3, "inherited": 2, "ok": 1, "missing": 0}


def compare_samples(path_a: str, path_b: str, options: CompareOptions | None = None, samples: int = 2, *,
                    progress: Callable[[float | None, str], None] | None = None) -> CompareResult:
    """:func:`compare_models` on ``samples`` seeded random input sets (seeds ``seed`` … ``seed+samples-1``),
    merged: each output and each layer keeps its worst sample (a layer that is a source in any sample is a
    source), and the first divergence is the earliest source over all of them. An ``.npz`` batch given as
    inputs covers several samples in one run instead."""
    from dataclasses import replace

    o = options or CompareOptions()
    if o.input_files:
        raise TensorbridgeError("several samples are drawn from seeded random inputs; with input files, put the "
                                "samples in one .npz batch instead")
    prog = progress or _no_progress
    runs: list[CompareResult] = []
    for k in range(max(1, samples)):
        prog(k / samples, f"sample {k + 1} of {samples}")
        def step(f=None, m="", k=k):
            prog((k + (f or 0.0)) / samples, f"sample {k + 1} of {samples}: {m}" if m else f"sample {k + 1} of {samples}")

        r = compare_models(path_a, path_b, replace(o, seed=o.seed + k, report=None,
                                                     save_dir=os.path.join(o.save_dir, f"sample_{k}") if o.save_dir else None),
                           progress=step)
        if r.error:
            return r
        runs.append(r)
    res = runs[0]
    res.seed = o.seed
    res.samples = len(runs)
    if len(runs) > 1:
        res.outputs = [max((r.outputs[i] for r in runs), key=lambda d: (not d.passed, d.max_abs))
                       if all(len(r.outputs) == len(res.outputs) for r in runs) else d for i, d in enumerate(res.outputs)]
        if res.layers and all(len(r.layers) == len(res.layers) for r in runs):
            res.layers = [max((r.layers[i] for r in runs), key=lambda x: (_RANK.get(x.status, 0), x.max_abs or 0.0))
                          for i in range(len(res.layers))]
            placed = [x for x in res.layers if x.depth >= 0] or res.layers
            res.layer_first = next((x for x in placed if x.status == "source"), None) or \
                next((x for x in placed if x.status == "layout"), None)
        res.warnings = list(dict.fromkeys(w for r in runs for w in r.warnings))  # each once, first seen first
    if o.report:
        from ..report import write_report
        res.files["report"] = os.path.abspath(o.report)
        write_report(res, o.report, None, None)
    return res


def _finish(res: CompareResult, work: str, keep: bool, o: CompareOptions, outs_a, outs_b) -> CompareResult:
    try:
        if keep:
            arrays: dict[str, np.ndarray] = {}
            ip = os.path.join(work, "inputs.npz")
            if os.path.exists(ip):
                with np.load(ip) as z:
                    arrays.update({f"inputs/{k}": z[k] for k in z.files})
            for prefix, outs in (("a", outs_a), ("b", outs_b)):
                for k, v in (outs or {}).items():
                    arrays[f"{prefix}/{k}"] = v
            npz = os.path.join(work, "arrays.npz")
            # mypy matches a **dict against every keyword parameter, allow_pickle: bool included.
            np.savez(npz, **arrays)  # type: ignore[arg-type]
            res.files["npz"] = npz
            res.files["inputs"] = ip if os.path.exists(ip) else ""
            res.files["json"] = os.path.join(work, "result.json")
        if o.report:
            from ..report import write_report
            res.files["report"] = os.path.abspath(o.report)
            write_report(res, o.report, outs_a, outs_b)
        if keep:
            res.save_json(res.files["json"])
    finally:
        # a failed side's job log stays on disk when failed jobs are kept (--debug); else the folder goes
        from ..jobs.limits import keep_failed_jobs
        if not keep and (res.error is None or not keep_failed_jobs()):
            shutil.rmtree(work, ignore_errors=True)
    return res


def options_from_params(p: dict) -> CompareOptions:
    """CompareOptions from JSON-able params (the compare task and the CLI share this)."""
    from .tolerances import tolerance

    nf = p.get("noise_factor")
    tol = tolerance(p.get("preset"), atol=p.get("atol"), rtol=p.get("rtol"), noise_factor=nf)
    overrides = {}
    for name, spec in (p.get("overrides") or {}).items():
        overrides[name] = tolerance(spec.get("preset") or p.get("preset"), atol=spec.get("atol"), rtol=spec.get("rtol"),
                                    noise_factor=nf)
    return CompareOptions(device_a=p.get("device_a") or "cpu", device_b=p.get("device_b") or "cpu",
                          input_files=list(p.get("inputs") or []), image=p.get("image") or {},
                          seed=int(p.get("seed", 0)), batch=p.get("batch"), dims=p.get("dims") or {},
                          shapes=p.get("shapes") or {}, tolerance=tol, overrides=overrides,
                          warmup=int(p.get("warmup", 1)), repeats=int(p.get("repeats", 5)),
                          trust=bool(p.get("trust")), signature_a=p.get("signature_a"),
                          signature_b=p.get("signature_b"), save_dir=p.get("save_dir"), report=p.get("report"),
                          timeout=p.get("timeout"),
                          capture=[tuple(c) if isinstance(c, (list, tuple)) else (c, c)
                                   for c in (p.get("capture") or [])],
                          capture_map=bool(p.get("capture_map")), per_layer=bool(p.get("per_layer")))


def compare_task(params: dict, ctx) -> dict:
    """Worker task "compare": params ``a``, ``b`` (paths) plus the keys of :func:`options_from_params`, and
    ``samples`` (several seeded random input sets, :func:`compare_samples`); ``save_dir`` defaults to the
    job folder. Result: the CompareResult as a dict (``passed``, ``outputs``, ``files`` …)."""
    params = dict(params)
    for key in ("a", "b"):
        if not os.path.isabs(str(params.get(key, ""))):
            # this worker runs in its job folder, so a relative path would name the wrong file
            raise TensorbridgeError(f"compare: '{params.get(key)}' is a relative path; pass absolute paths to the task")
    params.setdefault("save_dir", ctx.path("compare"))
    opts = options_from_params(params)
    samples = int(params.get("samples") or 1)
    if samples > 1:
        res = compare_samples(params["a"], params["b"], opts, samples, progress=ctx.progress)
    else:
        res = compare_models(params["a"], params["b"], opts, progress=ctx.progress)
    from .results import _json_safe
    return _json_safe(res.to_dict())
