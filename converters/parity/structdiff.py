"""Structural diff of two models, without running them: which nodes were added, removed or changed.

Both graphs are read by the format readers (no model code runs). Every node of A is paired with at most
one node of B, in the same tiers of trust as the per-layer plan (:mod:`converters.parity.plan`), here
extended to every node (layout ops and constants included):

``name``
    a node of the same name, else a node producing a value of the same name (two versions of one file
    keep most of their names). A name pair whose ops differ in kind stands only when one of its inputs
    comes from nodes paired with each other (a replaced activation keeps its place; a name an exporter
    reused for another layer does not).
``weights``
    nodes whose main weight holds the same values (the fingerprints of :mod:`converters.parity.structure`,
    unique on both sides, kept in both graphs' order).
``structure``
    between the pairs found so far, the nodes left aligned in topological order by op kind and output
    size (the structure module's alignment).
``neighbour``
    a node left over whose consumer or producer is paired, at the same input position on both sides and
    of the same op kind (the reshape before a paired matmul, the add after a paired conv).
``order``
    what is still left, aligned by op kind alone between the pairs around it.
``position``
    a node still left that is the only one between the same pairs on both sides (fed by one pair, feeding
    another): the same node with another op.

Each pair is then compared: the op (its kind when the two files speak different frameworks), the
attributes (when the op is the same; normalised: tuples and lists alike, numpy scalars as numbers, reader
metadata ``_*`` dropped, an attribute left at its default the same as one not written), the output
shapes (dynamic dimensions match anything; across frameworks in any order, layouts differ), the inputs'
wiring (an input now made by a node paired with another one), and the stored weights: same shape and
values (same), same shape and other values ("weights changed", with the largest absolute and relative
change when both arrays can be read and hold at most :data:`MAX_COMPARE` elements), another shape
("weight shape changed"). Nodes of A left unpaired are *removed*, nodes of B *added*.

Weights-only files (a state dict, safetensors) are compared weight by weight, by name.

The pairing tiers live in :mod:`converters.parity.structdiff_pairing`, the result types with their
summary and JSON in :mod:`converters.parity.structdiff_result`; this module reads the models, compares
each pair and runs the ``struct_diff`` task. Their public names are importable from here too.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .structdiff_pairing import _kind, pair_nodes
from .structdiff_result import STATUSES, Change, DiffEntry, StructDiff

__all__ = ["Change", "DiffEntry", "StructDiff", "diff_models", "diff_graphs", "diff_weights", "struct_diff_task",
           "MAX_COMPARE", "STATUSES"]

MAX_COMPARE = 64 * 1024 * 1024  # weights larger than this (elements) are compared by fingerprint only
_CHUNK = 1 << 22

# attribute values that mean "not set" (ONNX defaults, the common ops); keyed by op type, then name
_DEFAULTS: dict[str, dict[str, Any]] = {
    "Conv": {"group": 1, "auto_pad": "NOTSET"},
    "ConvTranspose": {"group": 1, "auto_pad": "NOTSET"},
    "MaxPool": {"auto_pad": "NOTSET", "ceil_mode": 0, "storage_order": 0},
    "AveragePool": {"auto_pad": "NOTSET", "ceil_mode": 0, "count_include_pad": 0},
    "Gemm": {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0},
    "Softmax": {"axis": -1}, "LogSoftmax": {"axis": -1}, "Hardmax": {"axis": -1},
    "Flatten": {"axis": 1}, "Concat": {}, "Gather": {"axis": 0},
    "LeakyRelu": {"alpha": 0.01}, "Elu": {"alpha": 1.0}, "HardSigmoid": {"alpha": 0.2, "beta": 0.5},
    "ReduceMean": {"keepdims": 1, "noop_with_empty_axes": 0}, "ReduceSum": {"keepdims": 1, "noop_with_empty_axes": 0},
    "ReduceMax": {"keepdims": 1, "noop_with_empty_axes": 0}, "ReduceMin": {"keepdims": 1, "noop_with_empty_axes": 0},
    "BatchNormalization": {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0},
    "LayerNormalization": {"axis": -1, "epsilon": 1e-5, "stash_type": 1},
    "InstanceNormalization": {"epsilon": 1e-5},
    "Gelu": {"approximate": "none"}, "Split": {"axis": 0}, "Squeeze": {}, "Unsqueeze": {},
}
_ONES = ("strides", "dilations", "dilation_rate")   # all ones: the default
_ZEROS = ("pads", "output_padding")                 # all zeros: the default


# -- reading ---------------------------------------------------------------------------------------------
def diff_models(path_a: str, path_b: str, *, trust: bool = False, progress=None) -> StructDiff:
    """Read both models (the format readers; no model code runs) and diff them; see the module docs."""
    from ..errors import TensorbridgeError
    from ..formats import load

    say = progress or (lambda *_a: None)
    say(0.0, "reading A")
    ma = load(path_a, trust=trust)
    say(0.2, "reading B")
    mb = load(path_b, trust=trust)
    ga, gb = _main_graph(ma), _main_graph(mb)
    if (ga is None) != (gb is None):
        which = "A" if ga is None else "B"
        raise TensorbridgeError(f"model {which} has weights only and the other a graph: attach an architecture "
                                f"to {which} first, or diff two weights-only files")
    if ga is None:
        out = diff_weights([w.tensor for w in ma.weights or []], [w.tensor for w in mb.weights or []],
                           [w.name for w in ma.weights or []], [w.name for w in mb.weights or []])
    else:
        out = diff_graphs(ga, gb, strict=ma.format == mb.format or None, progress=progress)
    out.a, out.b, out.format_a, out.format_b = str(path_a), str(path_b), ma.format, mb.format
    if ma.format != mb.format:
        out.notes.append(f"the two files are of different formats ({ma.format}, {mb.format}): ops are compared "
                         f"by kind, attributes only where the op is spelled alike, shapes in any order")
    return out


def _main_graph(model):
    g = model.graph
    if g is None and model.signatures:
        g = next(iter(model.signatures.values()))
    return g


# -- comparing -------------------------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    """An attribute value in one spelling: tuples as lists, numpy scalars and arrays as Python values."""
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 4096 else ("array", v.dtype.str, list(v.shape))
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if hasattr(v, "to_dict") and not isinstance(v, type):
        return _plain(v.to_dict())
    return v


def _raw_attrs(attrs: dict) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in (attrs or {}).items() if not str(k).startswith("_")}


def _attrs(op: str, attrs: dict) -> dict[str, Any]:
    """The attributes that differ from the op's defaults (the reader's own ``_*`` metadata dropped)."""
    out = {}
    defaults = _DEFAULTS.get(op, {})
    for k, v in (attrs or {}).items():
        if str(k).startswith("_"):
            continue  # the reader's own metadata (the exporter's provenance), not the op's
        p = _plain(v)
        if k in defaults and _equal(p, defaults[k]):
            continue
        if k in _ONES and isinstance(p, list) and p and all(x == 1 for x in p):
            continue
        if k in _ZEROS and isinstance(p, list) and p and all(x == 0 for x in p):
            continue
        out[str(k)] = p
    return out


def _equal(x: Any, y: Any) -> bool:
    if isinstance(x, bool) or isinstance(y, bool):
        return x == y
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return x == y or (math.isfinite(x) and math.isfinite(y) and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12))
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_equal(a, b) for a, b in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_equal(x[k], y[k]) for k in x)
    return x == y


def _show(v: Any) -> str:
    s = "(default)" if v is _UNSET else repr(v)
    return s if len(s) <= 80 else s[:77] + "…"


_UNSET = object()


def _shape_of(index, value: str):
    v = index.graph.values.get(value) if value else None
    return getattr(v, "shape", None)


def _shapes_differ(sa, sb, strict: bool) -> bool:
    if sa is None or sb is None:
        return False  # unknown on one side: nothing to say
    if len(sa) != len(sb):
        return True
    if strict:
        return any(isinstance(x, int) and isinstance(y, int) and x != y for x, y in zip(sa, sb))
    ia_, ib_ = [x for x in sa if isinstance(x, int)], [y for y in sb if isinstance(y, int)]
    if len(ia_) != len(ib_):
        return False  # dynamic dimensions in other places: cannot tell
    return sorted(ia_) != sorted(ib_)


def _shape_text(s) -> str:
    from ..graph import shape_str

    return shape_str(None if s is None else tuple(s))


class _Weights:
    """Compares stored weights, each pair once, one array at a time in memory."""

    def __init__(self, notes: list[str]):
        self.notes = notes
        self.memo: dict[tuple[str, str], list[Change]] = {}
        self.unread = 0

    def compare(self, what: str, ta, tb, strict: bool) -> list[Change]:
        key = (ta.name, tb.name)
        if key not in self.memo:
            self.memo[key] = self._compare(what, ta, tb, strict)
        return self.memo[key]

    def _compare(self, what: str, ta, tb, strict: bool) -> list[Change]:
        from .structure import _same, fingerprint

        sa, sb = ta.shape, tb.shape
        out: list[Change] = []
        if ta.dtype and tb.dtype and ta.dtype != tb.dtype:
            out.append(Change("weight_dtype", what, str(ta.dtype), str(tb.dtype)))
        same_shape = sa is not None and sb is not None and list(sa) == list(sb)
        permuted = (sa is not None and sb is not None and not same_shape and ta.numel == tb.numel and
                    sorted(map(str, sa)) == sorted(map(str, sb)))
        if not same_shape and not (permuted and not strict):
            if sa is not None and sb is not None:
                return out + [Change("weight_shape", what, _shape_text(sa), _shape_text(sb))]
            return out
        cached = (ta._cache is not None, tb._cache is not None)
        try:
            try:
                a, b = ta.numpy(), tb.numpy()
            except Exception:  # not stored, or needs trust: nothing to say about the values
                self.unread += 1
                return out
            a, b = np.asarray(a), np.asarray(b)
            if same_shape and a.shape == b.shape and a.size <= MAX_COMPARE:
                if a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"):
                    return out
                mx, ref = _max_abs(a, b)
                if out and mx <= 2e-3 * max(ref, 1e-12):
                    return out  # a float16 copy: the dtype changed, the values did not beyond its rounding
                if mx == 0.0:
                    return out
                return out + [Change("weights", what, _shape_text(sa), _shape_text(sb), mx, mx / max(ref, 1e-30))]
            fa, fb = fingerprint(a), fingerprint(b)
            if fa is not None and fb is not None:
                return out if _same(fa, fb) else out + [Change("weights", what, _shape_text(sa), _shape_text(sb))]
            if a.size == b.size and a.size <= MAX_COMPARE and np.array_equal(np.sort(a.ravel()), np.sort(b.ravel())):
                return out
            return out + [Change("weights", what, _shape_text(sa), _shape_text(sb))]
        finally:
            if not cached[0]:
                ta._cache = None
            if not cached[1]:
                tb._cache = None


def _max_abs(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(largest |a − b|, largest |a|), in float64, a few million elements at a time."""
    fa, fb = a.ravel(), b.ravel()
    mx = ref = 0.0
    for s in range(0, fa.size, _CHUNK):
        x = fa[s:s + _CHUNK].astype(np.float64)
        y = fb[s:s + _CHUNK].astype(np.float64)
        d = np.abs(x - y)
        if d.size:
            mx = max(mx, float(np.nanmax(d)) if not np.isnan(d).all() else 0.0)
            ref = max(ref, float(np.nanmax(np.abs(x))) if not np.isnan(x).all() else 0.0)
    return mx, ref


