"""Model inputs: seeded random data, .npy/.npz files, images with preprocessing, saved input sets, and
matching named arrays to a model's inputs (by name, then by position, undoing NCHW/NHWC changes).

Everything here is numpy (and Pillow for images, imported when an image is read): no framework.
Shapes follow :class:`converters.runners.base.TensorSpec`: ints, named dynamic dims (str) or None.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .layouts import invert_perm, perm_candidates as layout_perm  # noqa: F401 - part of this module's API
from .errors import TensorbridgeError

__all__ = ["InputError", "resolve_shape", "random_inputs", "load_arrays", "load_image", "match_arrays",
           "save_inputs", "load_inputs", "layout_perm", "IMAGE_EXTS", "ImageOptions", "inputs_from_files"]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


class InputError(TensorbridgeError):
    """Inputs cannot be made or do not fit the model."""


def _spec_fields(spec) -> tuple[str, str | None, tuple | None]:
    if isinstance(spec, dict):
        s = spec.get("shape")
        return spec["name"], spec.get("dtype"), None if s is None else tuple(s)
    return spec.name, spec.dtype, spec.shape


def resolve_shape(name: str, shape: Sequence | None, *, dims: dict[str, int] | None = None,
                  shapes: dict[str, Sequence[int]] | None = None, batch: int | None = None) -> tuple[int, ...]:
    """A concrete shape for one input.

    ``shapes[name]`` wins outright. Otherwise each dynamic dim is filled from ``dims`` (by dim name, e.g.
    ``{"batch": 2}``); the first dim, when dynamic, is the batch (``batch``, default 1). Any other dynamic
    dim without a value is an error that says how to set it.
    """
    if shapes and name in shapes:
        return tuple(int(d) for d in shapes[name])
    if shape is None:
        raise InputError(f"input '{name}' has an unknown rank; give its shape (--shape {name}=1x3x224x224)")
    dims = dims or {}
    out = []
    for i, d in enumerate(shape):
        if isinstance(d, (int, np.integer)) and d >= 0:
            out.append(int(d))
        elif isinstance(d, str) and d in dims:
            out.append(int(dims[d]))
        elif i == 0:
            out.append(int(batch if batch is not None else dims.get("batch", 1)))
        else:
            raise InputError(f"input '{name}' has a dynamic dim {i} ({d or '?'}) of shape "
                             f"{['?' if x is None else x for x in shape]}; set it with --dim {d or 'NAME'}=N "
                             f"or --shape {name}=" + "x".join(str(x) if isinstance(x, int) else "N" for x in shape))
    return tuple(out)


def _rng_for(seed: int, index: int) -> np.random.Generator:
    # one stream per input position: adding an input does not change the data of the others
    return np.random.default_rng([int(seed), int(index)])


def random_array(shape: tuple[int, ...], dtype: str | None, rng: np.random.Generator, *,
                 float_range: tuple[float, float] = (0.0, 1.0), int_range: tuple[int, int] = (0, 10)) -> np.ndarray:
    """Random data of one dtype: floats uniform in ``float_range``, ints uniform in ``int_range``
    (high exclusive), bools fair coin flips. ``dtype`` None means float32."""
    dt = np.dtype(dtype or "float32") if dtype not in ("string", "bfloat16") else None
    if dtype == "bfloat16":
        import ml_dtypes
        return rng.uniform(*float_range, size=shape).astype(ml_dtypes.bfloat16)
    if dt is None:
        raise InputError("string inputs cannot be generated; give them in an .npz file (--inputs)")
    if dt.kind == "f":
        return rng.uniform(*float_range, size=shape).astype(dt)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dt.kind in "iu":
        lo, hi = int_range
        if dt.kind == "u":
            lo = max(lo, 0)
        return rng.integers(lo, hi, size=shape).astype(dt)
    if dt.kind == "c":
        return (rng.uniform(*float_range, size=shape) + 1j * rng.uniform(*float_range, size=shape)).astype(dt)
    raise InputError(f"cannot generate inputs of dtype {dt.name}; give them in an .npz file (--inputs)")


def random_inputs(specs: Iterable, *, seed: int = 0, dims: dict[str, int] | None = None,
                  shapes: dict[str, Sequence[int]] | None = None, batch: int | None = None,
                  float_range: tuple[float, float] = (0.0, 1.0), int_range: tuple[int, int] = (0, 10)) -> dict[str, np.ndarray]:
    """Seeded random feeds for a model's input specs (same seed, specs and options -> same arrays)."""
    out = {}
    for i, spec in enumerate(specs):
        name, dtype, shape = _spec_fields(spec)
        concrete = resolve_shape(name, shape, dims=dims, shapes=shapes, batch=batch)
        out[name] = random_array(concrete, dtype, _rng_for(seed, i), float_range=float_range, int_range=int_range)
    return out


