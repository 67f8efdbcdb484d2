"""Checkpoints (state dicts, Lightning .ckpt, torch.save files) as weights; trusted modules as graphs."""
from __future__ import annotations

import collections
import os
import pickle
import re
import shutil
import struct
import tempfile
import zipfile
from typing import Any, Callable

import numpy as np

from ...errors import CorruptFile, TensorbridgeError, TrustRequired, text_of
from ...graph import Graph, Model, Node, Tensor, Value, WeightEntry
from ...scopes import scope_from_module_chain
from .pt2 import load_exported_program
from .storage import _noop, _open_zip
from .unpickler import PickledObject, _DtypeMarker, _TensorRef, _read_legacy_pickle, _read_zip_pickle
from .user_code import add_user_folders_to_path, user_folders


_OPTIMIZER_KEYS = {"optimizer", "optimizers", "optimizer_states", "optimizer_state_dict", "optimizer_state",
                   "optim", "opt", "lr_schedulers", "lr_scheduler", "scheduler", "schedulers", "scaler",
                   "amp", "grad_scaler"}
_WRAPPER_KEYS = {"state_dict", "model_state_dict", "model", "module", "net", "network", "weights", "params",
                 "model_state", "state"}


def _is_tensor(x) -> bool:
    return isinstance(x, _TensorRef) or type(x).__module__ == "torch" and type(x).__name__ in ("Tensor",
                                                                                              "Parameter") \
        or (type(x).__name__ == "Parameter" and type(x).__module__ == "torch.nn.parameter")


def _flatten_tensors(obj, prefix: str, out: list, depth: int = 0, seen=None) -> None:
    """Every tensor reachable through dicts, lists and pickled modules' state, with dotted names."""
    if seen is None:
        seen = set()
    if depth > 50 or id(obj) in seen:
        return
    if _is_tensor(obj):
        out.append((prefix or "tensor", obj))
        return
    if isinstance(obj, (dict, collections.OrderedDict)):
        seen.add(id(obj))
        for k, v in obj.items():
            _flatten_tensors(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1, seen)
    elif isinstance(obj, (list, tuple)):
        seen.add(id(obj))
        for i, v in enumerate(obj):
            _flatten_tensors(v, f"{prefix}.{i}" if prefix else str(i), out, depth + 1, seen)
    elif isinstance(obj, PickledObject):
        seen.add(id(obj))
        st = obj._tb_state
        if isinstance(st, tuple) and len(st) == 2 and isinstance(st[0], dict):
            st = st[0]
        if isinstance(st, dict) and any(k in st for k in ("_parameters", "_buffers", "_modules")):
            # an nn.Module's pickled state: name weights as module paths do
            for key in ("_parameters", "_buffers"):
                for k, v in (st.get(key) or {}).items():
                    if v is not None:
                        _flatten_tensors(v, f"{prefix}.{k}" if prefix else k, out, depth + 1, seen)
            for k, v in (st.get("_modules") or {}).items():
                _flatten_tensors(v, f"{prefix}.{k}" if prefix else k, out, depth + 1, seen)
        elif st is not None:
            _flatten_tensors(st, prefix, out, depth + 1, seen)


# Items one _describe call renders at most: a pickle can share one list many times over (a 250-byte file
# can describe 100**6 items), so the rendering is bounded by items visited, not only by depth.
_DESCRIBE_BUDGET = 20_000