def _weights_of(index, i: int) -> list[tuple[int, Any]]:
    g = index.graph
    return [(k, g.initializers[x]) for k, x in enumerate(index.nodes[i].inputs) if x and x in g.initializers]


def _compare(ia, i: int, ib, j: int, pairs: dict[int, tuple[int, str]], removed: set[int], added: set[int],
             strict: bool, weights: _Weights) -> list[Change]:
    na, nb = ia.nodes[i], ib.nodes[j]
    out: list[Change] = []
    same_op = na.op_type == nb.op_type
    if not same_op and (strict or _kind(na.op_type) != _kind(nb.op_type)):
        out.append(Change("op", "op", na.op_type, nb.op_type))
    if same_op:
        aa, ab = _attrs(na.op_type, na.attrs), _attrs(nb.op_type, nb.attrs)
        ra, rb = _raw_attrs(na.attrs), _raw_attrs(nb.attrs)
        for k in sorted(set(aa) | set(ab)):
            va, vb = aa.get(k, _UNSET), ab.get(k, _UNSET)
            if va is _UNSET or vb is _UNSET or not _equal(va, vb):
                # shown as written; "(default)" where the file leaves it out
                out.append(Change("attr", k, _show(ra.get(k, _UNSET)), _show(rb.get(k, _UNSET))))
    # an output shape that changed while the data coming in kept its shapes is the node's own change; one
    # that follows from an input's new shape is upstream's (listed there)
    own = not any(_shapes_differ(_shape_of(ia, xa), _shape_of(ib, xb), strict)
                  for xa, xb in zip(na.inputs, nb.inputs)
                  if xa and xb and xa not in ia.graph.initializers and xb not in ib.graph.initializers)
    for k, (oa, ob) in enumerate(zip(na.outputs, nb.outputs)):
        sa, sb = _shape_of(ia, oa), _shape_of(ib, ob)
        if own and _shapes_differ(sa, sb, strict):
            out.append(Change("shape", str(k), _shape_text(sa), _shape_text(sb)))
    # wiring: an input now made by a node paired with another one than A's producer
    back = {jj: ii for ii, (jj, _m) in pairs.items()}
    for k, (xa, xb) in enumerate(zip(na.inputs, nb.inputs)):
        if not xa or not xb or xa in ia.graph.initializers or xb in ib.graph.initializers:
            continue
        pa, pb = ia.producer.get(xa), ib.producer.get(xb)
        if pa in removed or pb in added:
            continue  # the node added or removed there says it
        if pa is None and pb is None:
            if xa != xb and strict and xa in ia.inputs and xb in ib.inputs:
                out.append(Change("inputs", str(k), xa, xb))
            continue
        if pa is None or pb is None or back.get(pb) != pa:
            out.append(Change("inputs", str(k), ia.nodes[pa].name if pa is not None else xa,
                              ib.nodes[pb].name if pb is not None else xb))
    wa, wb = _weights_of(ia, i), _weights_of(ib, j)
    if not strict:
        # across frameworks the small constants differ (axes, shapes, a bias folded elsewhere): weights only
        from .structure import MIN_WEIGHT

        wa = [(k, t) for k, t in wa if t.numel >= MIN_WEIGHT]
        wb = [(k, t) for k, t in wb if t.numel >= MIN_WEIGHT]
    elif len(wa) != len(wb):
        out.append(Change("weight_count", "weights", str(len(wa)), str(len(wb))))
    for (_ka, ta), (_kb, tb) in zip(wa, wb):
        what = ta.name if ta.name == tb.name or not tb.name else f"{ta.name} ↔ {tb.name}"
        out += weights.compare(what, ta, tb, strict)
    return out


