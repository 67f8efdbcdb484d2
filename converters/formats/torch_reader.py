"""PyTorch readers: torch.export ``.pt2``, TorchScript, ``torch.save`` pickles and ``.safetensors``.

Trust model (what may run while a file is opened):

* ``.pt2`` (``torch.export.save``) is read from the archive's JSON and raw weight files by this module;
  ``torch.export.load`` is not used because in torch 2.13 it can run code from the file (it unpickles
  sample inputs and tensor-subclass weights with ``weights_only=False``, ``pickle.loads`` opaque
  constants and passes shape expressions to ``sympy.sympify``, which evaluates them). Reading it needs
  neither torch nor trust.
* ``torch.save`` files (``.pt/.pth/.ckpt/.bin``, zip or legacy) are read with a restricted unpickler: a
  small allow-list of tensor-rebuilding globals is implemented here, every other global becomes an inert
  placeholder that only records its name, arguments and state. No class from the file is imported and
  no function from it is called, so a Lightning checkpoint shows its weights and hyper-parameters
  without running its code (and without importing torch; tensors are memory-mapped from the archive).
  Only if that fails does torch's own ``torch.load(weights_only=True)`` get a try. A file whose top
  object is a pickled Python object (a whole ``nn.Module``) needs ``trust=True``, which loads it with
  ``torch.load(weights_only=False)``; without trust it raises :class:`TrustRequired`. A module stored
  *inside* a checkpoint dict shows the weights found in its pickled state.
* TorchScript archives are checked first (:mod:`converters.safety.torchscript`: no scripted
  ``__setstate__``, which ``torch.jit.load`` would run, no operator with effects outside the model such
  as ``torch.from_file``, every pickle pre-scanned), then loaded with ``torch.jit.load``; anything else
  needs trust. TorchScript code is compiled by TorchScript itself and can only call TorchScript
  operators (no Python builtins or imports). The forward graph is never run.
* ``.safetensors`` holds no code; only the header is read until a weight is asked for.

Every reader returns a :class:`converters.graph.Model`; weights are lazy :class:`Tensor` objects whose
loader returns a numpy array (``bfloat16`` becomes ``float32``; ``Tensor.dtype`` keeps the stored name).
"""
from __future__ import annotations

import collections
import importlib
import importlib.util
import io
import json
import os
import pickle
import re
import shutil
import struct
import sys
import tempfile
import zipfile
from typing import Any, Callable

import numpy as np

from ..errors import CorruptFile, ResourceLimit, TensorbridgeError, TrustRequired, UnsupportedFormat
from ..graph import Graph, Model, Node, Tensor, Value, WeightEntry
from ..safety import archives, pickles
from ..scopes import scope_from_module_chain

__all__ = ["load_exported_program", "load_torchscript", "load_pickle", "load_safetensors",
           "attach_architecture", "attach_task", "ArchitectureMismatch"]


class ArchitectureMismatch(TensorbridgeError):
    """The weights do not fit the given architecture (missing/unexpected keys, shape mismatches)."""


def _noop(fraction=None, message=""):
    pass


# --------------------------------------------------------------------------------------------------
# dtype decoding shared by all readers
# --------------------------------------------------------------------------------------------------

# torch._export.serde.schema.ScalarType (stable, versioned schema)
_SCHEMA_DTYPES = {
    1: "uint8", 2: "int8", 3: "int16", 4: "int32", 5: "int64", 6: "float16", 7: "float32", 8: "float64",
    9: "complex32", 10: "complex64", 11: "complex128", 12: "bool", 13: "bfloat16", 28: "uint16",
    29: "float8_e4m3fn", 30: "float8_e5m2", 31: "float8_e4m3fnuz", 32: "float8_e5m2fnuz",
    33: "float8_e8m0fnu", 34: "uint32", 35: "uint64",
}

_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64", "ComplexDoubleStorage": "complex128",
    "QInt8Storage": "int8", "QUInt8Storage": "uint8", "QInt32Storage": "int32",
    "QUInt4x2Storage": "uint8", "QUInt2x4Storage": "uint8", "UntypedStorage": "uint8",
}

_ITEMSIZE = {"bfloat16": 2, "complex32": 4, "bool": 1}


def _itemsize(dtype: str) -> int:
    if dtype in _ITEMSIZE:
        return _ITEMSIZE[dtype]
    if dtype.startswith("float8"):
        return 1
    return np.dtype(dtype).itemsize


def _storage_numpy_dtype(dtype: str, byteorder: str = "little") -> np.dtype:
    """The numpy dtype used to view raw bytes of ``dtype`` (bf16 as uint16, float8 as uint8)."""
    if dtype == "bfloat16":
        base = np.dtype("uint16")
    elif dtype.startswith("float8"):
        base = np.dtype("uint8")
    elif dtype == "complex32":
        base = np.dtype("float16")  # pairs; reshaped below
    else:
        base = np.dtype(dtype)
    return base.newbyteorder("<" if byteorder == "little" else ">") if base.itemsize > 1 else base


def _finish_dtype(arr: np.ndarray, dtype: str) -> np.ndarray:
    """Convert a raw view to an array numpy can compute with (bf16 -> float32, float8 via ml_dtypes)."""
    if dtype == "bfloat16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    if dtype.startswith("float8"):
        try:
            import ml_dtypes
        except ImportError as exc:  # pragma: no cover - ml_dtypes comes with TensorFlow
            raise ValueError(f"reading {dtype} weights needs the ml_dtypes package") from exc
        name = {"float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
                "float8_e4m3fnuz": "float8_e4m3fnuz", "float8_e5m2fnuz": "float8_e5m2fnuz",
                "float8_e8m0fnu": "float8_e8m0fnu"}[dtype]
        return arr.view(getattr(ml_dtypes, name)).astype(np.float32)
    if arr.dtype.byteorder == ">":
        return arr.astype(arr.dtype.newbyteorder("="))
    return np.array(arr, copy=True) if not arr.flags.owndata else arr


def _strided(buf: np.ndarray, dtype: str, shape, strides, offset: int, byteorder: str = "little") -> np.ndarray:
    """Elements of ``shape`` at element ``strides``/``offset`` of a raw byte buffer, as a new array."""
    nd = _storage_numpy_dtype(dtype, byteorder)
    flat = np.frombuffer(buf, dtype=nd) if not isinstance(buf, np.ndarray) else buf.view(nd)
    shape = tuple(int(s) for s in shape)
    if strides is None:
        strides = _contiguous_strides(shape)
    n = int(np.prod(shape)) if shape else 1
    if n == 0:
        return _finish_dtype(np.zeros(shape, dtype=nd), dtype)
    last = offset + sum((s - 1) * st for s, st in zip(shape, strides))
    if offset < 0 or last >= flat.size:
        raise ValueError(f"tensor data out of range ({last + 1} elements needed, {flat.size} stored)")
    view = np.lib.stride_tricks.as_strided(flat[offset:], shape=shape,
                                           strides=tuple(int(s) * nd.itemsize for s in strides),
                                           writeable=False)
    return _finish_dtype(np.array(view, copy=True), dtype)


