"""Attach an architecture (the user's model class) to a weights-only checkpoint."""
from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from typing import Callable

import numpy as np

from ...errors import TensorbridgeError, UnsupportedFormat
from ...graph import Model, Tensor
from .checkpoint import _model_from_module, load_pickle
from .safetensors import load_safetensors
from .storage import _noop
from .user_code import add_user_folders_to_path, user_folders

class ArchitectureMismatch(TensorbridgeError):
    """The weights do not fit the given architecture (missing/unexpected keys, shape mismatches)."""


# attach an architecture to a weights-only file
# --------------------------------------------------------------------------------------------------


def _import_class(spec: str, near: str | None = None):
    mod_name, sep, cls_name = spec.partition(":")
    if not sep:
        mod_name, _, cls_name = spec.rpartition(".")
    if not mod_name or not cls_name:
        raise TensorbridgeError(f"architecture '{spec}': write it as package.module:ClassName "
                                f"or path/to/file.py:ClassName")
    try:
        if mod_name.endswith(".py") or os.sep in mod_name:
            file = mod_name if os.path.isabs(mod_name) else next(
                (os.path.join(d, mod_name) for d in user_folders(near) if os.path.isfile(os.path.join(d, mod_name))),
                os.path.abspath(mod_name))
            if not os.path.isfile(file):
                raise TensorbridgeError(f"architecture '{spec}': no such file {file}")
            name = "_tb_arch_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(file))[0])
            sp = importlib.util.spec_from_file_location(name, file)
            mod = importlib.util.module_from_spec(sp)
            sys.modules[name] = mod
            sp.loader.exec_module(mod)
        else:
            add_user_folders_to_path(near)
            mod = importlib.import_module(mod_name)
    except TensorbridgeError:
        raise
    except ImportError as exc:
        raise TensorbridgeError(f"architecture '{spec}': cannot import {mod_name} ({exc}); make sure it is "
                                f"installed or on PYTHONPATH") from None
    except Exception as exc:
        from ...errors import one_line

        raise TensorbridgeError(f"architecture '{spec}': importing {mod_name} failed ({one_line(exc)})") from None
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise TensorbridgeError(f"architecture '{spec}': {mod_name} has no attribute {cls_name}")
    return cls


def _weights_for_attach(path: str, trust: bool) -> dict[str, Tensor]:
    from ..detect import detect

    family = detect(path)
    if family == "safetensors":
        m = load_safetensors(path)
    elif family == "torch.pickle":
        m = load_pickle(path, trust=trust)
    else:
        raise UnsupportedFormat(f"{path}: attaching an architecture needs a weights file (state_dict .pt/.pth/"
                                f".ckpt/.bin or .safetensors), not a {family} file")
    if m.weights is None:
        raise UnsupportedFormat(f"{path}: holds a whole model, not a state_dict; open it directly")
    return {w.name: w.tensor for w in m.weights}


def _match_keys(file_w: dict[str, Tensor], model_sd: dict) -> tuple[dict[str, Tensor], str | None]:
    """File weights renamed to the module's keys (stripping one common wrapper prefix if that fits)."""
    want = set(model_sd)
    if want <= set(file_w):
        return file_w, None
    prefixes = {k.split(".", 1)[0] + "." for k in file_w if "." in k}
    for p in sorted(prefixes):
        stripped = {k[len(p):]: v for k, v in file_w.items() if k.startswith(p)}
        if want <= set(stripped):
            return stripped, p
    return file_w, None


def attach_architecture(path: str, spec: str, kwargs: dict | None = None, input_shapes=None,
                        trust: bool = False, input_dtypes=None, save_to: str | None = None,
                        progress: Callable = _noop) -> Model:
    """Build ``spec`` (``package.module:Class``, run by the user's explicit choice) with ``kwargs``, load the
    weights of ``path`` strictly, export it with random inputs of ``input_shapes`` and return the same Model
    :func:`load_exported_program` gives for the exported program (``save_to`` keeps that ``.pt2``).
    """
    import torch

    progress(0.05, "reading weights")
    file_w = _weights_for_attach(path, trust)
    progress(0.2, f"building {spec}")
    cls = _import_class(spec, near=path)
    try:
        module = cls(**(kwargs or {}))
    except Exception as exc:
        from ...errors import one_line

        raise TensorbridgeError(f"architecture '{spec}': constructing it with {kwargs or {}} failed "
                                f"({one_line(exc)})") from None
    if not isinstance(module, torch.nn.Module):
        raise TensorbridgeError(f"architecture '{spec}': {type(module).__name__} is not a torch.nn.Module")
    model_sd = module.state_dict()
    file_w, stripped = _match_keys(file_w, model_sd)
    missing = [k for k in model_sd if k not in file_w]
    unexpected = [k for k in file_w if k not in model_sd]
    shapes = [f"{k} {list(file_w[k].shape)} vs {list(model_sd[k].shape)}" for k in model_sd
              if k in file_w and tuple(file_w[k].shape or ()) != tuple(model_sd[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {', '.join(unexpected[:3])})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {'; '.join(shapes[:2])}, file vs model)")
        raise ArchitectureMismatch(f"{path}: the weights do not fit {spec}: {'; '.join(parts)}; check the "
                                   f"class and its constructor arguments")
    progress(0.4, "loading weights")
    with torch.no_grad():
        state = {k: torch.from_numpy(np.ascontiguousarray(file_w[k].numpy())).to(model_sd[k].dtype)
                 for k in model_sd}
    module.load_state_dict(state, strict=True)
    model = _model_from_module(module, path, input_shapes, input_dtypes, progress, save_to=save_to)
    model.extra["architecture"] = spec
    if kwargs:
        model.extra["architecture_kwargs"] = kwargs
    if stripped:
        model.warnings.append(f"weight names had the prefix '{stripped}', which was removed to match {spec}")
    progress(1.0, "done")
    return model




# --------------------------------------------------------------------------------------------------