# ---- files -------------------------------------------------------------------------------------------
def load_arrays(path: str) -> dict[str, np.ndarray]:
    """Named arrays from an .npz (its keys) or an .npy (named after the file). Never unpickles."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such input file")
    try:
        if path.lower().endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        return {os.path.splitext(os.path.basename(path))[0]: np.load(path, allow_pickle=False)}
    except ValueError as exc:
        raise InputError(f"{path}: holds Python objects (pickled); save plain numeric arrays with np.save/np.savez "
                         f"({exc})") from None
    except Exception as exc:
        raise InputError(f"{path}: not a readable .npy/.npz file ({type(exc).__name__}: {exc})") from None


def save_inputs(path: str, feeds: dict[str, np.ndarray]) -> str:
    """Save a named input set as .npz (written to a temp name, then renamed: readers never see half a file)."""
    path = os.fspath(path)
    if not path.endswith(".npz"):
        path += ".npz"
    tmp = path + ".part.npz"
    # mypy matches a **dict against every keyword parameter, allow_pickle: bool included.
    np.savez(tmp, **{k: np.asarray(v) for k, v in feeds.items()})  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def load_inputs(path: str) -> dict[str, np.ndarray]:
    """A named input set saved with :func:`save_inputs`."""
    return load_arrays(path)


@dataclass
class ImageOptions:
    """Image preprocessing. ``size`` (H, W) defaults to the model input's; ``scale`` maps 0..255 to
    0..1; ``mean``/``std`` per channel (in the scaled units) are applied after scaling; ``layout`` is
    "NCHW", "NHWC" or "auto" (channels where the model's input has 1 or 3 of them); ``grayscale`` reads
    one channel."""

    size: tuple[int, int] | None = None
    scale: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    layout: str = "auto"
    grayscale: bool | None = None


def _image_layout(shape: Sequence | None, layout: str) -> str:
    if layout.upper() in ("NCHW", "NHWC"):
        return layout.upper()
    if shape is not None and len(shape) == 4:
        c1, c3 = shape[1], shape[3]
        if c1 in (1, 3) and c3 not in (1, 3):
            return "NCHW"
        if c3 in (1, 3) and c1 not in (1, 3):
            return "NHWC"
        if c1 in (1, 3):
            return "NCHW"
    return "NHWC"


def load_image(paths: str | Sequence[str], spec=None, options: ImageOptions | None = None) -> np.ndarray:
    """One batch (N = number of files) of preprocessed images as float32, laid out for ``spec``."""
    from PIL import Image

    opts = options or ImageOptions()
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    name, dtype, shape = _spec_fields(spec) if spec is not None else ("image", "float32", None)
    layout = _image_layout(shape, opts.layout)
    ch = None
    hw = opts.size
    if shape is not None and len(shape) == 4:
        ch = shape[1] if layout == "NCHW" else shape[3]
        h, w = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
        if hw is None and isinstance(h, int) and isinstance(w, int):
            hw = (h, w)
    gray = opts.grayscale if opts.grayscale is not None else (ch == 1)
    batch = []
    for p in paths:
        try:
            with Image.open(p) as f:
                im = f.convert("L" if gray else "RGB")
                if hw is not None and (im.height, im.width) != tuple(hw):
                    im = im.resize((int(hw[1]), int(hw[0])), Image.Resampling.BILINEAR)
                a = np.asarray(im, dtype=np.float32)
        except FileNotFoundError:
            raise InputError(f"{p}: no such image file") from None
        except Exception as exc:
            raise InputError(f"{p}: cannot read this image ({type(exc).__name__}: {exc})") from None
        if a.ndim == 2:
            a = a[:, :, None]
        batch.append(a)
    sizes = {b.shape for b in batch}
    if len(sizes) > 1:
        raise InputError(f"images have different sizes {sorted(sizes)}; give --image-size H,W to resize them")
    x = np.stack(batch)  # N, H, W, C
    if opts.scale:
        x = x / 255.0
    if opts.mean is not None:
        x = x - np.asarray(opts.mean, np.float32).reshape(1, 1, 1, -1)
    if opts.std is not None:
        x = x / np.asarray(opts.std, np.float32).reshape(1, 1, 1, -1)
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    want = dtype if dtype and dtype != "string" else "float32"
    return np.ascontiguousarray(x.astype(want))


def inputs_from_files(files: Sequence[str], specs: list, *, image_options: ImageOptions | None = None,
                      warnings: list[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays named for ``specs`` from .npy/.npz files and image files.

    Images become one batch for the first image-like (4-D) input; arrays are matched by name, then by
    position (with a warning).
    """
    warnings = warnings if warnings is not None else []
    arrays: dict[str, np.ndarray] = {}
    images = [f for f in files if os.path.splitext(f)[1].lower() in IMAGE_EXTS]
    for f in files:
        if f in images:
            continue
        arrays.update(load_arrays(f))
    if images:
        target = next((s for s in specs if len(_spec_fields(s)[2] or ()) == 4), None)
        if target is None:
            raise InputError(f"{images[0]}: the model has no 4-D (image) input to put images into")
        arrays[_spec_fields(target)[0]] = load_image(images, target, image_options)
    return match_arrays(arrays, specs, warnings=warnings, what="input")


# ---- matching ----------------------------------------------------------------------------------------
@dataclass
class Match:
    """How one array was matched to one spec: by 'name' or 'position', and the transpose applied."""

    source: str
    target: str
    by: str
    perm: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)