def _contiguous_strides(shape) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= max(int(s), 1)
    return tuple(reversed(out))


class _ZipEntry:
    """Raw bytes of one archive member, memory-mapped when stored uncompressed (torch always does)."""

    def __init__(self, path: str, name: str):
        self.path, self.name = path, name
        self._arr = None

    def array(self) -> np.ndarray:
        if self._arr is None:
            info = _zip_index(self.path).get(self.name)
            if info is None:
                raise ValueError(f"archive member {self.name} is missing")
            compress_type, header_offset, size = info
            if compress_type == zipfile.ZIP_STORED and size > 0:
                with open(self.path, "rb") as f:
                    f.seek(header_offset)
                    hdr = f.read(30)
                if hdr[:4] != b"PK\x03\x04":
                    raise ValueError(f"damaged archive member {self.name}")
                n_name, n_extra = struct.unpack("<HH", hdr[26:30])
                start = header_offset + 30 + n_name + n_extra
                self._arr = np.memmap(self.path, dtype=np.uint8, mode="r", offset=start, shape=(size,))
            else:
                with zipfile.ZipFile(self.path) as z:  # read up to the declared size only (see archives)
                    self._arr = np.frombuffer(archives.read_member(self.path, z, self.name, size),
                                              dtype=np.uint8)
        return self._arr


_ZIP_INDEX: dict[tuple, dict[str, tuple[int, int, int]]] = {}


def _zip_index(path: str) -> dict[str, tuple[int, int, int]]:
    """member name -> (compress type, local header offset, size), parsed once per file version: reading
    the central directory again for every weight would make loading all weights quadratic."""
    st = os.stat(path)
    key = (os.path.abspath(path), st.st_mtime_ns, st.st_size)
    idx = _ZIP_INDEX.get(key)
    if idx is None:
        with zipfile.ZipFile(path) as z:
            idx = {i.filename: (i.compress_type, i.header_offset, i.file_size) for i in z.infolist()}
        if len(_ZIP_INDEX) > 64:
            _ZIP_INDEX.clear()
        _ZIP_INDEX[key] = idx
    return idx


def _open_zip(path: str, what: str) -> zipfile.ZipFile:
    return archives.open_zip(path, f"{what} archive")


# JSON and text members of a .pt2 (the program, configs) are never near this size.
_MAX_JSON_MEMBER = 2 * 1024 ** 3


# --------------------------------------------------------------------------------------------------
# torch.export .pt2, read from its JSON (no pickle, no eval)
# --------------------------------------------------------------------------------------------------

_SYMBOL_RE = re.compile(r"Symbol\('([^']+)'[^)]*\)")
_INTEGER_RE = re.compile(r"Integer\((-?\d+)\)")


def _sym_str(expr: str) -> str:
    """``Symbol('s77', positive=True, integer=True)`` -> ``s77``; compound expressions keep their shape."""
    m = _SYMBOL_RE.fullmatch(expr.strip())
    if m:
        return m.group(1)
    return _INTEGER_RE.sub(r"\1", _SYMBOL_RE.sub(r"\1", expr))


def _schema_dim(d: dict):
    if "as_int" in d:
        return int(d["as_int"])
    if "as_expr" in d:
        return _sym_str(d["as_expr"].get("expr_str", "?"))
    return None


def _schema_shape(meta: dict | None):
    if not meta or meta.get("sizes") is None:
        return None
    return tuple(_schema_dim(d) for d in meta["sizes"])


def _schema_dtype(meta: dict | None):
    return None if not meta else _SCHEMA_DTYPES.get(meta.get("dtype"))


def _split_meta(item: str) -> list[str]:
    """Split ``key,path,type`` on commas outside brackets (module paths may hold ``[0]``)."""
    out, start, depth = [], 0, 0
    for i, c in enumerate(item):
        if c in "[(":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(item[start:i])
            start = i + 1
    out.append(item[start:])
    return out


def _module_stack(meta: dict) -> list[tuple[str, str]]:
    """``nn_module_stack`` metadata -> [(module path, class)], outermost first."""
    text = meta.get("nn_module_stack") if meta else None
    if not text:
        return []
    out = []
    for item in text.split(";"):
        parts = _split_meta(item)
        if len(parts) >= 3:
            out.append((parts[1], parts[2]))
    return out


def _target_parts(target: str) -> tuple[str, str, str]:
    """``torch.ops.aten.conv2d.default`` -> (domain 'aten', op 'conv2d', full 'aten.conv2d.default')."""
    t = target
    if t.startswith("torch.ops."):
        t = t[len("torch.ops."):]
        parts = t.split(".")
        if len(parts) >= 2:
            return parts[0], parts[1], t
        return "", t, t
    if t.startswith("#"):  # extension operator "#namespace:op"
        ns, _, op = t[1:].partition(":")
        return ns, op or t, t
    if "." in t:
        dom, _, op = t.rpartition(".")
        return dom, op, t
    return "", t, t