def _describe(obj, depth: int = 0, budget: list | None = None):
    """A JSON-friendly rendering of non-tensor data (hyper-parameters, placeholders), bounded in size."""
    if budget is None:
        budget = [_DESCRIBE_BUDGET]
    budget[0] -= 1
    if depth > 6 or budget[0] < 0:
        return "…"
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, bytes):
        return f"<{len(obj)} bytes>"
    if _is_tensor(obj):
        shape = list(obj.shape)
        return {"tensor": True, "shape": shape, "dtype": _tensor_dtype(obj)}
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 16 else {"array": True, "shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        items = list(obj.items())
        d = {str(k): _describe(v, depth + 1, budget) for k, v in items[:200]}
        if len(items) > 200:
            d["…"] = f"{len(items) - 200} more"
        return d
    if isinstance(obj, (list, tuple, set, frozenset)):
        seq = list(obj)
        out = [_describe(v, depth + 1, budget) for v in seq[:100]]
        if len(seq) > 100:
            out.append(f"… {len(seq) - 100} more")
        return out
    if isinstance(obj, PickledObject):
        d: dict[str, Any] = {"__class__": obj.qualname()}
        if obj._tb_args:
            d["args"] = _describe(list(obj._tb_args), depth + 1, budget)
        if obj._tb_kwargs:
            d["kwargs"] = _describe(obj._tb_kwargs, depth + 1, budget)
        if obj._tb_state is not None:
            d["state"] = _describe(obj._tb_state, depth + 1, budget)
        if obj._tb_items:
            d["items"] = _describe(obj._tb_items, depth + 1, budget)
        return d
    if isinstance(obj, _DtypeMarker):
        return repr(obj)
    return str(obj)


def _tensor_dtype(t) -> str | None:
    if isinstance(t, _TensorRef):
        return t.dtype or getattr(t, "meta_dtype", None)
    return str(t.dtype).replace("torch.", "")


def _tensor_entry(name: str, t, seen: dict | None = None) -> WeightEntry:
    alias = _alias(seen, name, t) if seen is not None else None
    if isinstance(t, _TensorRef):
        loader = t.numpy if t.storage is not None else None
        return WeightEntry(name, Tensor(name, _tensor_dtype(t), t.shape, loader,
                                        kind="parameter" if t.is_param else None, alias_of=alias))
    return WeightEntry(name, Tensor(name, _tensor_dtype(t), tuple(int(s) for s in t.shape),
                                    lambda t=t: _torch_to_numpy(t), alias_of=alias))


def _alias(seen: dict, name: str, t) -> str | None:
    """The first name under which the same stored data (storage, offset, shape, strides) appeared: tied
    weights (GPT-2's lm_head.weight = wte.weight) are one tensor saved under two names."""
    if isinstance(t, _TensorRef):
        key = (id(t.storage), t.offset, t.shape, t.stride)
    else:
        try:
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))
        except Exception:
            return None
        if key[0] == 0:  # meta or empty tensors share the null pointer
            return None
    first = seen.setdefault(key, name)
    return None if first == name else first


def _torch_to_numpy(t) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16 or t.dtype.is_floating_point and t.element_size() == 1:
        t = t.float()
    return t.numpy().copy()


def _count(tensors: list) -> int:
    return sum(t.numel if isinstance(t, _TensorRef) else int(t.numel()) for _, t in tensors)


def _state_dict_model(path: str, obj, unknown: dict[str, int], legacy: bool) -> Model:
    """Classify a checkpoint object into weights (dotted names) plus extra facts."""
    extra: dict[str, Any] = {"container": "legacy torch.save" if legacy else "torch.save zip"}
    warnings: list[str] = []
    weights_src = obj
    if isinstance(obj, dict):
        optim = {k: v for k, v in obj.items() if str(k) in _OPTIMIZER_KEYS}
        rest = {k: v for k, v in obj.items() if str(k) not in _OPTIMIZER_KEYS}
        holders = [k for k, v in rest.items() if _has_tensor(v)]
        if len(holders) == 1 and str(holders[0]) in _WRAPPER_KEYS and not _is_tensor(rest[holders[0]]):
            extra["weights_key"] = str(holders[0])
            weights_src = rest[holders[0]]
        else:
            weights_src = rest
        if optim:
            summary = {}
            for k, v in optim.items():
                ts: list = []
                _flatten_tensors(v, "", ts)
                summary[str(k)] = {"tensors": len(ts), "elements": _count(ts)}
                groups = _param_groups(v)
                if groups:
                    summary[str(k)]["param_groups"] = groups
            extra["optimizer"] = summary
        for k, v in rest.items():
            if k in holders:
                continue
            extra[str(k)] = _describe(v)
    tensors: list = []
    _flatten_tensors(weights_src, "", tensors)
    if isinstance(weights_src, dict) and not tensors:
        warnings.append("no tensors found outside optimizer state")
    if unknown:
        extra["pickled_classes"] = dict(sorted(unknown.items()))
        warnings.append("the file names Python classes or functions (see pickled_classes); they were not "
                        "imported or run, and are shown as data")
    seen: dict = {}
    weights = [_tensor_entry(n, t, seen) for n, t in tensors]
    return Model("torch.state_dict", path, weights=weights, extra=extra, warnings=warnings)


def _param_groups(v) -> list:
    """The hyper-parameters of an optimizer state dict (lr, betas, …) without the parameter indices."""
    states = v if isinstance(v, (list, tuple)) else [v]
    out = []
    for st in states:
        if isinstance(st, dict) and isinstance(st.get("param_groups"), list):
            for g in st["param_groups"]:
                if isinstance(g, dict):
                    out.append({str(k): _describe(x) for k, x in g.items() if k != "params"})
    return out[:16]


def _has_tensor(v, depth: int = 0, seen: set | None = None) -> bool:
    """Whether a tensor is reachable from ``v`` (each container visited once: pickles can share and nest
    one container in itself)."""
    if _is_tensor(v):
        return True
    if depth > 50:
        return False
    if seen is None:
        seen = set()
    if isinstance(v, (dict, list, tuple, PickledObject)):
        if id(v) in seen:
            return False
        seen.add(id(v))
    if isinstance(v, dict):
        return any(_has_tensor(x, depth + 1, seen) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_has_tensor(x, depth + 1, seen) for x in v)
    if isinstance(v, PickledObject):
        return _has_tensor(v._tb_state, depth + 1, seen)
    return False


