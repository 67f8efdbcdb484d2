"""Which layer of B is which layer of A, and which layers feed which: the plan of a per-layer comparison.

Correspondence, in order of trust (each pair records the method that found it):

``map``
    the converter map Tensorbridge wrote beside a converted model (chained across hops), read by
    :mod:`converters.tbmap`; it knows layout changes.
``user``
    pairs the user gives (``compare --capture A=B`` or ``--pairs FILE`` with ``--per-layer``), trusted
    before anything else: they add a pair or correct one.
``name``
    the exporters' own naming: a tensor of the same name produced by an op in both graphs. torch.onnx's
    dynamo exporter names each ONNX value after its FX node (``conv2d``, ``relu_1``, ``linear``), copies
    of one ONNX or TFLite file keep their tensor names, onnx2torch keeps the ONNX node names. A pair is
    kept only where both shapes, when known, have the same sizes (in some order), and never for a
    layout-only op (exporters renumber those as they decompose).

``weights`` and ``structure``
    for what is left (files converted elsewhere): layers whose weights hold the same values, then the
    runs between them aligned by op kind and output size; see :mod:`converters.parity.structure`.

Pairs are then placed on A's graph: each pair's A tensor is produced by one node of A, in A's
topological order (its ``depth``), and its *upstream* pairs are the nearest paired nodes above it. That
is what :mod:`converters.parity.verdict` needs to tell a layer that makes an error (*source*) from one
that inherits it. A's tensors that no method paired are listed, never dropped.

No framework is imported here beyond the format readers (which run no model code).
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["LayerPair", "LayerPlan", "plan_layers", "plan_from_graphs", "LAYOUT_OPS", "is_layout_op"]

# Ops that only move, view or retype data: a mismatch there comes from upstream or from a layout the
# comparison could not undo, never from arithmetic the op did. (Names of ONNX, aten, TF and TFLite ops.)
LAYOUT_OPS = frozenset(s.lower() for s in (
    "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Cast", "CastLike", "Identity", "Expand",
    "view", "reshape", "permute", "transpose", "t", "flatten", "unflatten", "squeeze", "unsqueeze",
    "contiguous", "clone", "alias", "detach", "_to_copy", "to", "expand", "_unsafe_view", "view_copy",
    "dropout", "Dropout", "getitem", "TRANSPOSE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CAST",
    "ExpandDims", "ConjugateTranspose", "StopGradient", "Snapshot"))


def is_layout_op(op: str) -> bool:
    """Whether ``op`` (any framework's spelling, with or without a domain or overload) only moves data."""
    base = op.rsplit("::", 1)[-1].rsplit(".", 1)[0] if "::" in op else op
    base = base.split(".")[-2] if base.count(".") >= 2 and base.startswith(("aten.", "torch.")) else base
    return base.lower() in LAYOUT_OPS or base.lower().rstrip("_") in LAYOUT_OPS


@dataclass
class LayerPair:
    """One layer of A and its counterpart in B: the tensors to capture (``a``, ``b``), how the pair was
    found (``method``), B's layout change when known (``perm``), where it sits in A (``node``, ``op``,
    ``scope``, ``depth`` = position in A's topological order, -1 when A's graph does not say) and the
    pairs feeding it (``upstream``, indices into the plan's pairs)."""

    a: str
    b: str
    method: str
    perm: list[int] | None = None
    node: str = ""
    op: str = ""
    scope: str = ""
    depth: int = -1
    upstream: list[int] = field(default_factory=list)
    layout_only: bool = False
    node_b: str = ""
    op_b: str = ""
    aliases: list[str] = field(default_factory=list)  # other names of A for the same tensor (enclosing modules)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerPlan:
    """The pairs (in A's topological order), what stayed unmatched on each side, and notes."""

    pairs: list[LayerPair] = field(default_factory=list)
    unmatched_a: list[str] = field(default_factory=list)
    unmatched_b: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def methods(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.pairs:
            out[p.method] = out.get(p.method, 0) + 1
        return out

    def captures(self) -> list[tuple[str, str, tuple[int, ...] | None]]:
        return [(p.a, p.b, tuple(p.perm) if p.perm else None) for p in self.pairs]

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": [p.to_dict() for p in self.pairs], "unmatched_a": list(self.unmatched_a),
                "unmatched_b": list(self.unmatched_b), "notes": list(self.notes), "methods": self.methods}

    @staticmethod
    def from_dict(d: dict) -> "LayerPlan":
        return LayerPlan([LayerPair(**p) for p in d.get("pairs", [])], list(d.get("unmatched_a", [])),
                         list(d.get("unmatched_b", [])), list(d.get("notes", [])))


class _Index:
    """A graph's nodes in order, who produces each value, and the values that are data, not weights."""

    def __init__(self, graph):
        self.graph = graph
        self.nodes = list(graph.nodes) if graph is not None else []
        self.producer: dict[str, int] = {}
        for i, n in enumerate(self.nodes):
            for o in n.outputs:
                if o:
                    self.producer.setdefault(o, i)
        self.by_name = {n.name: i for i, n in enumerate(self.nodes)}
        consts = set(graph.initializers) if graph is not None else set()
        self.inputs = set(graph.inputs) if graph is not None else set()
        self.consts = consts
        self.last_in_scope: dict[str, int] = {}
        for i, n in enumerate(self.nodes):
            s = n.scope
            while s:
                self.last_in_scope[s] = i  # later nodes overwrite: the scope's last node
                # readers join scope levels with "/" (``encoder/layers.0/linear1``); torch names the same
                # module ``encoder.layers.0.linear1``
                self.last_in_scope[s.replace("/", ".")] = i
                cut = s.rfind("/")
                s = s[:cut] if cut > 0 else ""

    def consumers_of(self, value: str) -> list[int]:
        c = getattr(self, "_consumers", None)
        if c is None:
            c = self._consumers = {}
            for i, n in enumerate(self.nodes):
                for x in n.inputs:
                    if x:
                        c.setdefault(x, []).append(i)
        return c.get(value, [])

    def node_of(self, name: str) -> int | None:
        """The node that makes tensor ``name``: its producer, a node of that name, a scope's last node, or
        the producer of the one value whose name ends in ``name`` after one or two leading path levels."""
        for table in (self.producer, self.by_name, self.last_in_scope):
            if name in table:
                return table[name]
        return self.tails.get(name)

    @property
    def tails(self) -> dict[str, int]:
        """Value names without their first one or two path levels -> producer, where that is unique. A
        SavedModel's signature wraps the model in call ops (``StatefulPartitionedCall_1/…``) that the
        graph TensorFlow freezes for running and converting does not have (``StatefulPartitionedCall/…``
        inlined once): tf2onnx and the runner name the same tensor without the outer level."""
        t = getattr(self, "_tails", None)
        if t is None:
            t, dup = {}, set()
            for v, i in self.producer.items():
                rest = v
                for _ in range(2):
                    cut = rest.find("/")
                    if cut < 0:
                        break
                    rest = rest[cut + 1:]
                    if rest in t and t[rest] != i:
                        dup.add(rest)
                    t.setdefault(rest, i)
            for d in dup:
                t.pop(d, None)
            self._tails = t
        return t

    def shape(self, value: str) -> list[int] | None:
        v = self.graph.values.get(value) if self.graph is not None else None
        shape = getattr(v, "shape", None)
        if shape is None or any(not isinstance(d, int) for d in shape):
            return None
        return list(shape)

    def is_data(self, i: int) -> bool:
        """A node computing on data (not a constant, not a weight read)."""
        n = self.nodes[i]
        if n.op_type in ("Constant", "constant", "get_attr", "placeholder", "output"):
            return False
        return any(x in self.producer or x in self.inputs for x in n.inputs if x)


def _load_graph(path: str, trust: bool):
    from ..formats import load

    model = load(path, trust=trust)
    g = model.graph
    if g is None and model.signatures:
        g = next(iter(model.signatures.values()))
    return g


def plan_layers(path_a: str, path_b: str, *, trust: bool = False, sidecar=None,
                user_pairs: list | None = None) -> LayerPlan:
    """Read both models' graphs (no model code runs) and pair their layers; see the module docs."""
    ga, gb = _load_graph(path_a, trust), _load_graph(path_b, trust)
    return plan_from_graphs(ga, gb, sidecar=sidecar, user_pairs=user_pairs)


def plan_from_graphs(ga, gb, *, sidecar=None, structural: bool = True, user_pairs: list | None = None) -> LayerPlan:
    ia, ib = _Index(ga), _Index(gb)
    plan = LayerPlan()
    if ga is None or gb is None:
        plan.notes.append("one model has no graph (weights only): no layers to pair")
        return plan
    graph_io_a = set(ga.inputs) | set(ga.outputs)
    seen_a: set[str] = set()
    raw: list[LayerPair] = []
    # 0. what the user says: (A tensor, B tensor[, B's layout as a permutation]) adds a pair or corrects one
    user_b: set[str] = set()
    for u in user_pairs or []:
        a, b = str(u[0]), str(u[1])
        perm = list(u[2]) if len(u) > 2 and u[2] else None
        if a in seen_a:
            continue
        if ia.node_of(a) is None:
            plan.notes.append(f"the pair given for '{a}': A has no such tensor; compared, but not placed")
        seen_a.add(a)
        user_b.add(b)
        raw.append(LayerPair(a, b, "user", perm))
    # 1. the converter's own map
    if sidecar is not None and sidecar:
        # a model output is paired exactly by the map's outputs section; an inner-tensor entry for the same
        # name can point into a fused op's pieces (TFLite's LayerNormalization ``…/batchnorm/sub``)
        exact = {e.source: (e.target, e.layout) for e in sidecar.outputs}
        for src, dst, perm in sidecar.tensor_pairs():
            if src in seen_a or src in ga.inputs or dst in user_b:
                continue
            if src in exact:
                dst, perm = exact[src]
            seen_a.add(src)
            raw.append(LayerPair(src, dst, "map", list(perm) if perm else None))
    # 2. the exporters' names: one tensor name, produced by an op on both sides
    taken_b = {p.b for p in raw}
    for i, n in enumerate(ia.nodes):
        if not ia.is_data(i):
            continue
        for v in n.outputs:
            if not v or v in seen_a or v in ga.inputs:
                continue
            vb = v if v in ib.producer else _tail_in(v, ib)
            if vb is None or vb in taken_b:
                continue
            j = ib.producer[vb]
            if not ib.is_data(j) or is_layout_op(n.op_type):
                # a reshape or transpose does no arithmetic to get wrong, and exporters renumber them as
                # they decompose (``view_3`` on one side is not ``view_3`` on the other): not paired by name
                continue
            sa, sb = ia.shape(v), ib.shape(vb)
            if sa is not None and sb is not None and sorted(sa) != sorted(sb):
                continue  # not the same tensor (a layout change keeps the sizes, permuted)
            seen_a.add(v)
            taken_b.add(vb)
            raw.append(LayerPair(v, vb, "name"))
    # 3. the map's model outputs, where no name paired them: the last layer is a layer too (a fault
    # there shows nowhere else)
    if sidecar is not None and sidecar:
        for e in sidecar.outputs:
            if e.source in seen_a or e.target in taken_b or ia.node_of(e.source) is None:
                continue
            seen_a.add(e.source)
            taken_b.add(e.target)
            raw.append(LayerPair(e.source, e.target, "map", list(e.layout) if e.layout else None))
    # a map entry for a tensor B's graph does not have (folded away by a later rewrite) pairs nothing
    if gb.nodes:
        gone = [p for p in raw if p.method == "map" and ib.node_of(p.b) is None and p.b not in gb.outputs]
        if gone:
            drop = {id(p) for p in gone}
            raw = [p for p in raw if id(p) not in drop]
            seen_a -= {p.a for p in gone}
            taken_b -= {p.b for p in gone}
            plan.notes.append(f"{len(gone)} converter-map entr{'y' if len(gone) == 1 else 'ies'} name tensors B no "
                              f"longer has (e.g. '{gone[0].b}'); not paired by the map")
    # 4. structure, for what is left: weights of the same values, then the runs between them aligned
    if structural:
        from .structure import pair_by_structure

        fixed = [(ia.node_of(p.a), ib.node_of(p.b)) for p in raw]
        found = pair_by_structure(ia, ib, [(i, j) for i, j in fixed if i is not None and j is not None],
                                  plan.notes)
        for i, j, method in found:
            va, vb = ia.nodes[i].outputs[0], ib.nodes[j].outputs[0]
            if va in seen_a or va in ga.inputs or vb in taken_b:
                continue
            seen_a.add(va)
            taken_b.add(vb)
            raw.append(LayerPair(va, vb, method))
    # a tensor name B's converter gave to the first piece of an op it wrote as several (tf2onnx: Rsqrt as
    # Sqrt ``…/Rsqrt:0`` then Reciprocal ``…/Rsqrt__17:0``): A's tensor is the last piece's
    for p in raw:
        if p.method in ("map", "name"):
            p.b = _decomposed_end(ib, p.b)
    # place the pairs on A's graph
    for p in raw:
        i = ia.node_of(p.a)
        if i is not None:
            node = ia.nodes[i]
            p.node, p.op, p.scope, p.depth = node.name, node.op_type, node.scope, i
            p.layout_only = is_layout_op(node.op_type)
        j = ib.node_of(p.b)
        if j is not None:
            p.node_b, p.op_b = ib.nodes[j].name, ib.nodes[j].op_type
    # One tensor, one layer: a module and the modules enclosing it (``intermediate`` and
    # ``intermediate.intermediate_act_fn``) can name the same output; the most specific name stands for it
    by_tensor: dict[tuple[int, str], LayerPair] = {}
    for p in sorted((p for p in raw if p.depth >= 0), key=lambda p: -len(p.a)):
        key = (p.depth, p.b)
        if key in by_tensor:
            by_tensor[key].aliases.append(p.a)
        else:
            by_tensor[key] = p
    raw = [p for p in raw if p.depth < 0 or by_tensor.get((p.depth, p.b)) is p]
    placed = sorted((p for p in raw if p.depth >= 0), key=lambda p: p.depth)
    unplaced = [p for p in raw if p.depth < 0]
    plan.pairs = placed + unplaced
    if unplaced:
        plan.notes.append(f"{len(unplaced)} pair(s) could not be placed on A's graph (e.g. '{unplaced[0].a}'); "
                          f"they are compared but not ranked")
    _link_upstream(plan.pairs, ia)
    paired_a = {p.a for p in plan.pairs} | {p.node for p in plan.pairs}
    plan.unmatched_a = [n.outputs[0] for i, n in enumerate(ia.nodes)
                        if ia.is_data(i) and n.outputs and n.outputs[0] not in paired_a and n.name not in paired_a
                        and n.outputs[0] not in graph_io_a and not is_layout_op(n.op_type)]
    paired_b = {p.b for p in plan.pairs} | {p.node_b for p in plan.pairs}
    plan.unmatched_b = [n.outputs[0] for j, n in enumerate(ib.nodes)
                        if ib.is_data(j) and n.outputs and n.outputs[0] not in paired_b and n.name not in paired_b
                        and not is_layout_op(n.op_type)]
    return plan


_PIECE = re.compile(r"__\d+(:\d+)?$")


def _decomposed_end(ib: _Index, b: str) -> str:
    """``b``, or the last of the pieces B's converter made of the op ``b`` names: values named after it with
    a ``__N`` suffix, each made from the one before, where the chain leaves the family."""
    stem = b.rsplit(":", 1)[0] if ":" in b else b
    cur = b
    for _ in range(8):
        nxt = None
        for k in ib.consumers_of(cur):
            for o in ib.nodes[k].outputs:
                if o and o.startswith(stem + "__") and _PIECE.search(o):
                    nxt = o
                    break
            if nxt:
                break
        if nxt is None:
            return cur
        cur = nxt
    return cur


def _tail_in(v: str, ib: _Index) -> str | None:
    """B's value named as ``v`` without its first one or two path levels (see :attr:`_Index.tails`)."""
    rest = v
    for _ in range(2):
        cut = rest.find("/")
        if cut < 0:
            return None
        rest = rest[cut + 1:]
        if rest in ib.producer:
            return rest
    return None


def _link_upstream(pairs: list[LayerPair], ia: _Index) -> None:
    """Each pair's nearest paired ancestors in A's graph (a breadth-first walk up that stops at them)."""
    at_node: dict[int, int] = {}
    for k, p in enumerate(pairs):
        if p.depth >= 0:
            at_node.setdefault(p.depth, k)
    for k, p in enumerate(pairs):
        if p.depth < 0:
            continue
        found: list[int] = []
        seen: set[int] = {p.depth}
        todo = deque([p.depth])
        while todo:
            i = todo.popleft()
            for x in ia.nodes[i].inputs:
                j = ia.producer.get(x)
                if j is None or j in seen:
                    continue
                seen.add(j)
                if j in at_node and at_node[j] != k:
                    found.append(at_node[j])
                else:
                    todo.append(j)
            if len(seen) > 20000:  # a pathological graph: what was found is enough to rank
                break
        p.upstream = sorted(set(found))


def plan_task(params: dict, ctx) -> dict:
    """Worker task "plan_layers": params ``a``, ``b`` (absolute paths), ``trust``, ``map`` (a correspondence
    map document, or None); result: the :class:`LayerPlan` as a dict. Reading the two graphs happens in a
    worker, like every other read of a user's file."""
    from ..tbmap import TensorMap

    ctx.progress(0.0, "reading both graphs")
    sidecar = TensorMap.from_dict(params["map"]) if params.get("map") else None
    plan = plan_layers(params["a"], params["b"], trust=bool(params.get("trust")), sidecar=sidecar,
                       user_pairs=params.get("user_pairs"))
    ctx.progress(1.0, f"{len(plan.pairs)} layer pairs")
    return plan.to_dict()