class _Pt2GraphBuilder:
    """Turns one serialized FX graph (schema JSON) into a neutral :class:`Graph`."""

    def __init__(self, rename: dict[str, str]):
        self.rename = rename  # placeholder name -> weight FQN

    def ref(self, name: str) -> str:
        return self.rename.get(name, name)

    def build(self, g: dict, name: str = "") -> Graph:
        graph = Graph(name=name)
        for vname, meta in (g.get("tensor_values") or {}).items():
            n = self.ref(vname)
            graph.values[n] = Value(n, _schema_dtype(meta), _schema_shape(meta))
        for vname in (g.get("sym_int_values") or {}):
            graph.values.setdefault(vname, Value(vname, "int64", ()))
        for vname in (g.get("sym_float_values") or {}):
            graph.values.setdefault(vname, Value(vname, "float64", ()))
        for vname in (g.get("sym_bool_values") or {}):
            graph.values.setdefault(vname, Value(vname, "bool", ()))
        for i, node in enumerate(g.get("nodes") or []):
            graph.nodes.append(self.node(node, i))
        # (the main graph's inputs/outputs are replaced by the user inputs/outputs of the signature)
        names: list[str] = []
        for a in g.get("inputs") or []:
            self.collect_outputs(a, names)
        graph.inputs = [n for n in names if n]
        names = []
        for a in g.get("outputs") or []:
            self.collect_outputs(a, names)
        graph.outputs = [n for n in names if n]
        return graph

    def node(self, n: dict, index: int) -> Node:
        domain, op, full = _target_parts(str(n.get("target", "")))
        attrs: dict[str, Any] = {"target": full}
        inputs: list[str] = []
        subgraphs: dict[str, Graph] = {}
        for k, inp in enumerate(n.get("inputs") or []):
            arg_name = inp.get("name") or f"arg{k}"
            value = self.arg(inp.get("arg") or {}, inputs, subgraphs, arg_name)
            if value is not _REF:
                attrs[arg_name] = value
        outputs: list[str] = []
        for o in n.get("outputs") or []:
            self.collect_outputs(o, outputs)
        meta = n.get("metadata") or {}
        stack = _module_stack(meta)
        scope = scope_from_module_chain([p for p, _ in stack])
        if stack:
            attrs["module"] = stack[-1][0]
            attrs["module_class"] = stack[-1][1]
        name = n.get("name") or (outputs[0] if outputs and outputs[0] else f"{op}_{index}")
        return Node(name, op, inputs, outputs, attrs, scope, domain, subgraphs)

    def collect_outputs(self, o: dict, out: list[str]) -> None:
        if "as_tensor" in o:
            out.append(self.ref(o["as_tensor"]["name"]))
        elif "as_tensors" in o:
            out.extend(self.ref(t["name"]) for t in o["as_tensors"])
        elif "as_optional_tensors" in o:
            for t in o["as_optional_tensors"]:
                out.append(self.ref(t["as_tensor"]["name"]) if "as_tensor" in t else "")
        elif "as_sym_int" in o or "as_sym_float" in o or "as_sym_bool" in o:
            v = next(iter(o.values()))
            out.append(v.get("as_name", "") if isinstance(v, dict) else "")
        elif "as_custom_obj" in o:
            out.append(o["as_custom_obj"].get("name", ""))
        else:
            out.append("")

    def arg(self, a: dict, inputs: list[str], subgraphs: dict, arg_name: str):
        """Tensor references go to ``inputs`` (returns _REF); other arguments return their value."""
        if not a:
            return None
        tag, v = next(iter(a.items()))
        if tag == "as_tensor":
            inputs.append(self.ref(v["name"]))
            return _REF
        if tag == "as_tensors":
            names = [self.ref(t["name"]) for t in v]
            inputs.extend(names)
            return _REF
        if tag in ("as_optional_tensor",):
            if "as_tensor" in v:
                inputs.append(self.ref(v["as_tensor"]["name"]))
                return _REF
            inputs.append("")
            return _REF
        if tag == "as_optional_tensors":
            for t in v:
                inputs.append(self.ref(t["as_tensor"]["name"]) if "as_tensor" in t else "")
            return _REF
        if tag in ("as_sym_int", "as_sym_float", "as_sym_bool"):
            if isinstance(v, dict) and "as_name" in v:
                inputs.append(v["as_name"])
                return _REF
            return next(iter(v.values())) if isinstance(v, dict) else v
        if tag in ("as_sym_ints", "as_sym_floats", "as_sym_bools"):
            out = []
            for s in v:
                if "as_name" in s:
                    inputs.append(s["as_name"])
                    out.append(s["as_name"])
                else:
                    out.append(next(iter(s.values())))
            return out
        if tag == "as_graph":
            key = v.get("name") or arg_name
            subgraphs[key] = self.build(v.get("graph") or {}, key)
            return _REF
        if tag == "as_custom_obj":
            inputs.append(v.get("name", ""))
            return _REF
        if tag == "as_none":
            return None
        if tag == "as_scalar_type":
            return _SCHEMA_DTYPES.get(v, v)
        if tag == "as_device":
            return v.get("type") if v.get("index") is None else f"{v.get('type')}:{v.get('index')}"
        if tag == "as_float" and isinstance(v, str):
            return float(v) if v not in ("Infinity", "-Infinity", "NaN") else v
        return v


_REF = object()


def _pt2_root(names: list[str], path: str) -> tuple[str, str]:
    """(prefix, model name) of the archive: ``<prefix>models/<model>.json``."""
    candidates = [n for n in names if re.search(r"(^|/)models/[^/]+\.json$", n)]
    if not candidates:
        if "serialized_exported_program.json" in names:
            raise UnsupportedFormat(f"{path}: a .pt2 in the pre-2.7 torch.export layout; load and re-save it "
                                    f"with a current torch (torch.export.load then torch.export.save)")
        raise CorruptFile(f"{path}: a ZIP archive without models/*.json, so not a torch.export .pt2; "
                          f"it may be damaged, or an AOTInductor package (not supported)")
    pick = next((c for c in candidates if c.endswith("models/model.json")), candidates[0])
    prefix = pick[: pick.index("models/")]
    return prefix, pick[len(prefix) + len("models/"): -len(".json")]