def diff_graphs(ga, gb, *, strict: bool | None = None, progress=None) -> StructDiff:
    """Diff two neutral graphs (see the module docs). ``strict``: both speak one framework's ops (op types,
    attributes and shapes compared as they are); None guesses it from the op types they share."""
    from .plan import _Index

    ia, ib = _Index(ga), _Index(gb)
    out = StructDiff()
    if strict is None:
        ops_a, ops_b = {n.op_type for n in ia.nodes}, {n.op_type for n in ib.nodes}
        strict = bool(ops_a) and len(ops_a & ops_b) >= 0.5 * min(len(ops_a), len(ops_b) or 1)
    say = progress or (lambda *_a: None)
    say(0.4, f"pairing {len(ia.nodes):,} and {len(ib.nodes):,} nodes")
    pairs = pair_nodes(ia, ib, out.notes)
    back = {j: i for i, (j, _m) in pairs.items()}
    removed = {i for i in range(len(ia.nodes)) if i not in pairs}
    added = {j for j in range(len(ib.nodes)) if j not in back}
    say(0.7, f"comparing {len(pairs):,} pairs")
    weights = _Weights(out.notes)
    keyed: list[tuple[tuple, DiffEntry]] = []
    for i, n in enumerate(ia.nodes):
        if i in pairs:
            j, method = pairs[i]
            m = ib.nodes[j]
            changes = _compare(ia, i, ib, j, pairs, removed, added, bool(strict), weights)
            e = DiffEntry("changed" if changes else "same", n.name, m.name, n.op_type, m.op_type, i, j,
                          n.outputs[0] if n.outputs else "", m.outputs[0] if m.outputs else "", method,
                          changes=changes)
        else:
            e = DiffEntry("removed", n.name, "", n.op_type, "", i, -1, n.outputs[0] if n.outputs else "")
        keyed.append(((i, 0, 0), e))
    last_a = -1
    for j, m in enumerate(ib.nodes):
        if j in back:
            last_a = back[j]
            continue
        e = DiffEntry("added", "", m.name, "", m.op_type, -1, j, "", m.outputs[0] if m.outputs else "")
        keyed.append(((last_a, 1, j), e))
    keyed.sort(key=lambda t: t[0])
    out.entries = [e for _k, e in keyed]
    if weights.unread:
        out.notes.append(f"{weights.unread} weight pair(s) could not be read; their values were not compared")
    if any(n.subgraphs for n in ia.nodes) or any(n.subgraphs for n in ib.nodes):
        out.notes.append("the bodies of control-flow ops (If, Loop) are not compared node by node")
    say(1.0, "done")
    return out


