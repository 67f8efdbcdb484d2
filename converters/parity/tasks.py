"""Worker tasks of ``tensorbridge reduce``: cut subgraphs out of an ONNX model and check them in onnxruntime.

``reduce_cut`` (case 1, B is the ONNX that is wrong) loads B once and runs the whole search of
:func:`converters.parity.reduce.search_cut` in this worker: each candidate is B's subgraph ending at the
first divergence, its inputs fed with A's own values, run in onnxruntime and judged against A's tensor.
``reduce_slice`` (case 2, A is the ONNX a converter got wrong) writes one cut of A with its inputs, for
the caller to convert and compare.

Both read a user's file, so they run in workers like every other read (see converters/jobs/tasks.py).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["reduce_cut_task", "reduce_slice_task", "judge", "Graph"]


# ---- the graph ----------------------------------------------------------------------------------------

def _subgraph_refs(node) -> set[str]:
    """Names a node's subgraphs (If / Loop / Scan bodies) read from the enclosing graph."""
    out: set[str] = set()
    for a in node.attribute:
        for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                local.update(o for o in n.output if o)
            for n in g.node:
                out.update(x for x in n.input if x and x not in local)
                out.update(r for r in _subgraph_refs(n) if r not in local)
    return out


class Graph:
    """An ONNX model's top-level graph as the search needs it: nodes in topological order, who makes each
    tensor, what each node reads (subgraph references included), and the initializers."""

    def __init__(self, model):
        self.model = model
        g = model.graph
        self.nodes = list(g.node)
        self.inits = {t.name: t for t in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in self.inits]
        self.reads: list[list[str]] = [[x for x in n.input if x] + sorted(_subgraph_refs(n)) for n in self.nodes]
        self.producer: dict[str, int] = {}
        for k, n in enumerate(self.nodes):
            for o in n.output:
                if o:
                    self.producer[o] = k
        self.types = {v.name: v for v in list(g.value_info) + list(g.input) + list(g.output)}

    def cone(self, target: str, fed: set[str]) -> list[int]:
        """The nodes that compute ``target`` when the tensors in ``fed`` (and the graph's inputs) are given:
        a walk up from ``target`` that stops at them. In graph order."""
        start = self.producer.get(target)
        if start is None or target in fed:
            return []
        seen, todo = {start}, [start]
        while todo:
            k = todo.pop()
            for x in self.reads[k]:
                if x in fed or x in self.inits:
                    continue
                j = self.producer.get(x)
                if j is not None and j not in seen:
                    seen.add(j)
                    todo.append(j)
        return sorted(seen)

    def boundary(self, nodes: list[int]) -> list[str]:
        """The tensors a set of nodes reads that none of them makes (initializers aside), in first-read order."""
        made = {o for k in nodes for o in self.nodes[k].output if o}
        out: list[str] = []
        for k in nodes:
            for x in self.reads[k]:
                if x not in made and x not in self.inits and x not in out:
                    out.append(x)
        return out

    def model_of(self, nodes: list[int], feeds: dict[str, np.ndarray], target: str, out_value=None):
        """A standalone ONNX model of ``nodes``: the boundary tensors as inputs (typed from ``feeds``), the
        initializers they use, ``target`` as the one output; the opset, IR version and functions of the
        original."""
        from onnx import helper

        ins = []
        for x in self.boundary(nodes):
            v = np.asarray(feeds[x])
            ins.append(helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape)))
        used: list[str] = []
        for k in nodes:
            for x in self.reads[k]:
                if x in self.inits and x not in used:
                    used.append(x)
        if out_value is not None:
            v = np.asarray(out_value)
            out = helper.make_tensor_value_info(target, helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        elif target in self.types:
            out = self.types[target]
        else:
            out = helper.make_empty_tensor_value_info(target)
        src = self.model
        g = helper.make_graph([self.nodes[k] for k in nodes], (src.graph.name or "graph") + "_repro", ins, [out],
                              [self.inits[x] for x in used])
        m = helper.make_model(g, opset_imports=list(src.opset_import), ir_version=src.ir_version,
                              producer_name="tensorbridge reduce")
        m.functions.extend(src.functions)
        return m


# ---- running and judging ------------------------------------------------------------------------------

def _session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def judge(expected: np.ndarray, got: np.ndarray, tol: dict[str, Any], allowance: float = 0.0) -> dict[str, Any]:
    """The verdict of ``got`` against reference ``expected`` under a comparison's tolerance (see
    converters/compare/tolerances.py: ``|a - b| <= atol + rtol * |a|`` per element, plus ``allowance``, the
    reference's own rounding allowance for this tensor; ``max_mismatch_fraction``; ``min_cosine``).
    Returns passed, max_abs, mean_abs, max_rel, mismatches, numel, cosine, reason."""
    a, b = np.asarray(expected), np.asarray(got)
    if a.shape != b.shape and a.size == b.size:
        b = b.reshape(a.shape)
    if a.shape != b.shape:
        return {"passed": False, "shape_differs": True, "reason": f"shapes differ: {list(a.shape)} vs {list(b.shape)}",
                "max_abs": float("inf"), "mean_abs": float("inf"), "max_rel": float("inf"), "mismatches": int(a.size),
                "numel": int(a.size), "cosine": None}
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a64 - b64)
        limit = float(tol.get("atol", 1e-5)) + float(tol.get("rtol", 1e-4)) * np.abs(a64) + float(allowance or 0.0)
        same_nan = np.isnan(a64) & np.isnan(b64)
        same_inf = np.isinf(a64) & (a64 == b64)
        ok = (diff <= limit) | same_nan | same_inf
    bad = int(a.size - int(ok.sum()))
    finite = diff[np.isfinite(diff)]
    max_abs = float(finite.max()) if finite.size else 0.0
    if (~np.isfinite(diff) & ~(same_nan | same_inf)).any():  # NaN or Inf on one side only
        max_abs = float("inf")
    rel = finite / np.maximum(np.abs(a64[np.isfinite(diff)]), 1e-6) if finite.size else finite
    cos = None
    fa, fb = a64.ravel(), b64.ravel()
    if np.isfinite(fa).all() and np.isfinite(fb).all():
        na, nb = float(np.linalg.norm(fa)), float(np.linalg.norm(fb))
        cos = float(fa @ fb / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    reasons = []
    frac = bad / max(a.size, 1)
    if frac > float(tol.get("max_mismatch_fraction") or 0.0):
        reasons.append(f"{bad} of {a.size} elements outside tolerance")
    mc = tol.get("min_cosine")
    if mc is not None and cos is not None and cos < float(mc):
        reasons.append(f"cosine {cos:.6f} < {mc}")
    return {"passed": not reasons, "reason": "; ".join(reasons), "max_abs": max_abs,
            "mean_abs": float(finite.mean()) if finite.size else 0.0,
            "max_rel": float(rel.max()) if rel.size else 0.0, "mismatches": bad, "numel": int(a.size), "cosine": cos}


def _load_values(files: dict[str, str], perms: dict[str, list[int]] | None = None) -> dict[str, np.ndarray]:
    """{name: array} from .npy files; an array given with B's layout change is laid out as B holds it."""
    out = {}
    for name, f in files.items():
        v = np.load(f)
        perm = (perms or {}).get(name)
        if perm and list(perm) != sorted(perm):
            v = np.ascontiguousarray(v.transpose(np.argsort(perm)))
        out[name] = v
    return out


def _graph_feeds(npz: str, inputs: list[str]) -> dict[str, np.ndarray]:
    """The model's inputs from the comparison's inputs: by name, else (as many arrays as inputs) by position."""
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    out = {k: arrays[k] for k in inputs if k in arrays}
    if len(out) < len(inputs) and len(arrays) == len(inputs):
        out = dict(zip(inputs, arrays.values()))
    return out


def _write_cut(folder: str, model, feeds: dict[str, np.ndarray], target: str, expected, actual) -> dict[str, str]:
    import onnx

    os.makedirs(folder, exist_ok=True)
    names = [i.name for i in model.graph.input]
    files = {"model": os.path.join(folder, "repro.onnx"), "inputs": os.path.join(folder, "inputs.npz"),
             "expected": os.path.join(folder, "expected.npz")}
    big = sum(len(t.raw_data) for t in model.graph.initializer) > (1800 << 20)
    onnx.save(model, files["model"], save_as_external_data=big, location="repro.onnx.data" if big else None)
    np.savez(files["inputs"], **{n: feeds[n] for n in names})
    np.savez(files["expected"], **{target: np.asarray(expected)})
    if actual is not None:
        files["actual"] = os.path.join(folder, "actual.npz")
        np.savez(files["actual"], **{target: np.asarray(actual)})
    return files


def _load_onnx(path: str):
    """The model with its weights; external weight files only from beside it (the reader's own check)."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model

    from ..errors import CorruptFile, TensorbridgeError, one_line
    from ..formats.onnx_reader import _check_external_locations

    try:
        model = onnx.load_model(path, load_external_data=False)
        _check_external_locations(path, model)
        load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
    except TensorbridgeError:
        raise
    except Exception as exc:
        raise CorruptFile(f"{path}: cannot be read as ONNX ({one_line(exc)})") from None
    return model


# ---- the tasks ----------------------------------------------------------------------------------------

def reduce_cut_task(params: dict, ctx) -> dict:
    """Worker task "reduce_cut": the smallest subgraph of ONNX model B that still fails the same way.

    params: ``path`` (B, absolute), ``target`` (B's tensor at the first divergence), ``expected`` (.npy:
    A's value of it), ``perm`` (B's layout change of the target, or None), ``feeds`` {B tensor: .npy of
    A's value} (paired tensors that matched), ``feed_perms`` {B tensor: perm}, ``graph_inputs`` (.npz:
    B's inputs as fed in the comparison), ``tolerance`` (a Tolerance as a dict), ``allowance`` (the
    target's rounding allowance), ``layer_max_abs`` (the target's error in the full comparison),
    ``same_order`` (fraction of it a cut must keep), ``max_checks``, ``out`` (folder for the repro files).
    result: ``found``, ``nodes_before``, ``nodes`` (the repro's node names), ``inputs``, ``verdict`` (see
    :func:`judge`), ``steps`` [{what, nodes, fails, max_abs}], ``files``, ``why`` when nothing fails.
    """
    from ..errors import one_line
    from .reduce import search_cut, same_way

    model = _load_onnx(params["path"])
    graph = Graph(model)
    target = params["target"]
    if target not in graph.producer:
        raise ValueError(f"no node of B makes tensor '{target}'")
    expected = _load_values({target: params["expected"]}, {target: params.get("perm") or []})[target]
    values = _graph_feeds(params["graph_inputs"], graph.inputs)
    fed_files = {k: f for k, f in (params.get("feeds") or {}).items() if k in graph.producer and k != target}
    tol = params.get("tolerance") or {}
    allowance = float(params.get("allowance") or 0.0)
    layer_err = params.get("layer_max_abs")
    order = float(params.get("same_order", 0.1))
    # the candidates: paired tensors upstream of the target, nearest to the inputs first
    upstream = set(graph.cone(target, set()))
    cands = sorted((k for k in fed_files if graph.producer[k] in upstream), key=lambda k: graph.producer[k])
    values.update(_load_values({k: fed_files[k] for k in cands}, params.get("feed_perms")))
    steps: list[dict] = []
    cache: dict[tuple[int, ...], tuple[bool, dict | None, Any]] = {}

    def run(fed: set[str]) -> tuple[bool, dict | None, Any]:
        nodes = graph.cone(target, fed)
        key = tuple(nodes)
        if key in cache:
            return cache[key]
        lacking = [x for x in graph.boundary(nodes) if x not in values]
        if lacking:
            cache[key] = (False, None, None)
            return cache[key]
        try:
            m = graph.model_of(nodes, values, target)
            got = _session(m).run([target], {x: values[x] for x in graph.boundary(nodes)})[0]
        except Exception as exc:  # a cut the runtime does not take (types, shapes): not a repro
            steps.append({"what": "error", "nodes": len(nodes), "fails": False, "why": one_line(exc)})
            cache[key] = (False, None, None)
            return cache[key]
        v = judge(expected, got, tol, allowance)
        fails = same_way(v, layer_err, order)
        ctx.progress(None, f"{len(nodes)} node(s): {'fails' if fails else 'passes'} (max abs {v['max_abs']:.3g})")
        steps.append({"what": "check", "nodes": len(nodes), "fails": fails, "max_abs": v["max_abs"]})
        cache[key] = (fails, v, got)
        return cache[key]

    max_checks = int(params.get("max_checks") or 200)
    fed, how = search_cut(cands, lambda f: run(set(f))[0], max_checks=max_checks, log=steps.append)
    base = {"nodes_before": len(graph.nodes), "candidates": len(cands), "steps": steps}
    if fed is None:
        full = run(set())[1]
        return {**base, "found": False, "why": (
            "B's subgraph up to the first divergence does not fail on its own with A's values upstream "
            f"(max abs {full['max_abs']:.3g})" if full else "B's subgraph up to the first divergence cannot be run "
            "on its own in onnxruntime")}
    fails, verdict, got = run(set(fed))
    nodes = graph.cone(target, set(fed))
    m = graph.model_of(nodes, values, target, out_value=got)
    inputs = graph.boundary(nodes)
    files = _write_cut(params["out"], m, values, target, expected, got)
    return {**base, "found": True, "how": how, "nodes": [graph.nodes[k].name or graph.nodes[k].output[0] for k in nodes],
            "ops": [graph.nodes[k].op_type for k in nodes], "inputs": inputs,
            "fed": [x for x in inputs if x in fed_files], "verdict": verdict, "files": files,
            "opset": [{"domain": o.domain, "version": o.version} for o in model.opset_import]}


def reduce_slice_task(params: dict, ctx) -> dict:
    """Worker task "reduce_slice": one cut of ONNX model A (case 2: the reference is the ONNX a converter
    read), written as a model with its inputs for the caller to convert and compare.

    params: ``path`` (A, absolute), ``target`` (A's tensor at the first divergence), ``fed`` [tensors of A
    given as inputs], ``values`` {tensor: .npy} (A's values of them, and of the target), ``graph_inputs``
    (.npz: A's inputs), ``out`` (folder). With ``fed`` None: only list the candidates (the paired tensors
    upstream of the target, in graph order) and the model's node count.
    result: ``nodes_before``, ``candidates`` or ``nodes``, ``inputs``, ``files``."""
    model = _load_onnx(params["path"])
    graph = Graph(model)
    target = params["target"]
    if target not in graph.producer:
        raise ValueError(f"no node of A makes tensor '{target}'")
    files = params.get("values") or {}
    if params.get("fed") is None:
        upstream = set(graph.cone(target, set()))
        cands = sorted((k for k in files if k in graph.producer and k != target and graph.producer[k] in upstream),
                       key=lambda k: graph.producer[k])
        return {"nodes_before": len(graph.nodes), "candidates": cands}
    fed = set(params["fed"])
    nodes = graph.cone(target, fed)
    values = _graph_feeds(params["graph_inputs"], graph.inputs)
    values.update(_load_values({k: files[k] for k in fed if k in files}))
    expected = np.load(files[target]) if target in files else None
    m = graph.model_of(nodes, values, target, out_value=expected)
    out = _write_cut(params["out"], m, values, target, expected, None)
    inputs = graph.boundary(nodes)
    return {"nodes_before": len(graph.nodes), "nodes": [graph.nodes[k].name or graph.nodes[k].output[0] for k in nodes],
            "ops": [graph.nodes[k].op_type for k in nodes], "inputs": inputs,
            "shapes": {x: list(np.shape(values[x])) for x in inputs}, "files": out}