def load_exported_program(path: str, *, trust: bool = False, progress: Callable = _noop, **options) -> Model:
    """Read a ``torch.export.save`` archive into a neutral graph without running anything from it.

    One node per ``call_function`` (``op_type`` is the aten op name, ``domain`` its namespace,
    ``attrs['target']`` the full overload); scopes come from ``nn_module_stack``; values carry the
    exported shapes (symbolic dims as their symbol names, e.g. ``s77``). Graph inputs/outputs are the
    user inputs/outputs; parameters, buffers and tensor constants are lazy initializers named by FQN.
    """
    progress(0.05, "reading archive")
    z = _open_zip(path, ".pt2")
    with z:
        names = z.namelist()
        prefix, model_name = _pt2_root(names, path)
        try:
            ep = json.loads(archives.read_member(path, z, f"{prefix}models/{model_name}.json",
                                                 _MAX_JSON_MEMBER, ".pt2 archive"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise CorruptFile(f"{path}: cannot read the program JSON ({exc}); the file may be damaged") from None
        weights_cfg = _read_json_member(z, f"{prefix}data/weights/{model_name}_weights_config.json")
        consts_cfg = _read_json_member(z, f"{prefix}data/constants/{model_name}_constants_config.json")
        byteorder = _read_text_member(z, f"{prefix}byteorder") or "little"
        other_models = sorted({n.split("models/", 1)[1][:-5] for n in names
                               if re.search(r"(^|/)models/[^/]+\.json$", n)} - {model_name})
    progress(0.3, "building graph")
    gm = ep.get("graph_module") or {}
    g = gm.get("graph") or {}
    sig = gm.get("signature") or {}
    tensor_values = g.get("tensor_values") or {}

    rename: dict[str, str] = {}
    stored: list[tuple[str, str, str]] = []  # (placeholder, fqn, kind)
    user_inputs: list[str] = []
    for spec in sig.get("input_specs") or []:
        kind, body = next(iter(spec.items()))
        arg = body.get("arg") or {}
        pname = arg.get("name") or (arg.get("as_tensor") or {}).get("name") \
            or (arg.get("as_sym_int") or {}).get("as_name")
        if kind == "user_input":
            if pname:
                user_inputs.append(pname)
        elif kind in ("parameter", "buffer", "tensor_constant"):
            fqn = body.get(f"{kind}_name") or pname
            rename[pname] = fqn
            stored.append((pname, fqn, kind))
        elif kind == "custom_obj":
            rename[pname] = body.get("custom_obj_name") or pname
    user_outputs, mutations = [], []
    for spec in sig.get("output_specs") or []:
        kind, body = next(iter(spec.items()))
        arg = body.get("arg") or {}
        oname = (arg.get("as_tensor") or {}).get("name") or (arg.get("as_sym_int") or {}).get("as_name") \
            or arg.get("name")
        if kind == "user_output" and oname:
            user_outputs.append(rename.get(oname, oname))
        elif kind in ("buffer_mutation", "user_input_mutation", "parameter_mutation"):
            mutations.append({"kind": kind, "value": oname,
                              "target": body.get("buffer_name") or body.get("user_input_name")
                              or body.get("parameter_name")})

    graph = _Pt2GraphBuilder(rename).build(g, name=model_name)
    graph.inputs = user_inputs
    graph.outputs = user_outputs

    progress(0.7, "indexing weights")
    if weights_cfg is None and any(k != "tensor_constant" for _, _, k in stored):
        warnings_pre = ["weights are stored in an older .pt2 layout (a pickle) that is not read without "
                        "running code; shapes are shown, values are not — re-save with a current torch"]
    else:
        warnings_pre = []
    w_entries = (weights_cfg or {}).get("config") or {}
    c_entries = (consts_cfg or {}).get("config") or {}
    warnings: list[str] = warnings_pre
    stored_at: dict[tuple, str] = {}  # tied weights are saved once and listed under each name
    for pname, fqn, kind in stored:
        meta = tensor_values.get(pname)
        entry, folder = (w_entries.get(fqn), "weights") if fqn in w_entries else (c_entries.get(fqn), "constants")
        tmeta = (entry or {}).get("tensor_meta") or meta
        dtype, shape = _schema_dtype(tmeta), _schema_shape(tmeta)
        loader = None
        if entry and not entry.get("use_pickle") and tmeta:
            loader = _pt2_loader(path, f"{prefix}data/{folder}/{entry['path_name']}", tmeta, byteorder)
        elif entry and entry.get("use_pickle"):
            warnings.append(f"weight {fqn} is a pickled tensor subclass; its values are not read without trust")
        alias = None
        if entry and entry.get("path_name"):
            key = (folder, entry["path_name"], json.dumps(tmeta.get("storage_offset")), json.dumps(tmeta.get("sizes")),
                   json.dumps(tmeta.get("strides"))) if tmeta else (folder, entry["path_name"])
            first = stored_at.setdefault(key, fqn)
            alias = None if first == fqn else first
        graph.initializers[fqn] = Tensor(fqn, dtype, shape, loader,
                                         kind="constant" if kind == "tensor_constant" else kind, alias_of=alias)
        graph.values[fqn] = Value(fqn, dtype, shape)

    extra: dict[str, Any] = {
        "torch_version": ep.get("torch_version"),
        "schema_version": ep.get("schema_version"),
        "opset_version": ep.get("opset_version"),
        "buffer_tensors": sum(1 for _, _, k in stored if k == "buffer"),
        "parameter_tensors": sum(1 for _, _, k in stored if k == "parameter"),
        "constant_tensors": sum(1 for _, _, k in stored if k == "tensor_constant"),
    }
    ranges = ep.get("range_constraints") or {}
    if ranges:
        extra["dynamic_dims"] = {_sym_str(k): [r.get("min_val"), r.get("max_val")] for k, r in ranges.items()}
    if mutations:
        extra["mutations"] = mutations
    if other_models:
        extra["other_programs"] = other_models
        warnings.append(f"the archive holds {len(other_models) + 1} programs; showing '{model_name}'")
    progress(1.0, "done")
    return Model("torch.export", path, graph=graph, extra=extra, warnings=warnings)


def _read_json_member(z: zipfile.ZipFile, name: str):
    if name not in z.NameToInfo:
        return None
    try:
        return json.loads(archives.read_member(z.filename, z, name, _MAX_JSON_MEMBER))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        text = " ".join(str(exc).split())[:160]
        raise CorruptFile(f"{z.filename}: cannot read {name} ({text}); the file may be damaged") from None


def _read_text_member(z: zipfile.ZipFile, name: str) -> str | None:
    if name not in z.NameToInfo:
        return None
    return archives.read_member(z.filename, z, name, 4096).decode("utf-8", "replace").strip()


def _pt2_loader(path: str, member: str, tmeta: dict, byteorder: str):
    dtype = _schema_dtype(tmeta)
    shape = _schema_shape(tmeta)
    strides = [_schema_dim(d) for d in tmeta.get("strides") or []] or None
    offset = _schema_dim(tmeta.get("storage_offset") or {"as_int": 0}) or 0
    entry = _ZipEntry(path, member)

    def load():
        if dtype is None or shape is None or any(not isinstance(d, int) for d in shape):
            raise ValueError(f"weight {member} has no static shape/dtype")
        if strides is not None and any(not isinstance(s, int) for s in strides):
            raise ValueError(f"weight {member} has symbolic strides")
        return _strided(entry.array(), dtype, shape, strides, int(offset), byteorder)

    return load


# --------------------------------------------------------------------------------------------------
# torch.save pickles: restricted unpickler
# --------------------------------------------------------------------------------------------------

class PickledObject:
    """An object the file would build by running code (importing a class, calling a function).

    Kept as inert data: the global's name, the arguments it would be called with and the state it
    would receive. Nothing of it is ever called.
    """

    _tb_module = ""
    _tb_name = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._tb_args = args
        obj._tb_kwargs = kwargs
        obj._tb_state = None
        obj._tb_items = []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._tb_state = state

    def __call__(self, *args, **kwargs):
        # a placeholder the pickle then calls (functools.partial(...)(...), a factory's result): one more
        # inert record of what would have been called
        return _placeholder(self._tb_module, f"{self._tb_name}(...)")(*args, **kwargs)

    # pickle appends/setitems on list/dict subclasses
    def append(self, x):
        self._tb_items.append(x)

    def extend(self, xs):
        self._tb_items.extend(xs)

    def __setitem__(self, k, v):
        self._tb_items.append((k, v))

    @classmethod
    def qualname(cls) -> str:
        return f"{cls._tb_module}.{cls._tb_name}"

    def __repr__(self) -> str:
        return f"<pickled {self.qualname()}>"


class _TensorRef:
    """A tensor as stored in a torch.save file: a storage plus shape/stride/offset, read on demand."""

    def __init__(self, storage: "_StorageRef", offset: int, shape, stride, is_param: bool = False):
        self.storage, self.offset = storage, int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.stride = tuple(int(s) for s in stride) if stride is not None else None
        self.is_param = is_param

    @property
    def dtype(self) -> str | None:
        return self.storage.dtype if self.storage is not None else None

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def numpy(self) -> np.ndarray:
        if self.storage is None:
            raise ValueError("this tensor has no stored data (a meta tensor)")
        return _strided(self.storage.array(), self.storage.dtype, self.shape, self.stride, self.offset,
                        self.storage.byteorder)


class _StorageRef:
    def __init__(self, dtype: str, numel: int, reader: Callable[[], np.ndarray], byteorder: str = "little"):
        self.dtype, self.numel, self._reader, self.byteorder = dtype, int(numel), reader, byteorder

    def array(self) -> np.ndarray:
        return self._reader()


class _DtypeMarker:
    """What ``torch.FloatStorage`` / ``torch.float32`` become in the restricted unpickler."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def __repr__(self):
        return f"torch.{self.dtype}"


_TORCH_DTYPE_NAMES = {
    "float32": "float32", "float": "float32", "float64": "float64", "double": "float64",
    "float16": "float16", "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32", "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8",
    "bool": "bool", "complex64": "complex64", "complex128": "complex128", "uint16": "uint16",
    "uint32": "uint32", "uint64": "uint64", "float8_e4m3fn": "float8_e4m3fn", "float8_e5m2": "float8_e5m2",
    "qint8": "int8", "quint8": "uint8", "qint32": "int32",
}


def _checked_storage(storage) -> "_StorageRef":
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError(f"a tensor without stored data ({type(storage).__name__})")
    return storage


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(_checked_storage(storage), storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorRef(_checked_storage(storage), storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=True, backward_hooks=None, state=None):
    if isinstance(data, _TensorRef):
        data.is_param = True
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    # Tensor subclasses: rebuild the plain tensor only if the inner function is one we implement.
    if callable(func) and not isinstance(func, type):
        return func(*args)
    return PickledObject.__new__(_placeholder("torch._tensor", "_rebuild_from_type_v2"), func, new_type, args)


def _rebuild_meta_tensor_no_storage(dtype, size, stride, requires_grad=False):
    d = dtype.dtype if isinstance(dtype, _DtypeMarker) else None
    t = _TensorRef(None, 0, size, stride)
    t.meta_dtype = d
    return t


def _rebuild_qtensor(storage, storage_offset, size, stride, quantizer_params, requires_grad, backward_hooks):
    # The integer representation; scale/zero point are not applied.
    return _TensorRef(_checked_storage(storage), storage_offset, size, stride)


def _rebuild_device_tensor_from_numpy(data, dtype, device, requires_grad):
    return np.asarray(data)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"refusing codec {encoding!r}")
    import codecs

    return codecs.encode(obj, encoding, errors)


def _torch_device(*args):
    return ":".join(str(a) for a in args)


def _torch_size(*args):
    return tuple(args[0]) if len(args) == 1 else tuple(args)


# No bytes/bytearray: called with a huge int they allocate that much memory.
_SAFE_BUILTINS = {"set": set, "frozenset": frozenset, "slice": slice, "complex": complex,
                  "int": int, "float": float, "bool": bool, "str": str, "tuple": tuple, "list": list,
                  "dict": dict}

_PLACEHOLDERS: dict[tuple[str, str], type] = {}


def _placeholder(module: str, name: str) -> type:
    key = (module, name)
    cls = _PLACEHOLDERS.get(key)
    if cls is None:
        safe = re.sub(r"\W", "_", name) or "obj"
        cls = type(safe, (PickledObject,), {"_tb_module": module, "_tb_name": name})
        _PLACEHOLDERS[key] = cls
    return cls


def _numpy_global(module: str, name: str):
    # The few numpy globals that plain arrays and scalars need (the same ones torch's weights_only allows).
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
        mod = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
        return getattr(mod, name)
    if module == "numpy" and name in ("ndarray", "dtype"):
        return getattr(np, name)
    if module.startswith("numpy") and name.endswith("DType") and module.endswith("dtypes"):
        return getattr(np.dtypes, name, None)
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors and plain data; every other global becomes an inert :class:`PickledObject`."""

    def __init__(self, file, storages: Callable[[tuple], Any] | None):
        super().__init__(file, encoding="utf-8")
        self._storages = storages
        self.unknown_globals: dict[str, int] = {}

    def find_class(self, module: str, name: str):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        if module == "_codecs" and name == "encode":
            return _codecs_encode
        if module == "torch._utils":
            fn = {"_rebuild_tensor_v2": _rebuild_tensor_v2, "_rebuild_tensor": _rebuild_tensor,
                  "_rebuild_parameter": _rebuild_parameter, "_rebuild_parameter_with_state": _rebuild_parameter,
                  "_rebuild_qtensor": _rebuild_qtensor,
                  "_rebuild_meta_tensor_no_storage": _rebuild_meta_tensor_no_storage,
                  "_rebuild_device_tensor_from_numpy": _rebuild_device_tensor_from_numpy}.get(name)
            if fn is not None:
                return fn
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            return _rebuild_from_type_v2
        if module in ("torch", "torch.storage"):
            if name in _STORAGE_DTYPES:
                return _DtypeMarker(_STORAGE_DTYPES[name])
            if name in _TORCH_DTYPE_NAMES:
                return _DtypeMarker(_TORCH_DTYPE_NAMES[name])
            if name == "device":
                return _torch_device
            if name == "Size":
                return _torch_size
        if module == "torch.nn.parameter" and name == "Parameter":
            return lambda data=None, requires_grad=True: _rebuild_parameter(data)
        if module.startswith("numpy"):
            g = _numpy_global(module, name)
            if g is not None:
                return g
        qual = f"{module}.{name}"
        self.unknown_globals[qual] = self.unknown_globals.get(qual, 0) + 1
        return _placeholder(module, name)

    def persistent_load(self, pid):
        if self._storages is None:
            raise pickle.UnpicklingError("persistent id in a plain pickle")
        return self._storages(pid)


def _storage_dtype(marker) -> str:
    if isinstance(marker, _DtypeMarker):
        return marker.dtype
    return "uint8"


def _read_zip_pickle(path: str, z: zipfile.ZipFile) -> tuple[Any, dict[str, int]]:
    names = z.namelist()
    pkl = next((n for n in names if n.endswith("data.pkl") and n.count("/") <= 1), None)
    if pkl is None:
        raise CorruptFile(f"{path}: a ZIP archive without data.pkl, so not a torch.save file")
    prefix = pkl[: -len("data.pkl")]
    byteorder = _read_text_member(z, f"{prefix}byteorder") or "little"
    cache: dict[str, _StorageRef] = {}

    def storage(pid):
        # ('storage', storage_type, key, location, numel)
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        _, stype, key, _location, numel = pid[:5]
        key = str(key)
        if key not in cache:
            dtype = _storage_dtype(stype)
            entry = _ZipEntry(path, f"{prefix}data/{key}")
            if f"{prefix}data/{key}" not in name_set:
                raise pickle.UnpicklingError(f"storage data/{key} is missing from the archive")
            cache[key] = _StorageRef(dtype, numel, entry.array, byteorder)
        return cache[key]

    name_set = set(names)
    data = archives.read_member(path, z, pkl, _MAX_JSON_MEMBER, "torch.save archive")
    pickles.scan_bytes(data, path=path, what="checkpoint's data.pkl")
    up = _RestrictedUnpickler(io.BytesIO(data), storage)
    obj = up.load()
    return obj, up.unknown_globals


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_legacy_pickle(path: str) -> tuple[Any, dict[str, int], bool]:
    """Legacy (pre-1.6) torch.save stream, or a bare pickle. Returns (object, unknown globals, is_torch)."""
    archives.require_regular_file(path, "torch.save file")
    with open(path, "rb") as f:
        magic, first = _scanned_load(f, path, None)
        if magic != _LEGACY_MAGIC:
            return magic, first.unknown_globals, False
        protocol, _ = _scanned_load(f, path, None)
        if protocol != 1001:
            raise CorruptFile(f"{path}: unsupported legacy torch.save protocol {protocol!r:.40}")
        _sys_info, _ = _scanned_load(f, path, None)
        storages: dict[str, _StorageRef] = {}
        pending: dict[str, tuple[str, int]] = {}

        def storage(pid):
            if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
                raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
            _, stype, key, _location, numel = pid[:5]
            view = pid[5] if len(pid) > 5 else None
            key = str(key)
            if key not in storages:
                ref = _StorageRef(_storage_dtype(stype), numel, lambda k=key: _legacy_data[k])
                storages[key] = ref
                pending[key] = (ref.dtype, int(numel))
            if view is not None:
                # (view_key, offset, size): a storage slice in very old files
                base = storages[key]
                _vkey, voff, vsize = view
                return _StorageRef(base.dtype, vsize,
                                   lambda b=base, o=int(voff), n=int(vsize): b.array()[o * _itemsize(b.dtype):
                                                                                      (o + n) * _itemsize(b.dtype)])
            return storages[key]

        obj, main = _scanned_load(f, path, storage)
        keys, _ = _scanned_load(f, path, None)
        if not isinstance(keys, (list, tuple)):
            raise CorruptFile(f"{path}: the legacy torch.save storage list is damaged")
        start = f.tell()
    size = os.path.getsize(path)
    offsets: dict[str, tuple[int, int]] = {}
    pos = start
    with open(path, "rb") as f:
        for key in keys:
            f.seek(pos)
            head = f.read(8)
            if len(head) < 8:
                raise CorruptFile(f"{path}: truncated (storage {key} is missing); re-save or re-download it")
            (numel,) = struct.unpack("<q", head)
            dtype = pending.get(str(key), ("uint8", 0))[0]
            nbytes = numel * _itemsize(dtype)
            if pos + 8 + nbytes > size:
                raise CorruptFile(f"{path}: truncated (storage {key} is cut short); re-save or re-download it")
            offsets[str(key)] = (pos + 8, nbytes)
            pos += 8 + nbytes
    _legacy_data = _LazyMap(path, offsets)
    return obj, main.unknown_globals, True


def _scanned_load(f, path: str, storages) -> tuple[Any, "_RestrictedUnpickler"]:
    """Pre-scan the next pickle in ``f`` (memo indices, sizes), then unpickle it restrictedly."""
    pos = f.tell()
    pickles.scan_stream(f, path=path, what="pickle")
    f.seek(pos)
    up = _RestrictedUnpickler(f, storages)
    return up.load(), up


class _LazyMap:
    def __init__(self, path, offsets):
        self.path, self.offsets = path, offsets

    def __getitem__(self, key):
        off, n = self.offsets[key]
        if n == 0:
            return np.zeros(0, np.uint8)
        return np.memmap(self.path, dtype=np.uint8, mode="r", offset=off, shape=(n,))


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
            text = " ".join(str(exc).split())[:200]
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
        from ..errors import one_line

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
# attach an architecture to a weights-only file
# --------------------------------------------------------------------------------------------------

def user_folders(path: str | None = None) -> list[str]:
    """Where a user's own model code lives: the checkpoint's folder, the folder they work in (the
    caller's, passed to workers, which run in their job folders) and this process's own."""
    out = []
    caller = os.environ.get("TENSORBRIDGE_CALLER_CWD")  # set for workers, whose own folder is the job's
    for d in (os.path.dirname(os.path.abspath(path)) if path else None, caller or os.getcwd()):
        if d and os.path.isdir(d) and d not in out:
            out.append(d)
    return out


def add_user_folders_to_path(path: str | None = None) -> None:
    # A console-script entry point does not put the working folder on sys.path the way ``python -m``
    # does, and workers run in their job folders: add the folders the user's modules live in.
    for d in user_folders(path):
        if d not in sys.path:
            sys.path.append(d)


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
        from ..errors import one_line

        raise TensorbridgeError(f"architecture '{spec}': importing {mod_name} failed ({one_line(exc)})") from None
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise TensorbridgeError(f"architecture '{spec}': {mod_name} has no attribute {cls_name}")
    return cls


def _weights_for_attach(path: str, trust: bool) -> dict[str, Tensor]:
    from .detect import detect

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
        from ..errors import one_line

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


def attach_task(params: dict, ctx) -> dict:
    """Worker task: params ``path``, ``spec``, ``kwargs``, ``input_shapes`` (+ optional ``input_dtypes``,
    ``trust``, ``save_to``); result as ``load`` gives (summary + ``model_json``)."""
    from ..jobs.builtin import model_result

    model = attach_architecture(params["path"], params["spec"], params.get("kwargs") or {},
                                params.get("input_shapes"), trust=bool(params.get("trust", False)),
                                input_dtypes=params.get("input_dtypes"), save_to=params.get("save_to"),
                                progress=ctx.progress)
    return model_result(model, ctx)


# --------------------------------------------------------------------------------------------------
# TorchScript
# --------------------------------------------------------------------------------------------------

def _ts_type(v) -> tuple[str | None, tuple | None]:
    t = v.type()
    try:
        kind = t.kind()
    except Exception:
        return None, None
    if kind == "TensorType":
        st = t.scalarType()
        dtype = _TS_SCALAR.get(st, st.lower() if st else None)
        try:
            sizes = t.sizes()
        except RuntimeError:
            sizes = None
        if sizes is None:  # after shape propagation: known dims, negative for unknown ones
            try:
                sym = t.symbolic_sizes()
            except RuntimeError:
                sym = None
            if sym is not None:
                return dtype, tuple(int(d) if d >= 0 else None for d in sym)
        return dtype, tuple(sizes) if sizes is not None else None
    return {"IntType": "int64", "FloatType": "float64", "BoolType": "bool"}.get(kind), \
        (() if kind in ("IntType", "FloatType", "BoolType") else None)


_TS_SCALAR = {"Float": "float32", "Double": "float64", "Half": "float16", "BFloat16": "bfloat16",
              "Long": "int64", "Int": "int32", "Short": "int16", "Char": "int8", "Byte": "uint8", "Bool": "bool"}


_HIERARCHY_RE = re.compile(r"(?:^|\.)(.+?)\(([^()]*)\)")


def _ts_scope(node, resolve) -> tuple[str, str | None]:
    """(scope, innermost module class) from an inlined node's module hierarchy.

    ``features(Sequential).0(Conv2d).SELF(Conv2d)`` -> (``features/0``, ``Conv2d``): each segment is one
    module call, which is the same rule the exported-program scopes follow. ``resolve`` turns a call
    path into full attribute names (a ModuleList element is recorded as ``0``, not ``blocks.0``).
    """
    try:
        text = node.getModuleHierarchy()
    except Exception:
        return "", None
    if not text:
        return "", None
    parts = [(n.strip("."), t) for n, t in _HIERARCHY_RE.findall(text)]
    parts = [(n, t) for n, t in parts if n and n not in ("SELF", "UNKNOWN_INSTANCE")
             and not n.endswith(".UNKNOWN_INSTANCE")]
    return resolve(tuple(n for n, _ in parts)), (parts[-1][1] if parts else None)


class _ModuleResolver:
    """Maps TorchScript call-hierarchy names to module attribute paths, looking inside ModuleList/Dict."""

    def __init__(self, root):
        self.root = root
        self.cache: dict[tuple, str] = {}

    def __call__(self, names: tuple) -> str:
        if names not in self.cache:
            mod, segs = self.root, []
            for name in names:
                children = dict(mod.named_children()) if mod is not None else {}
                if name in children:
                    segs.append(name)
                    mod = children[name]
                    continue
                found = None
                for cname, child in children.items():
                    sub = dict(child.named_children())
                    if name in sub and cname not in names:
                        found = (f"{cname}.{name}", sub[name])
                        break
                if found:
                    segs.append(found[0])
                    mod = found[1]
                else:
                    segs.append(name)
                    mod = None
            self.cache[names] = "/".join(segs)
        return self.cache[names]

    def attr(self, path: str):
        obj = self.root
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj


class _TsWalker:
    """Walks an inlined TorchScript graph: constants and literal lists fold into attributes, attribute
    reads of parameters/buffers become references to the state-dict names, blocks become subgraphs."""

    def __init__(self, root):
        self.graph = Graph(name=root.original_name)
        self.resolve = _ModuleResolver(root)
        self.node_names: dict[str, int] = {}
        self.consts: dict = {}
        self.env: dict = {}
        self.module_of: dict = {}

    def node_name(self, scope: str, op: str) -> str:
        base = f"{scope}/{op}" if scope else op
        k = self.node_names.get(base, 0)
        self.node_names[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def name(self, v) -> str:
        return self.env.get(v) or v.debugName()

    def walk(self, nodes, target: Graph) -> None:
        for n in nodes:
            kind = n.kind()
            outs = list(n.outputs())
            if kind == "prim::Constant":
                try:
                    self.consts[outs[0]] = outs[0].toIValue()
                except Exception:
                    self.consts[outs[0]] = None
                continue
            if kind == "prim::GetAttr" and n.inputsAt(0) in self.module_of:
                base = self.module_of[n.inputsAt(0)]
                full = f"{base}.{n.s('name')}" if base else n.s("name")
                tkind = outs[0].type().kind()
                if tkind == "ClassType":
                    self.module_of[outs[0]] = full
                elif tkind in ("IntType", "FloatType", "BoolType", "StringType", "NoneType"):
                    # plain module attributes (``training``, sizes) are constants of the saved module
                    try:
                        self.consts[outs[0]] = self.resolve.attr(full)
                    except AttributeError:
                        self.consts[outs[0]] = None
                else:
                    self.env[outs[0]] = full
                    if full not in self.graph.values:
                        dtype, shape = _ts_type(outs[0])
                        self.graph.values[full] = Value(full, dtype, shape)
                continue
            if kind == "prim::ListConstruct" and all(i in self.consts for i in n.inputs()):
                self.consts[outs[0]] = [self.consts[i] for i in n.inputs()]
                continue
            node_inputs, attrs = [], {}
            labels = _schema_arg_names(n)
            for k, i in enumerate(n.inputs()):
                label = labels[k] if k < len(labels) else f"arg{k}"
                if i in self.consts:
                    attrs[label] = self.consts[i]
                elif i in self.module_of:
                    attrs[label] = f"<module {self.module_of[i] or 'self'}>"
                else:
                    node_inputs.append(self.name(i))
            out_names = []
            for o in outs:
                nm = self.name(o)
                dtype, shape = _ts_type(o)
                if dtype is None and shape is not None:  # shape propagation fills sizes, not dtypes
                    dtype = _ts_result_dtype(kind, [self.graph.values.get(i) for i in node_inputs])
                self.graph.values[nm] = Value(nm, dtype, shape)
                out_names.append(nm)
            ns, _, op = kind.partition("::")
            scope, cls = _ts_scope(n, self.resolve)
            if cls:
                attrs["module_class"] = cls
            subgraphs = {}
            for bi, block in enumerate(n.blocks()):
                sg = Graph(name=f"block{bi}")
                sg.inputs = [self.name(i) for i in block.inputs()]
                self.walk(block.nodes(), sg)
                sg.outputs = [self.name(o) for o in block.outputs() if o not in self.consts]
                subgraphs[f"block{bi}"] = sg
            target.nodes.append(Node(self.node_name(scope, op), op, node_inputs, out_names,
                                     _jsonable_attrs(attrs), scope, ns, subgraphs))


_TS_BOOL_OPS = {"eq", "ne", "lt", "le", "gt", "ge", "isnan", "isinf", "logical_and", "logical_or", "logical_not"}
_TS_INDEX_OPS = {"argmax", "argmin", "nonzero", "argsort"}


def _ts_result_dtype(kind: str, inputs) -> str | None:
    """The dtype of an op's result when only its shape is known: comparisons give bool, index ops int64,
    everything else the dtype of its first tensor input."""
    op = kind.partition("::")[2].rstrip("_")
    if op in _TS_BOOL_OPS:
        return "bool"
    if op in _TS_INDEX_OPS:
        return "int64"
    return next((v.dtype for v in inputs if v is not None and v.dtype), None)


def _schema_arg_names(n) -> list[str]:
    try:
        schema = n.schema()
    except Exception:
        return []
    if not schema or schema == "(no schema)":
        return []
    m = re.search(r"\((.*)\)\s*->", schema)
    if not m:
        return []
    names = []
    depth, cur = 0, ""
    for c in m.group(1):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        if c == "," and depth == 0:
            names.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        names.append(cur)
    out = []
    for a in names:
        a = a.split("=")[0].strip()
        if a == "*":
            continue
        out.append(a.split()[-1] if a.split() else a)
    return out


def _jsonable_attrs(attrs: dict) -> dict:
    out = {}
    for k, v in attrs.items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str, type(None))) for x in v):
            out[k] = list(v)
        else:
            out[k] = str(v)
    return out


