"""The words and slices of a layer pair's detail (:class:`app.panels.parity_detail.LayerDetail`), pure.

The images' keys and titles, the pair's names as copied, the slice a spin box value stands for, and the
line under the images (the tensor's error and what is shown), from a ``layer_tensors`` result (``info``).
Re-exported by :mod:`app.panels.parity_detail`.
"""
from __future__ import annotations

import math

__all__ = ["IMAGE_KEYS", "pair_names", "slice_text", "tensor_words"]

IMAGE_KEYS = ("a", "b", "diff")
_TITLES = {"a": "A (reference)", "b": "B (converted)", "diff": "B − A"}


def _g(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(float(x), ".4g")


def pair_names(r: dict) -> str:
    """A layer pair's names in both models, as copied to the clipboard: node and tensor of each side."""
    return (f"A: node {r.get('node') or '?'}, tensor {r.get('a', '')}\n"
            f"B: node {r.get('node_b') or '?'}, tensor {r.get('b', '')}")


def slice_text(info: dict, s: int) -> str:
    """Which slice spin box value ``s`` stands for: sample and channel of a 4-D tensor, else the slice."""
    c = int(info.get("channels") or 1)
    shape = info.get("shape") or []
    if len(shape) == 4:
        return (f"sample {s // c}, " if shape[0] > 1 else "") + f"channel {s % c} of {c}"
    if len(shape) >= 3:
        return f"slice {s} of {info.get('n_slices')}"
    return ""


def tensor_words(info: dict, st: dict) -> str:
    """The tensor's error (``st``: the result's stats) and what is shown, in words."""
    parts = []
    if info.get("note"):
        parts.append(info["note"] + ".")
    if st.get("max_abs") is not None:
        parts.append(f"|B − A|: max {_g(st['max_abs'])}, mean {_g(st['mean_abs'])}, rms {_g(st['rms'])}.")
    w = info.get("worst")
    if w:
        parts.append(f"Largest at A{w['index']} (slice {w['slice']}): A {_g(w['a'])}, B {_g(w['b'])}.")
    if info.get("step", 1) > 1:
        parts.append(f"Every {info['step']}th row and column shown ({info['full'][0]}×{info['full'][1]}).")
    return " ".join(parts)


def _worst_slice(info: dict) -> int:
    w = info.get("worst")
    return int(w["slice"]) if w else int(info.get("slice_start") or 0)
