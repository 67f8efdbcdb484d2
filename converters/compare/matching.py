"""Pairing the tensors of two models: by name, by a converter's map (:mod:`converters.tbmap`), then by
position; undoing layout changes (NCHW vs NHWC) when one side's shape is a permutation of the other's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..layouts import invert_perm, perm_candidates as layout_perm
from ..tbmap import TensorMap

__all__ = ["pair_outputs", "OutputPair", "align"]


@dataclass
class OutputPair:
    """Output ``a`` of A paired with ``b`` of B; ``by`` is name / map / position; ``perm`` transposes
    B's array into A's layout (None: none needed)."""

    a: str
    b: str
    by: str
    perm: tuple[int, ...] | None = None


def _compatible(shape_a, shape_b) -> bool:
    if shape_a is None or shape_b is None:
        return True
    return bool(layout_perm(tuple(shape_b), tuple(shape_a)))


def pair_outputs(names_a: list[str], names_b: list[str], arrays_a: dict[str, np.ndarray],
                 arrays_b: dict[str, np.ndarray], *, sidecar: TensorMap | None = None,
                 warnings: list[str] | None = None,
                 explicit: list[tuple[str, str]] | None = None,
                 explicit_only: bool = False) -> tuple[list[OutputPair], list[str], list[str]]:
    """Pair A's outputs with B's: ``explicit`` pairs (A name, B name[, perm with B == A.transpose(perm)]) first,
    then same name, then the
    sidecar's map, then by position among the rest (skipping B outputs whose shape cannot fit), each
    positional pair warned about. Returns (pairs, A names left over, B names left over)."""
    warnings = warnings if warnings is not None else []
    pairs: list[OutputPair] = []
    left_b = [n for n in names_b]
    for given in explicit or []:
        na, nb = given[0], given[1]
        perm = tuple(given[2]) if len(given) > 2 and given[2] else None
        if explicit_only:  # inner tensors: one B tensor may be the counterpart of several A tensors
            if na in names_a and nb in names_b and not any(p.a == na for p in pairs):
                pairs.append(OutputPair(na, nb, "given", invert_perm(perm) if perm else None))
            continue
        if na in names_a and nb in left_b and not any(p.a == na for p in pairs):
            pairs.append(OutputPair(na, nb, "given", invert_perm(perm) if perm else None))
            left_b.remove(nb)
    if explicit_only:
        return pairs, [n for n in names_a if not any(p.a == n for p in pairs)], []
    for n in names_a:
        if any(p.a == n for p in pairs):
            continue
        if n in left_b:
            hit = sidecar.pairs.get(n) if sidecar else None
            perm = invert_perm(hit[1]) if hit and hit[0] == n and hit[1] else None
            pairs.append(OutputPair(n, n, "name", perm))
            left_b.remove(n)
    if sidecar:
        for n in names_a:
            if any(p.a == n for p in pairs):
                continue
            hit = sidecar.pairs.get(n)
            if hit and hit[0] in left_b:
                pairs.append(OutputPair(n, hit[0], "map", invert_perm(hit[1]) if hit[1] else None))
                left_b.remove(hit[0])
    for n in names_a:
        if any(p.a == n for p in pairs):
            continue
        sa = arrays_a[n].shape if n in arrays_a else None
        cand = next((m for m in left_b if _compatible(sa, arrays_b[m].shape if m in arrays_b else None)), None)
        if cand is None:
            continue
        pairs.append(OutputPair(n, cand, "position"))
        left_b.remove(cand)
        warnings.append(f"output '{n}' of A has no namesake in B; compared with B's '{cand}' by position")
    left_a = [n for n in names_a if not any(p.a == n for p in pairs)]
    order = {n: i for i, n in enumerate(names_a)}
    pairs.sort(key=lambda p: order[p.a])
    return pairs, left_a, left_b


def align(a: np.ndarray, b: np.ndarray, hint: tuple[int, ...] | None,
          score: Callable[[np.ndarray, np.ndarray], bool]) -> tuple[np.ndarray, tuple[int, ...] | None, str | None]:
    """B's array in A's layout: (array, perm applied or None, note or None).

    Shapes equal: identity, unless it fails ``score`` and another shape-preserving permutation passes
    (a same-shape layout change, e.g. H == W). Shapes a permutation of each other: the hint, else the
    usual layout moves first, choosing among several candidates by ``score``.
    """
    if a.shape == b.shape and hint is None:
        if score(a, b) or a.ndim < 3:
            return b, None, None
    cands = layout_perm(b.shape, a.shape)
    if hint is not None and hint in cands:
        return np.ascontiguousarray(b.transpose(hint)), hint, "converter map"
    if not cands:
        return b, None, None
    ident = tuple(range(b.ndim))
    tried = [p for p in cands if p != ident][:24]
    if a.shape == b.shape:
        for p in tried:
            t = b.transpose(p)
            if score(a, t):
                return np.ascontiguousarray(t), p, "value search (same shape, layout changed)"
        if tried and a.size <= 4_000_000 and a.dtype.kind == "f":
            # nothing matches in any layout: keep the identity unless another layout is far closer
            ident_err = float(np.nanmean(np.abs(a.astype(np.float64) - b)))
            errs = [float(np.nanmean(np.abs(a.astype(np.float64) - b.transpose(p)))) for p in tried]
            i = int(np.argmin(errs))
            if errs[i] < 0.5 * ident_err:
                return np.ascontiguousarray(b.transpose(tried[i])), tried[i], "closest layout (same shape)"
        return b, None, None
    if len(tried) > 1 and not score(a, b.transpose(tried[0])) and a.size <= 4_000_000:
        # several layouts fit the shapes and none matches: keep the closest, so the error reported is
        # the model's, not a wrong transpose's
        errs = [float(np.nanmean(np.abs(a.astype(np.float64) - b.transpose(p)))) for p in tried]
        best = tried[int(np.argmin(errs))]
        return np.ascontiguousarray(b.transpose(best)), best, "closest of several layouts that fit"
    if len(tried) == 1 or score(a, b.transpose(tried[0])):
        return np.ascontiguousarray(b.transpose(tried[0])), tried[0], "layout change"
    for p in tried[1:]:
        t = b.transpose(p)
        if score(a, t):
            return np.ascontiguousarray(t), p, "value search among layout changes"
    return np.ascontiguousarray(b.transpose(tried[0])), tried[0], "layout change"