def match_arrays(arrays: dict[str, np.ndarray], specs: list, *, warnings: list[str] | None = None,
                 what: str = "input", perms: dict[str, Sequence[int]] | None = None,
                 matches: list | None = None) -> dict[str, np.ndarray]:
    """Arrays renamed (and transposed) to fit ``specs``.

    By name first; the rest in order of position, with a warning naming both sides. When an array's shape
    is not the spec's but a permutation of it (NCHW data for an NHWC model), it is transposed, preferring
    ``perms[target]`` (from a converter's sidecar), then the usual layout moves; each transpose is warned
    about. Extra arrays are reported; a missing one is an error.
    """
    warnings = warnings if warnings is not None else []
    names = [_spec_fields(s)[0] for s in specs]
    out: dict[str, np.ndarray] = {}
    left = dict(arrays)
    pairs: list[tuple[str, str, str]] = []
    for n in names:
        if n in left:
            pairs.append((n, n, "name"))
            left.pop(n)
    unmatched = [n for n in names if n not in {p[1] for p in pairs}]
    for n, (src, _a) in zip(unmatched, list(left.items())):
        pairs.append((src, n, "position"))
        left.pop(src)
        warnings.append(f"{what} '{src}' has no namesake; matched to '{n}' by position")
    still = [n for n in names if n not in {p[1] for p in pairs}]
    if still:
        raise InputError(f"no data for {what}(s) {still}; the data has {sorted(arrays)} (the model expects {names})")
    if left:
        warnings.append(f"{what} data {sorted(left)} not used: the model has no more {what}s")
    spec_by = {_spec_fields(s)[0]: s for s in specs}
    for src, dst, by in sorted(pairs, key=lambda p: names.index(p[1])):
        a = np.asarray(arrays[src])
        _n, dtype, shape = _spec_fields(spec_by[dst])
        perm = None
        if shape is not None and len(shape) == a.ndim:
            cands = layout_perm(a.shape, shape)
            hint = tuple(perms[dst]) if perms and dst in perms else None
            if hint and hint in cands:
                perm = hint
            elif cands and cands[0] != tuple(range(a.ndim)):
                perm = cands[0]
            elif not cands:
                raise InputError(f"{what} '{src}' has shape {list(a.shape)}, which does not fit '{dst}' "
                                 f"{['?' if not isinstance(d, int) else d for d in shape]}")
            if perm is not None and perm != tuple(range(a.ndim)):
                a = np.ascontiguousarray(a.transpose(perm))
                warnings.append(f"{what} '{src}' transposed by {list(perm)} to fit '{dst}' "
                                f"({'converter map' if hint == perm else 'layout change'})")
            else:
                perm = None
        elif shape is not None:
            raise InputError(f"{what} '{src}' has rank {a.ndim} but '{dst}' expects rank {len(shape)} {list(shape)}")
        if dtype and dtype not in ("string",) and a.dtype.name != dtype:
            try:
                want = np.dtype(dtype)
                if want.kind != a.dtype.kind:
                    warnings.append(f"{what} '{src}' cast from {a.dtype.name} to {dtype}")
                a = a.astype(want)
            except TypeError:
                pass
        out[dst] = a
        if matches is not None:
            matches.append(Match(src, dst, by, perm))
    return out
