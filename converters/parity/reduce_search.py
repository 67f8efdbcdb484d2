"""The reduction's cut search and its "fails the same way" rule: pure functions, no model, no file.

:func:`search_cut` picks the tensors to feed for the smallest cut that still fails, given a ``fails``
predicate (the ``reduce_cut`` worker task runs it with B loaded once; case 2 of
:func:`converters.parity.reduce.reduce_failure` runs it with one conversion a step). :func:`same_way`
is the predicate's rule on one cut's verdict. Both are re-exported by :mod:`converters.parity.reduce`.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

__all__ = ["SAME_ORDER", "same_way", "search_cut"]

SAME_ORDER = 0.1  # a cut keeps at least this fraction of the layer's max abs error in the full comparison


def same_way(verdict: dict | None, layer_max_abs: float | None, order: float = SAME_ORDER) -> bool:
    """Whether a cut's verdict (see converters.parity.tasks.judge) is the failure of the full comparison:
    it fails the same tolerance, with shapes that agree, and its max abs error is at least ``order`` times
    the layer's there."""
    if not verdict or verdict.get("passed") or verdict.get("shape_differs"):
        return False
    if layer_max_abs is None or not math.isfinite(float(layer_max_abs)):
        return True
    return float(verdict.get("max_abs") or 0.0) >= order * float(layer_max_abs)


def search_cut(cands: Sequence[str], fails: Callable[[list[str]], bool], *, max_checks: int = 200,
               log: Callable[[dict], None] | None = None) -> tuple[list[str] | None, str]:
    """The tensors to feed (a subset of ``cands``, paired tensors upstream of the target in graph order,
    nearest the model's inputs first) for the smallest cut that still ``fails``; (None, "") when even the
    whole cone above the target does not.

    1. every candidate fed: the cut starts at the nearest passing paired tensors (where a layer that is
       wrong by itself has its repro: a node or a few);
    2. otherwise bisection over the candidates in graph order: feed those above position k, the largest
       k that still fails;
    3. then shrinking: each remaining candidate, front first, is fed too where the cut still fails."""
    cands = list(cands)
    n = 0

    def check(f: list[str]) -> bool:
        nonlocal n
        n += 1
        return fails(f)

    say = log or (lambda _d: None)
    if cands and check(cands):
        return cands, "nearest paired tensors"
    if not check([]):
        return None, ""
    if not cands:
        return [], "the whole subgraph above it (no paired tensor upstream)"
    lo, hi = 0, len(cands)  # feeding cands[:lo] fails, cands[:hi] does not
    while hi - lo > 1 and n < max_checks:
        mid = (lo + hi) // 2
        if check(cands[:mid]):
            lo = mid
        else:
            hi = mid
    fed = cands[:lo]
    say({"what": "bisection", "fed": len(fed)})
    for c in cands[lo:]:
        if n >= max_checks:
            break
        if check(fed + [c]):
            fed = fed + [c]
    return fed, "bisection, then shrinking"

