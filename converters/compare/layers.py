"""The steps of a per-layer comparison around the two sides' run (see :func:`.engine.compare_models`): pairing
the layers (in a worker), comparing tensors kept on disk, A's rounding sensitivity measured afterwards where
layers fail strictly, and B's failing layers re-run alone on A's tensors (their local error)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..tbmap import TensorMap
from .diff import OutputDiff
from .results import CompareResult

if TYPE_CHECKING:
    from .engine import CompareOptions

__all__ = ["plan_layers_job", "compare_spilled", "rounding_pass", "local_errors", "MAX_LOCAL"]


def plan_layers_job(path_a: str, path_b: str, o: CompareOptions, sidecar: TensorMap, res: CompareResult, jobs_dir: str):
    """The layer pairs of both models (read in a worker, like every read of a user's file), or None
    with ``res.error`` set."""
    from ..jobs import Job, JobFailed
    from ..parity import LayerPlan

    params = {"a": path_a, "b": path_b, "trust": o.trust, "map": sidecar.to_dict() if sidecar else None,
              "user_pairs": [[c[0], c[1], list(c[2]) if len(c) > 2 and c[2] else None] for c in o.capture]}
    job = Job("plan_layers", params, job_dir=os.path.join(jobs_dir, "plan")).start()
    try:
        plan = LayerPlan.from_dict(job.wait(o.timeout))
    except TimeoutError:
        job.cancel(grace=0.5)
        res.error = f"pairing the layers did not finish within {o.timeout:g} s"
        return None
    except JobFailed as exc:
        res.error = f"pairing the layers failed: {exc.message}"
        return None
    if not plan.pairs:
        res.warnings.append("no layer of A could be paired with a layer of B (no pair given, no converter map, no "
                            "shared tensor names, weights or structure); compared the outputs only")
    return plan


def compare_spilled(pairs: list[tuple], results: dict, o: CompareOptions, noise: dict[str, float],
                     warnings: list[str]) -> list[OutputDiff]:
    """Compare the tensors both sides wrote to disk, one pair at a time (memory: one pair)."""
    from .engine import compare_outputs

    fa, fb = results["A"].get("captured") or {}, results["B"].get("captured") or {}

    def one(c) -> list[OutputDiff]:
        a, b = c[0], c[1]
        if a not in fa or b not in fb:
            return []
        xa, xb = np.load(fa[a], mmap_mode="r"), np.load(fb[b], mmap_mode="r")
        return compare_outputs({a: xa}, {b: xb}, tolerance=o.tolerance, overrides=o.overrides, warnings=warnings,
                               names_a=[a], names_b=[b], pairs=[tuple(c)], only_given=True,
                               noise={a: noise[a]} if a in noise else None, detail=False)

    # numpy releases the GIL in its loops: a few threads compare a few pairs at once
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as ex:
        return [d for ds in ex.map(one, pairs) for d in ds]


def rounding_pass(res: CompareResult, results: dict, o: CompareOptions, path_a: str, inputs_path: str, work: str,
                   outs_a: dict, outs_b: dict, planned: list[tuple]) -> None:
    """A per-layer comparison measures A's rounding sensitivity only where it matters: A runs once more on
    inputs one rounding step away, capturing just the tensors that failed strictly, and those are judged
    again with the allowance (see tolerances). A faithful conversion costs no extra run."""
    from .engine import compare_outputs

    from ..jobs import Job, JobFailed

    failing = [d for d in res.outputs if not d.passed]
    files = results["A"].get("captured") or {}
    inner = [d.name for d in failing if d.intermediate and d.name in files]
    params = {"path": path_a, "device": o.device_a, "trust": o.trust, "inputs_npz": inputs_path,
              "noise_against": {n: files[n] for n in inner}, "noise_outputs_npz": results["A"]["outputs_npz"]}
    if o.signature_a:
        params["signature"] = o.signature_a
    job = Job("run_model", params, job_dir=os.path.join(work, "jobs", "noise")).start()
    try:
        got = job.wait(o.timeout)
    except (TimeoutError, JobFailed) as exc:
        job.cancel(grace=0.5)
        res.warnings.append(f"A's rounding sensitivity could not be measured ({getattr(exc, 'message', exc)}); "
                            f"judged without the allowance")
        return
    noise = dict(got.get("output_noise") or {})
    noise.update(got.get("capture_noise") or {})
    if not noise:
        return
    by_pair = {(c[0], c[1]): c for c in planned}
    redo = []
    for k, d in enumerate(res.outputs):
        if d.passed or d.name not in noise:
            continue
        if d.intermediate:
            c = by_pair.get((d.name, d.name_b), (d.name, d.name_b))
            new = compare_spilled([c], results, o, {d.name: noise[d.name]}, [])
        else:
            pair = (d.name, d.name_b, tuple(d.perm_b) if d.perm_b else None)
            new = compare_outputs(outs_a, outs_b, tolerance=o.overrides.get(d.name) or o.tolerance, warnings=[],
                                  names_a=[d.name], names_b=[d.name_b], pairs=[pair], only_given=True,
                                  noise={d.name: noise[d.name]})
            for x in new:
                x.intermediate, x.matched_by = False, d.matched_by
        if new:
            redo.append((k, new[0]))
    for k, d in redo:
        res.outputs[k] = d


MAX_LOCAL = 256  # failing layers re-run one by one on A's tensors (the earliest first)


def local_errors(layers, pairs: list[tuple], results: dict, o: CompareOptions, path_b: str, work: str,
                  warnings: list[str]) -> None:
    """B's own error at each failing layer: its ONNX node re-run alone on A's tensors for that node's
    inputs (where every input is a paired tensor in the same layout), compared with A's tensor for the
    layer. Sets ``local_max_abs`` / ``local_passed`` on those layers."""
    from .engine import compare_outputs

    from ..jobs import JobFailed, run_job

    fa = results["A"].get("captured") or {}
    fb = set(results["B"].get("captured") or {}) | set(results["B"].get("compared") or [])
    a_of_b = {}
    for c in pairs:
        perm = c[2] if len(c) > 2 else None
        if c[0] in fa and c[1] in fb and (not perm or list(perm) == sorted(perm)):
            a_of_b.setdefault(c[1], fa[c[0]])
    todo = [r for r in layers if r.status in ("source", "inherited") and r.node_b and r.a in fa][:MAX_LOCAL]
    if not todo:
        return
    outdir = os.path.join(work, "local")
    os.makedirs(outdir, exist_ok=True)
    reqs, by_node = [], {}
    for r in todo:
        reqs.append({"node": r.node_b, "inputs": "auto", "out": os.path.join(outdir, f"{r.index}.npy")})
        by_node.setdefault(r.node_b, []).append(r)
    try:
        res, job = run_job("run_nodes", {"path": path_b, "device": o.device_b, "requests": reqs, "trust": o.trust,
                                         "available": a_of_b}, timeout=o.timeout)
        job.cleanup()
    except JobFailed as exc:
        warnings.append(f"B's layers could not be re-run on A's tensors: {exc.message}")
        return
    for r in todo:
        f = os.path.join(outdir, f"{r.index}.npy")
        if r.node_b not in res.get("done", []) or not os.path.exists(f):
            continue
        local = compare_outputs({r.a: np.load(fa[r.a], mmap_mode="r")}, {r.b: np.load(f, mmap_mode="r")},
                                tolerance=o.tolerance, overrides=o.overrides, warnings=[], names_a=[r.a],
                                names_b=[r.b], pairs=[(r.a, r.b)], only_given=True, detail=False)
        if local:
            r.local_max_abs, r.local_passed = local[0].max_abs, bool(local[0].passed)