def _propagate_ts_shapes(mod, graph, input_shapes, input_dtypes=None) -> list[str]:
    """Fill the inlined graph's tensor shapes from example input shapes, statically (TorchScript's own
    symbolic shape analysis; nothing runs). Returns warnings."""
    import torch

    ins = list(graph.inputs())[1:]
    if len(input_shapes) != len(ins):
        return [f"{len(input_shapes)} input shape(s) given for {len(ins)} input(s); shapes not propagated"]
    for i, (v, shape) in enumerate(zip(ins, input_shapes)):
        dt = getattr(torch, (input_dtypes or [None] * len(ins))[i] or "float32")
        v.setType(torch._C.TensorType.create_from_tensor(torch.empty([int(d) for d in shape], dtype=dt,
                                                                     device="meta")))
    objs = {list(graph.inputs())[0]: mod}
    for n in graph.nodes():  # parameters and buffers: their real shapes
        if n.kind() == "prim::GetAttr" and n.inputsAt(0) in objs:
            try:
                o = getattr(objs[n.inputsAt(0)], n.s("name"))
            except AttributeError:
                continue
            objs[n.outputsAt(0)] = o
            if isinstance(o, torch.Tensor):
                n.outputsAt(0).setType(torch._C.TensorType.create_from_tensor(o))
    try:
        torch._C._jit_pass_propagate_shapes_on_graph(graph)
    except Exception as exc:
        from ..errors import one_line
        return [f"shape propagation stopped ({one_line(exc)[:160]}); some shapes are unknown"]
    return []


