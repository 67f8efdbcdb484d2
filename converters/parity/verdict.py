"""Per-layer verdicts: which layers are wrong themselves and which only inherit error from upstream.

Each compared pair of a :class:`~converters.parity.plan.LayerPlan` gets a status:

``ok``
    within tolerance (the comparison's own, with the reference's rounding allowance).
``source``
    outside tolerance while every paired layer feeding it is within: the error starts here.
``inherited``
    outside tolerance, and so is a paired layer upstream: the error arrives from there.
``layout``
    a layout-only op (reshape, transpose, cast …) outside tolerance while its inputs are within. Such an
    op does no arithmetic, so it is never called a source; a wrong axis or permutation shows here.
``missing``
    the pair was planned but one side could not capture the tensor, or the two tensors have shapes that
    no layout change relates (then they were not compared; ``reason`` says so).

The *first divergence* is the earliest source in A's topological order; if there is none, the earliest
``layout`` layer.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .plan import LayerPlan

__all__ = ["LayerResult", "judge_layers", "STATUSES"]

STATUSES = ("ok", "source", "inherited", "layout", "missing")


@dataclass
class LayerResult:
    """One layer's comparison: names in A and B, how they were paired, where in A, the error figures
    (absolute, in the tensor's units), the status, and the pairs upstream that were compared."""

    index: int
    a: str
    b: str
    method: str
    status: str
    node: str = ""
    op: str = ""
    node_b: str = ""
    op_b: str = ""
    scope: str = ""
    depth: int = -1
    shape: list[int] = field(default_factory=list)
    perm: list[int] | None = None
    max_abs: float | None = None
    mean_abs: float | None = None
    max_rel: float | None = None
    cosine: float | None = None
    noise: float | None = None
    reason: str = ""
    upstream: list[int] = field(default_factory=list)
    # B's layer re-run alone on A's tensors (where the runtime allows): the error it makes by itself
    local_max_abs: float | None = None
    local_passed: bool | None = None
    aliases: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "LayerResult":
        return LayerResult(**d)


def judge_layers(plan: LayerPlan, diffs: dict[tuple[str, str], Any]) -> tuple[list[LayerResult], LayerResult | None]:
    """Statuses for every planned pair, given ``diffs`` {(a, b): OutputDiff}; and the first divergence."""
    out: list[LayerResult] = []
    for k, p in enumerate(plan.pairs):
        d = diffs.get((p.a, p.b))
        r = LayerResult(index=k, a=p.a, b=p.b, method=p.method, status="missing", node=p.node, op=p.op,
                        node_b=p.node_b, op_b=p.op_b, scope=p.scope, depth=p.depth, perm=p.perm,
                        upstream=list(p.upstream), aliases=list(p.aliases))
        if d is not None:
            r.shape = list(d.shape)
            r.perm = d.perm_b if d.perm_b else p.perm
            r.max_abs, r.mean_abs, r.max_rel, r.cosine = d.max_abs, d.mean_abs, d.max_rel, d.cosine
            r.noise = d.noise
            r.status = "ok" if d.passed else "fail"
            r.reason = "; ".join(d.reasons)
            if not d.passed and d.reasons and all(x.startswith("shapes differ") for x in d.reasons):
                r.status = "missing"  # two tensors that cannot be laid over each other were not compared
        out.append(r)
    # in A's order (pairs are sorted by depth; unplaced ones come last and are judged on their own)
    bad = {"source", "inherited", "layout", "fail"}
    for r in out:
        if r.status != "fail":
            continue
        ups = _compared_upstream(r.index, out)
        if any(out[u].status in bad for u in ups):
            r.status = "inherited"
        elif plan.pairs[r.index].layout_only:
            r.status = "layout"
        else:
            r.status = "source"
    placed = [r for r in out if r.depth >= 0] or out
    first = next((r for r in placed if r.status == "source"), None) or \
        next((r for r in placed if r.status == "layout"), None)
    return out, first


def _compared_upstream(k: int, results: list[LayerResult]) -> list[int]:
    """The nearest upstream pairs that were compared, looking through pairs that could not be."""
    found, todo, seen = [], list(results[k].upstream), set()
    while todo:
        u = todo.pop()
        if u in seen:
            continue
        seen.add(u)
        if results[u].status == "missing":
            todo.extend(results[u].upstream)
        else:
            found.append(u)
    return found