def _read_torch_save(path: str) -> tuple[Any, dict[str, int], bool]:
    if zipfile.is_zipfile(path):
        z = _open_zip(path, "torch.save")
        with z:
            return (*_read_zip_pickle(path, z), False)
    return _read_legacy_pickle(path)


def load_pickle(path: str, *, trust: bool = False, progress: Callable = _noop, input_shapes=None,
                input_dtypes=None, **options) -> Model:
    """Open a ``torch.save`` file (zip or legacy) or a plain pickle.

    Without trust nothing from the file runs: a state dict / checkpoint becomes a weights-only Model
    (``torch.state_dict``; optimizer state summarised in ``extra['optimizer']``, other entries such as
    ``hyper_parameters`` shown as data). A pickled Python object (a whole ``nn.Module``) raises
    :class:`TrustRequired`. With ``trust=True`` such a file is loaded with ``torch.load``: a module
    becomes its module tree (``torch.module``), or, given ``input_shapes`` (e.g. ``[[1, 3, 224, 224]]``),
    its full ``torch.export`` graph.
    """
    progress(0.05, "reading pickle")
    try:
        obj, unknown, legacy = _read_torch_save(path)
    except TensorbridgeError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error, ValueError, KeyError,
            IndexError, TypeError, AttributeError, OverflowError) as exc:
        # Something this reader does not know (an exotic tensor type): torch's own weights-only
        # unpickler is just as safe, so let it try before calling the file damaged.
        obj = _torch_weights_only(path)
        if obj is None:
            text = text_of(exc)
            raise CorruptFile(f"{path}: cannot read this torch.save file ({type(exc).__name__}: {text}); "
                              f"it may be damaged or truncated") from None
        unknown, legacy = {}, not zipfile.is_zipfile(path)
    progress(0.6, "classifying")
    if isinstance(obj, PickledObject):
        if not trust:
            raise TrustRequired(
                f"{path}: contains a pickled Python object that {_what_runs(obj)} when loaded; open it with "
                f"--trust (or 'Trust and open' in the window) only if you trust its source, or save a "
                f"state_dict / torch.export .pt2 instead")
        return _load_trusted_object(path, progress, input_shapes, input_dtypes)
    model = _state_dict_model(path, obj, unknown, legacy)
    progress(1.0, "done")
    return model


def _what_runs(obj: PickledObject) -> str:
    """``calls posix.system('touch …')`` / ``builds a __main__.Net object``: what unpickling would do."""
    args = obj._tb_args
    plain = [a for a in args if isinstance(a, (str, int, float, bool, bytes))]
    if args and len(plain) == len(args):
        shown = ", ".join(repr(a)[:160] for a in args[:3])
        text = f"calls {obj.qualname()}({shown}{', …' if len(args) > 3 else ''})"
    elif args:
        text = f"calls {obj.qualname()}(…)"
    else:
        text = f"builds a {obj.qualname()} object (its class's code runs)"
    return "".join(c if c.isprintable() else "?" for c in text)


def _torch_weights_only(path: str):
    """``torch.load(weights_only=True)`` (torch's allow-list unpickler, runs no code from the file), or None."""
    try:
        import torch
    except ImportError:
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception:
        return None


def _load_trusted_object(path: str, progress, input_shapes, input_dtypes) -> Model:
    import torch

    progress(0.6, "loading with torch.load (trusted)")
    add_user_folders_to_path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as exc:
        raise TensorbridgeError(f"{path}: the pickled object needs the Python module '{exc.name}', which is "
                                f"not in {' or '.join(user_folders(path))} nor installed; put it there, add "
                                f"its folder to PYTHONPATH, or save a state_dict instead") from None
    except AttributeError as exc:
        m = re.search(r"Can't get attribute '(\w+)' on <module '(__main__|converters\.jobs\.worker)'", str(exc))
        if m:
            raise TensorbridgeError(
                f"{path}: the model's class {m.group(1)} was defined in the script that saved it (__main__), "
                f"so no module can provide it; move the class into a module file (e.g. model.py) and save "
                f"again, or save a state_dict and use Attach architecture with path/to/script.py:{m.group(1)}") \
                from None
        raise
    if isinstance(obj, torch.nn.Module):
        if input_shapes:
            return _model_from_module(obj, path, input_shapes, input_dtypes, progress)
        return _module_tree_model(obj, path)
    return _state_dict_model(path, obj if isinstance(obj, dict) else {"object": obj}, {}, False)