def load_torchscript(path: str, *, trust: bool = False, progress: Callable = _noop, **options) -> Model:
    """Load a ``torch.jit.save`` archive (without running its forward) into a neutral graph.

    Nodes come from the inlined forward graph; each node's scope is the module call it ran in
    (``features/0``, from TorchScript's module hierarchy); constants and literal lists become attributes;
    weights are the module's state dict. Shapes are known only where the archive recorded them.
    """
    from ..safety.torchscript import check_torchscript

    progress(0.05, "checking the archive's code")
    check_torchscript(path, trust=trust, action="read")
    import torch

    progress(0.1, "loading TorchScript archive")
    try:
        mod = torch.jit.load(path, map_location="cpu")
    except RuntimeError as exc:
        # torch quotes the archive's code after the first line ("Serialized File ... <--- HERE"): keep
        # only the reason itself
        first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        text = " ".join(first.split())[:200]
        raise CorruptFile(f"{path}: cannot load this TorchScript archive ({text}); it may be damaged or "
                          f"need custom operators that are not installed") from None
    progress(0.5, "walking the forward graph")
    walker = _TsWalker(mod)
    g = mod.inlined_graph
    shape_warnings = _propagate_ts_shapes(mod, g, options["input_shapes"], options.get("input_dtypes")) \
        if options.get("input_shapes") else []
    ins = list(g.inputs())
    walker.module_of[ins[0]] = ""
    for i in ins[1:]:
        name = i.debugName().split(".")[0]  # 'x.1' -> 'x': the argument's name in forward()
        walker.env[i] = name
        dtype, shape = _ts_type(i)
        walker.graph.values[name] = Value(name, dtype, shape)
    walker.graph.inputs = [walker.env[i] for i in ins[1:]]
    walker.walk(g.nodes(), walker.graph)
    walker.graph.outputs = [walker.name(o) for o in g.outputs() if o not in walker.consts]
    graph = walker.graph
    sd = mod.state_dict()
    params = {k for k, _ in mod.named_parameters()}
    seen_storage: dict = {}
    for k, t in sd.items():
        dtype = str(t.dtype).replace("torch.", "")
        graph.initializers[k] = Tensor(k, dtype, tuple(t.shape), lambda t=t: _torch_to_numpy(t),
                                       kind="parameter" if k in params else "buffer",
                                       alias_of=_alias(seen_storage, k, t))
        graph.values[k] = Value(k, dtype, tuple(t.shape))
    progress(1.0, "done")
    extra = {"module_class": mod.original_name}
    warnings = shape_warnings or ([] if options.get("input_shapes") else
                                  ["TorchScript files do not record shapes; give the input shapes "
                                   "(--input-shape 1,3,224,224) to see them on every edge"])
    return Model("torchscript", path, graph=graph, extra=extra, warnings=warnings)


