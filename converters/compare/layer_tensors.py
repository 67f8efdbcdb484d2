"""Worker task ``layer_tensors``: one layer pair of a per-layer comparison's result folder as images.

A per-layer comparison with a result folder (``save_dir``) keeps A's tensor of every layer under
``layers_a/`` (named in ``layers_a.json``), B's only for the pairs that failed under ``layers_b/<k>.npy``
(k: the first pair that B tensor is in) and B's layer re-run alone on A's tensors under
``local/<index>.npy``. This task reads one pair's files, lays B over A's layout (the pair's ``perm``, or
unit axes dropped), cuts the tensors into 2-D slices and writes a small ``.npz`` of those the window
shows: A, B and B - A, downsampled by a stride so that no image is over ``max_side`` pixels a side.

Slices: a 4-D tensor is (N, C, H, W) (NHWC when ``layout`` says so, or, with ``auto``, when its two
middle sizes agree and the last differs), slice ``k`` is sample ``k // C``, channel ``k % C``; 3-D: the
first axis; more axes: every axis but the last two flattened; 2-D: one image; 1-D: one row; a scalar a
1x1 image. Up to ``max_elems`` pixels of slices are written, around the one asked for, so that moving
between nearby slices needs no new job.

params: ``result_dir`` (the comparison's folder, holding result.json), ``index`` (the layer's index in
the result), ``slice`` (default: the one with the largest |B - A|), ``layout`` ("auto", "NCHW" or
"NHWC"), ``max_side`` (512), ``max_elems`` (4,000,000 per array), ``bins`` (64).
result: ``index``, ``a``, ``b`` (names), ``files`` {a, b, local: paths or ""}, ``kept_b`` (False: B's
tensor was not kept, as the pair passed), ``shape`` (A's), ``shape_b`` (B's own), ``perm``, ``layout``,
``n_slices``, ``channels``, ``slice`` (the one asked for), ``slice_start``, ``slice_count``, ``step``
(the stride), ``image`` [h, w] (shown) and ``full`` [H, W] (the slice's own size), ``levels`` {a_b:
[lo, hi] over both whole tensors, diff: max abs of B - A}, ``hist`` {edges, counts} of B - A over the
whole tensor, ``slice_max`` (max abs of B - A in each slice, the first 4096), ``worst`` {index (in A's
layout), slice, a, b}, ``stats`` {max_abs, mean_abs, rms, local_max_abs}, ``npz`` (arrays ``a``, ``b``,
``diff``, ``local_diff``: slice_count x h x w, float32; those not there are absent) and ``note``.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from ..errors import TensorbridgeError

__all__ = ["layer_tensors_task", "slices_of", "channels_last"]

MAX_SIDE = 512
MAX_ELEMS = 4_000_000
_CHUNK = 1 << 22  # elements of a tensor read at once for its statistics


def channels_last(shape: tuple[int, ...], layout: str = "auto") -> bool:
    """Whether a 4-D tensor of ``shape`` is read as NHWC."""
    if len(shape) != 4 or layout == "NCHW":
        return False
    if layout == "NHWC":
        return True
    return shape[1] == shape[2] and shape[3] != shape[1]


def slices_of(x: np.ndarray, layout: str = "auto") -> tuple[np.ndarray, int]:
    """``x`` as (slices, H, W) (a view where possible) and its number of channels (the slices per sample
    of a 4-D tensor; 1 otherwise)."""
    s = x.shape
    if x.ndim == 0:
        return x.reshape(1, 1, 1), 1
    if x.ndim == 1:
        return x.reshape(1, 1, s[0]), 1
    if x.ndim == 2:
        return x.reshape(1, s[0], s[1]), 1
    if x.ndim == 4:
        if channels_last(s, layout):
            x = x.transpose(0, 3, 1, 2)
            s = x.shape
        return x.reshape(s[0] * s[1], s[2], s[3]), int(s[1])
    return x.reshape(-1, s[-2], s[-1]), 1


def _load(path: str) -> np.ndarray | None:
    if not path or not os.path.exists(path):
        return None
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _in_a_layout(b: np.ndarray, shape_a: tuple[int, ...], perm) -> np.ndarray | None:
    """B's tensor laid over A's layout as the comparison did (transposed by ``perm``, unit axes kept or
    dropped), or None when no such layout relates them."""
    if perm and len(perm) == b.ndim:
        b = b.transpose(perm)
    if tuple(b.shape) == tuple(shape_a):
        return b
    if b.size == math.prod(shape_a) and tuple(d for d in b.shape if d != 1) == tuple(d for d in shape_a if d != 1):
        return b.reshape(shape_a)
    return None


def _files(result_dir: str, layers: list[dict], r: dict) -> dict[str, str]:
    index_a = os.path.join(result_dir, "layers_a.json")
    fa = ""
    if os.path.exists(index_a):
        with open(index_a) as f:
            fa = (json.load(f) or {}).get(r["a"], "")
    ka = next((int(x["index"]) for x in layers if x["a"] == r["a"]), int(r["index"]))
    kb = next((int(x["index"]) for x in layers if x["b"] == r["b"]), int(r["index"]))
    if not fa or not os.path.exists(fa):
        fa = os.path.join(result_dir, "layers_a", f"{ka}.npy")
    fb = ""
    index_b = os.path.join(result_dir, "layers_b.json")  # B's kept tensors by name (failing pairs only)
    if os.path.exists(index_b):
        with open(index_b) as f:
            fb = (json.load(f) or {}).get(r["b"], "")
    if not fb:
        fb = os.path.join(result_dir, "layers_b", f"{kb}.npy")
    fl = os.path.join(result_dir, "local", f"{int(r['index'])}.npy")
    return {k: (p if os.path.exists(p) else "") for k, p in (("a", fa), ("b", fb), ("local", fl))}


def _finite_range(*xs: np.ndarray) -> list[float]:
    lo, hi = math.inf, -math.inf
    for x in xs:
        for c in _chunks(x):
            c = c[np.isfinite(c)]
            if c.size:
                lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    return [lo, hi] if lo <= hi else [0.0, 0.0]


def _chunks(x: np.ndarray):
    flat = x.reshape(-1)
    for i in range(0, max(flat.size, 1), _CHUNK):
        yield np.asarray(flat[i:i + _CHUNK], np.float64)


def layer_tensors_task(params: dict, ctx) -> dict:
    result_dir = os.path.abspath(str(params["result_dir"]))
    index = int(params["index"])
    layout = str(params.get("layout") or "auto")
    max_side = max(8, int(params.get("max_side") or MAX_SIDE))
    max_elems = max(1, int(params.get("max_elems") or MAX_ELEMS))
    bins = max(4, int(params.get("bins") or 64))
    path = os.path.join(result_dir, "result.json")
    if not os.path.exists(path):
        raise TensorbridgeError(f"{result_dir}: no result.json; the comparison's folder was removed or never kept")
    with open(path) as f:
        res = json.load(f)
    layers = res.get("layers") or []
    r = next((x for x in layers if int(x["index"]) == index), None)
    if r is None:
        raise TensorbridgeError(f"the comparison in {result_dir} has no layer {index}")
    ctx.progress(None, f"reading the tensors of '{r['a']}'")
    files = _files(result_dir, layers, r)
    out: dict = {"index": index, "a": r["a"], "b": r["b"], "files": files, "kept_b": bool(files["b"]),
                 "shape": [], "shape_b": [], "perm": r.get("perm"), "note": ""}
    a = _load(files["a"])
    if a is None:
        out["note"] = (f"A's tensor '{r['a']}' was not kept" + (f" ({r['reason']})" if r.get("reason") else "")
                       + "; run the comparison again with Per layer to see it")
        return out
    b_raw = _load(files["b"])
    loc_raw = _load(files["local"])
    out["shape"] = list(a.shape)
    out["shape_b"] = list(b_raw.shape) if b_raw is not None else []
    perm = r.get("perm")
    b = _in_a_layout(b_raw, a.shape, perm) if b_raw is not None else None
    loc = _in_a_layout(loc_raw, a.shape, perm) if loc_raw is not None else None
    if b_raw is not None and b is None:
        out["note"] = f"B's tensor {list(b_raw.shape)} cannot be laid over A's {list(a.shape)}; showing A's"
    elif b_raw is None:
        out["note"] = "B matches A within tolerance here (not kept)"

    sa, channels = slices_of(a, layout)
    n, hh, ww = sa.shape
    sb = slices_of(b, layout)[0] if b is not None else None
    sl = slices_of(loc, layout)[0] if loc is not None else None
    stats: dict = {"max_abs": None, "mean_abs": None, "rms": None, "local_max_abs": None}
    out["levels"] = {"a_b": _finite_range(a, *(() if b is None else (b,))), "diff": 0.0}
    out["hist"] = {"edges": [], "counts": []}
    out["slice_max"] = []
    out["worst"] = None
    if sb is not None:
        ctx.progress(None, "the difference's statistics")
        per = np.zeros(n, np.float64)
        total, sq, count_f, top, top_at = 0.0, 0.0, 0, -1.0, 0
        for k in range(n):  # slice by slice: memory stays at one slice of each side
            d = np.asarray(sb[k], np.float64) - np.asarray(sa[k], np.float64)
            ad = np.abs(d)
            ok = np.isfinite(ad)
            if ok.any():
                m = float(ad[ok].max())
                per[k] = m
                total += float(ad[ok].sum())
                sq += float((d[ok] ** 2).sum())
                count_f += int(ok.sum())
                if m > top:
                    top, top_at = m, k * hh * ww + int(np.argmax(np.where(ok, ad, -1.0)))
            else:
                per[k] = math.nan
        if count_f:
            stats.update(max_abs=top, mean_abs=total / count_f, rms=math.sqrt(sq / count_f))
            k, rest = divmod(top_at, hh * ww)
            i, j = divmod(rest, ww)
            idx = _index_in_a(a.shape, layout, k, i, j, channels)
            out["worst"] = {"index": idx, "slice": int(k), "a": float(a[tuple(idx)]), "b": float(b[tuple(idx)])}
            lim = top if top > 0 else 1.0
            counts = np.zeros(bins, np.int64)
            for k2 in range(n):
                d = (np.asarray(sb[k2], np.float64) - np.asarray(sa[k2], np.float64)).ravel()
                counts += np.histogram(d[np.isfinite(d)], bins=bins, range=(-lim, lim))[0]
            out["hist"] = {"edges": np.linspace(-lim, lim, bins + 1).tolist(), "counts": counts.tolist()}
        out["levels"]["diff"] = float(top if top > 0 else 0.0)
        out["slice_max"] = [None if not math.isfinite(x) else float(x) for x in per[:4096]]
    if sl is not None:
        mx = 0.0
        for k in range(n):
            d = np.abs(np.asarray(sl[k], np.float64) - np.asarray(sa[k], np.float64))
            d = d[np.isfinite(d)]
            if d.size:
                mx = max(mx, float(d.max()))
        stats["local_max_abs"] = mx

    # the slices written: around the one asked for (default: the one with the largest |B - A|)
    step = max(1, math.ceil(max(hh, ww) / max_side))
    h, w = len(range(0, hh, step)), len(range(0, ww, step))
    count = max(1, min(n, max_elems // max(h * w, 1)))
    asked = params.get("slice")
    want = int(asked) if asked is not None and int(asked) >= 0 else (out["worst"] or {}).get("slice", 0)
    want = min(max(want, 0), n - 1)
    start = min(max(want - count // 2, 0), n - count)
    out.update(layout="NHWC" if channels_last(a.shape, layout) else ("NCHW" if a.ndim == 4 else ""),
               n_slices=int(n), channels=int(channels), slice=int(want), slice_start=int(start),
               slice_count=int(count), step=int(step), image=[h, w], full=[int(hh), int(ww)])
    cut = (slice(start, start + count), slice(None, None, step), slice(None, None, step))
    arrays = {"a": np.asarray(sa[cut], np.float32)}
    if sb is not None:
        arrays["b"] = np.asarray(sb[cut], np.float32)
        arrays["diff"] = (np.asarray(sb[cut], np.float64) - np.asarray(sa[cut], np.float64)).astype(np.float32)
    if sl is not None:
        arrays["local_diff"] = (np.asarray(sl[cut], np.float64) - np.asarray(sa[cut], np.float64)).astype(np.float32)
    out["stats"] = stats
    npz = ctx.path("layer.npz")
    np.savez(npz, **arrays)
    out["npz"] = npz
    ctx.progress(1.0, "done")
    return out


def _index_in_a(shape: tuple[int, ...], layout: str, k: int, i: int, j: int, channels: int) -> list[int]:
    """The element of A (in its own layout) at row ``i``, column ``j`` of slice ``k``."""
    nd = len(shape)
    if nd == 0:
        return []
    if nd == 1:
        return [j]
    if nd == 2:
        return [i, j]
    if nd == 4:
        s, c = divmod(k, channels)
        return [s, i, j, c] if channels_last(shape, layout) else [s, c, i, j]
    lead = list(np.unravel_index(k, shape[:-2])) if nd > 3 else [k]
    return [int(x) for x in lead] + [i, j]