def _module_tree_model(module, path: str) -> Model:
    """One node per module that owns weights or has no children; no edges (inputs are unknown)."""
    import torch

    graph = Graph(name=type(module).__name__)
    containers = (torch.nn.ModuleList, torch.nn.ModuleDict)
    called: dict[str, bool] = {}
    seen_storage: dict = {}
    for name, mod in module.named_modules():
        called[name] = not isinstance(mod, containers)
    for name, mod in module.named_modules():
        own = [(n, t, "parameter") for n, t in mod.named_parameters(recurse=False)] + \
            [(n, t, "buffer") for n, t in mod.named_buffers(recurse=False)]
        if list(mod.children()) and not own:
            continue
        # The node stands for the module's own operations, so its scope includes the module itself
        # (as the ops of that module get in an exported graph); ModuleList/Dict are never called.
        parts = name.split(".") if name else []
        chain = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        scope = scope_from_module_chain([c for c in chain if called.get(c, True)])
        inputs = []
        for pname, t, kind in own:
            fqn = f"{name}.{pname}" if name else pname
            if t is None:
                continue
            graph.initializers[fqn] = Tensor(fqn, str(t.dtype).replace("torch.", ""), tuple(t.shape),
                                             lambda t=t: _torch_to_numpy(t), kind=kind,
                                             alias_of=_alias(seen_storage, fqn, t))
            graph.values[fqn] = Value(fqn, str(t.dtype).replace("torch.", ""), tuple(t.shape))
            inputs.append(fqn)
        cls = type(mod)
        graph.nodes.append(Node(name or cls.__name__, cls.__name__, inputs, [],
                                {"module": name, "module_class": f"{cls.__module__}.{cls.__qualname__}"},
                                scope, "module"))
    cls = type(module)
    return Model("torch.module", path, graph=graph,
                 extra={"module_class": f"{cls.__module__}.{cls.__qualname__}"},
                 warnings=["this is the module tree, not a traced graph: give input shapes (input_shapes="
                           "[[1, 3, 224, 224]]) to export the full graph with its edges and shapes"])


# --------------------------------------------------------------------------------------------------
# torch.export of a live module (trusted module or attached architecture)
# --------------------------------------------------------------------------------------------------

def _example_inputs(input_shapes, input_dtypes):
    import torch

    if not input_shapes or not all(isinstance(s, (list, tuple)) for s in input_shapes):
        raise TensorbridgeError("input shapes must be a list of shapes, e.g. [[1, 3, 224, 224]]")
    dtypes = list(input_dtypes or [])
    out = []
    gen = torch.Generator().manual_seed(0)
    for i, shape in enumerate(input_shapes):
        dt = getattr(torch, str(dtypes[i]), None) if i < len(dtypes) and dtypes[i] else torch.float32
        if not isinstance(dt, torch.dtype):
            raise TensorbridgeError(f"input dtype {dtypes[i]!r} is not a torch dtype; use e.g. float32, "
                                    f"int64, bool")
        shape = [int(d) for d in shape]
        if dt.is_floating_point:
            out.append(torch.randn(shape, generator=gen).to(dt))
        elif dt == torch.bool:
            out.append(torch.zeros(shape, dtype=dt))
        else:
            out.append(torch.zeros(shape, dtype=dt))
    return tuple(out)


def _model_from_module(module, path: str, input_shapes, input_dtypes, progress, save_to: str | None = None) -> Model:
    import torch

    progress(0.7, "exporting with torch.export")
    module = module.eval()
    args = _example_inputs(input_shapes, input_dtypes)
    try:
        ep = torch.export.export(module, args)
    except Exception as exc:  # export failures are the user's model meeting torch.export's limits
        from ...errors import one_line

        raise TensorbridgeError(f"{path}: torch.export could not trace the model with inputs "
                                f"{[list(a.shape) for a in args]} ({one_line(exc)[:300]}); check the input "
                                f"shapes and dtypes") from None
    # Read back what torch.export.save wrote, so the Model is exactly what opening that .pt2 gives.
    tmpdir = None if save_to else tempfile.mkdtemp(prefix="tensorbridge-export-")
    out = save_to or os.path.join(tmpdir, "exported.pt2")
    try:
        torch.export.save(ep, out)
        progress(0.85, "reading exported program")
        model = load_exported_program(out)
        if tmpdir is not None:
            # Weights come from the live program instead of the temporary file, which goes now (workers
            # end with os._exit, so an atexit clean-up would never run).
            live = {**ep.state_dict, **{k: v for k, v in ep.constants.items() if hasattr(v, "detach")}}
            for name, t in model.graph.initializers.items():
                if name in live:
                    t.loader = (lambda v=live[name]: _torch_to_numpy(v))
                else:
                    t.loader = None
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    model.path = path
    if save_to:
        model.extra["exported_pt2"] = save_to
    model.extra["example_input_shapes"] = [list(a.shape) for a in args]
    return model


# --------------------------------------------------------------------------------------------------