# --------------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------------

_ST_DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
              "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32",
              "U64": "uint64", "BOOL": "bool", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
              "C64": "complex64"}


def load_safetensors(path: str, *, trust: bool = False, progress: Callable = _noop, **options) -> Model:
    """Read a ``.safetensors`` header (names, dtypes, shapes, metadata); tensors load lazily."""
    from safetensors import SafetensorError, safe_open

    progress(0.1, "reading header")
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            keys = list(f.keys())
            info = {}
            for k in keys:
                sl = f.get_slice(k)
                info[k] = (sl.get_dtype(), tuple(int(d) for d in sl.get_shape()))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptFile(f"{path}: cannot read this .safetensors file ({exc}); it may be damaged or "
                          f"truncated") from None
    # Data offsets from the header itself: numpy cannot hold bf16/fp8, so those are decoded here.
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    base = 8 + n
    weights = []
    first_at: dict[tuple, str] = {}
    for k in keys:
        st_dtype, shape = info[k]
        dtype = _ST_DTYPES.get(st_dtype, st_dtype.lower())
        start, end = header[k]["data_offsets"]
        alias = first_at.setdefault((start, end), k) if end > start else k
        weights.append(WeightEntry(k, Tensor(k, dtype, shape, _safetensors_loader(path, base + start,
                                                                                 end - start, dtype, shape),
                                             alias_of=None if alias == k else alias)))
    progress(1.0, "done")
    return Model("safetensors", path, weights=weights, extra={"metadata": metadata} if metadata else {})


def _safetensors_loader(path: str, offset: int, nbytes: int, dtype: str, shape):
    def load():
        if nbytes == 0:
            return np.zeros(shape, dtype=np.float32 if dtype == "bfloat16" else dtype)
        buf = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=(nbytes,))
        return _strided(buf, dtype, shape, None, 0)

    return load
