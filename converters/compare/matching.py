"""Pairing the tensors of two models: by name, by a converter's sidecar map, then by position; undoing
layout changes (NCHW vs NHWC) when one side's shape is a permutation of the other's.

The sidecar ``<model>.tbmap.json`` is written beside a converted model by the conversion engine. It is
read leniently: any object in it that names a source tensor (``source``/``src``/``from``) and a target
tensor (``target``/``dst``/``to``) is a pair, and a ``layout`` (the conversion engine's key; also
``perm``/``permutation``/``transpose``) list on it means ``target == source.transpose(perm)``; null means
unchanged or unknown, and then shapes decide. A top-level ``{source: target}`` mapping under
``map``/``tensors``/``inputs``/``outputs`` is read too.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..inputs import invert_perm, layout_perm

__all__ = ["Sidecar", "read_sidecar", "pair_outputs", "OutputPair"]

_SRC_KEYS = ("source", "src", "from", "source_name", "onnx")
_DST_KEYS = ("target", "dst", "to", "target_name", "tf", "tflite")
_PERM_KEYS = ("layout", "perm", "permutation", "transpose", "layout_perm")


@dataclass
class Sidecar:
    """Pairs ``source name -> (target name, perm or None)`` read from a ``.tbmap.json``."""

    path: str | None = None
    pairs: dict[str, tuple[str, tuple[int, ...] | None]] = field(default_factory=dict)
    # intermediate tensors only (the map's "tensors" list), in the map's order (graph order)
    tensors: list[tuple[str, str, tuple[int, ...] | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def renamed(self, source_aliases: dict[str, str], target_aliases: dict[str, str]) -> "Sidecar":
        """The same map with names translated to what the runners call them."""
        sa, ta = source_aliases or {}, target_aliases or {}
        return Sidecar(self.path, {sa.get(s, s): (ta.get(t, t), p) for s, (t, p) in self.pairs.items()},
                       [(sa.get(s, s), ta.get(t, t), p) for s, t, p in self.tensors])

    def target_perms(self) -> dict[str, tuple[int, ...]]:
        """target name -> perm (for feeding source-layout data to the target)."""
        return {t: p for _s, (t, p) in self.pairs.items() if p}

    def inverted(self) -> "Sidecar":
        inv = {}
        for s, (t, p) in self.pairs.items():
            inv[t] = (s, invert_perm(p) if p else None)
        return Sidecar(self.path, inv, [(t, s, invert_perm(p) if p else None) for s, t, p in self.tensors])


def sidecar_path(model_path: str) -> str:
    return os.path.normpath(model_path) + ".tbmap.json"


def read_sidecar(model_path: str, warnings: list[str] | None = None) -> Sidecar:
    """The sidecar beside ``model_path`` (empty when there is none or it cannot be read)."""
    path = sidecar_path(model_path)
    if not os.path.isfile(path):
        return Sidecar()
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        if warnings is not None:
            warnings.append(f"{path}: converter map ignored (cannot read it: {exc})")
        return Sidecar()
    pairs: dict[str, tuple[str, tuple[int, ...] | None]] = {}

    def perm_of(obj: dict):
        for k in _PERM_KEYS:
            v = obj.get(k)
            if isinstance(v, (list, tuple)) and v and all(isinstance(i, int) for i in v) \
                    and sorted(v) == list(range(len(v))):
                return tuple(v)
        return None

    def walk(x: Any, depth: int = 0):
        if depth > 8:
            return
        if isinstance(x, dict):
            src = next((x[k] for k in _SRC_KEYS if isinstance(x.get(k), str)), None)
            dst = next((x[k] for k in _DST_KEYS if isinstance(x.get(k), str)), None)
            if src and dst:
                pairs.setdefault(src, (dst, perm_of(x)))
            for k, v in x.items():
                if k in ("map", "tensors", "inputs", "outputs") and isinstance(v, dict):
                    for s, t in v.items():
                        if isinstance(t, str):
                            pairs.setdefault(s, (t, None))
                        elif isinstance(t, dict):
                            dst2 = next((t[kk] for kk in _DST_KEYS + ("name",) if isinstance(t.get(kk), str)), None)
                            if dst2:
                                pairs.setdefault(s, (dst2, perm_of(t)))
                            walk(t, depth + 1)
                else:
                    walk(v, depth + 1)
        elif isinstance(x, list):
            for v in x:
                walk(v, depth + 1)

    walk(data)
    tensors = []
    if isinstance(data, dict) and isinstance(data.get("tensors"), list):
        for x in data["tensors"]:
            if isinstance(x, dict):
                src = next((x[k] for k in _SRC_KEYS if isinstance(x.get(k), str)), None)
                dst = next((x[k] for k in _DST_KEYS if isinstance(x.get(k), str)), None)
                if src and dst:
                    tensors.append((src, dst, perm_of(x)))
    return Sidecar(path, pairs, tensors)


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
                 arrays_b: dict[str, np.ndarray], *, sidecar: Sidecar | None = None,
                 warnings: list[str] | None = None,
                 explicit: list[tuple[str, str]] | None = None,
                 explicit_only: bool = False) -> tuple[list[OutputPair], list[str], list[str]]:
    """Pair A's outputs with B's: ``explicit`` pairs (A name, B name[, perm with B == A.transpose(perm)]) first, then same name, then the
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