def diff_weights(ta: list, tb: list, names_a: list[str], names_b: list[str]) -> StructDiff:
    """Two weights-only files, weight by weight by name."""
    out = StructDiff()
    weights = _Weights(out.notes)
    by_b = {n: (k, t) for k, (n, t) in enumerate(zip(names_b, tb))}
    seen: set[str] = set()
    for k, (n, t) in enumerate(zip(names_a, ta)):
        if n in by_b:
            seen.add(n)
            kb, u = by_b[n]
            changes = weights.compare(n, t, u, True)
            out.entries.append(DiffEntry("changed" if changes else "same", n, n, "weight", "weight", k, kb, n, n,
                                         "name", "weight", changes))
        else:
            out.entries.append(DiffEntry("removed", n, "", "weight", "", k, -1, n, "", "", "weight"))
    for kb, (n, _u) in enumerate(zip(names_b, tb)):
        if n not in seen:
            out.entries.append(DiffEntry("added", "", n, "", "weight", -1, kb, "", n, "", "weight"))
    return out


def struct_diff_task(params: dict, ctx) -> dict:
    """Worker task "struct_diff": params ``a``, ``b`` (absolute paths), ``trust``; result: the
    :class:`StructDiff` as a dict. Both files are read in a worker, like every other read of a user's file."""
    res = diff_models(params["a"], params["b"], trust=bool(params.get("trust")), progress=ctx.progress)
    d = res.to_dict()
    c = res.counts
    ctx.progress(1.0, f"{c['changed']} changed, {c['added']} added, {c['removed']} removed")
    return d
