"""Layout permutations: which transpose takes one tensor's shape to another's (NCHW <-> NHWC and the rest).

One convention everywhere: a permutation ``p`` means ``target == source.transpose(p)``, so NCHW -> NHWC is
``(0, 2, 3, 1)``. A dimension that is not a non-negative integer (None, -1, a symbol name) is dynamic
and fits anything, on either side. Used by the converters' maps (:mod:`converters.tbmap`), by input
matching (:mod:`converters.inputs`) and by output alignment in ``compare``.
"""
from __future__ import annotations

from itertools import permutations
from typing import Sequence

__all__ = ["perm_candidates", "explain_layout", "invert_perm", "compose_perm", "PREFERRED"]

# The moves converters make, tried right after the identity: NCHW<->NHWC, NCW<->NWC, NCDHW<->NDHWC.
PREFERRED: tuple[tuple[int, ...], ...] = ((0, 2, 3, 1), (0, 3, 1, 2), (0, 2, 1), (0, 2, 3, 4, 1), (0, 4, 1, 2, 3))
MAX_SEARCH_RANK = 6  # beyond this, only the identity and the preferred moves are tried (6! = 720)


def _dim(d):
    return d if isinstance(d, int) and not isinstance(d, bool) and d >= 0 else None


def _fits(src, dst, p) -> bool:
    return all(src[p[i]] is None or dst[i] is None or src[p[i]] == dst[i] for i in range(len(dst)))


def perm_candidates(src_shape: Sequence | None, dst_shape: Sequence | None) -> list[tuple[int, ...]]:
    """Every ``p`` with ``src.transpose(p)`` fitting ``dst``, best first: the identity, the preferred
    channel moves, then any other (ranks up to :data:`MAX_SEARCH_RANK`). Empty when ranks differ."""
    if src_shape is None or dst_shape is None or len(src_shape) != len(dst_shape):
        return []
    src = [_dim(d) for d in src_shape]
    dst = [_dim(d) for d in dst_shape]
    n = len(src)
    ident = tuple(range(n))
    out = [ident] if _fits(src, dst, ident) else []
    for p in PREFERRED:
        if len(p) == n and p not in out and _fits(src, dst, p):
            out.append(p)
    if n <= MAX_SEARCH_RANK:
        for p in permutations(range(n)):
            if p not in out and _fits(src, dst, p):
                out.append(p)
    return out


def explain_layout(src_shape: Sequence | None, dst_shape: Sequence | None) -> tuple[list[int] | None, bool]:
    """The layout change between two shapes as (perm, known).

    (None, True): the same layout. A channels-first <-> channels-last move when it alone explains the
    shapes, else the one permutation that does. (None, False) when shapes cannot tell: unknown shapes,
    different ranks, or several moves that fit (a square image with as many channels as pixels).
    """
    cands = perm_candidates(src_shape, dst_shape)
    if not cands:
        return None, False
    r = len(cands[0])
    ident = tuple(range(r))
    cl = (0,) + tuple(range(2, r)) + (1,) if r >= 3 else None      # channels-first -> channels-last
    cf = (0, r - 1) + tuple(range(1, r - 1)) if r >= 3 else None   # channels-last -> channels-first
    has = set(cands)
    if ident in has and cl not in has:
        return None, True
    if cl in has and ident not in has and not (cf in has and cf != cl):
        return list(cl), True
    if cf in has and ident not in has and cl not in has:
        return list(cf), True
    if ident in has:
        return None, False
    if len(cands) == 1:
        return list(cands[0]), True
    return None, False


def invert_perm(p: Sequence[int] | None) -> tuple[int, ...] | None:
    """The permutation that undoes ``p`` (None stays None)."""
    if p is None:
        return None
    inv = [0] * len(p)
    for i, j in enumerate(p):
        inv[j] = i
    return tuple(inv)


def compose_perm(a: Sequence[int] | None, b: Sequence[int] | None) -> tuple[int, ...] | None:
    """``a`` then ``b``: ``x.transpose(a).transpose(b) == x.transpose(compose_perm(a, b))``."""
    if a is None:
        return None if b is None else tuple(b)
    if b is None:
        return tuple(a)
    return tuple(a[i] for i in b)
