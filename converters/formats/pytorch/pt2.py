"""torch.export ``.pt2`` archives, read from their JSON and raw weight files (no pickle, no eval)."""
from __future__ import annotations

import json
import re
from typing import Any, Callable


from ...errors import CorruptFile, UnsupportedFormat
from ...graph import Graph, Model, Node, Tensor, Value
from ...safety import archives
from ...scopes import scope_from_module_chain
from .storage import _MAX_JSON_MEMBER, _SCHEMA_DTYPES, _ZipEntry, _noop, _open_zip, _read_json_member, _read_text_member, _strided

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
