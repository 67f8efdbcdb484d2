"""TorchScript archives: checked first, then their inlined forward graph (nothing runs)."""
from __future__ import annotations

import re
from typing import Callable


from ...errors import CorruptFile, first_line
from ...graph import Graph, Model, Node, Tensor, Value
from .checkpoint import _alias, _torch_to_numpy
from .storage import _noop

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
        from ...errors import one_line
        return [f"shape propagation stopped ({one_line(exc)[:160]}); some shapes are unknown"]
    return []


def load_torchscript(path: str, *, trust: bool = False, progress: Callable = _noop, **options) -> Model:
    """Load a ``torch.jit.save`` archive (without running its forward) into a neutral graph.

    Nodes come from the inlined forward graph; each node's scope is the module call it ran in
    (``features/0``, from TorchScript's module hierarchy); constants and literal lists become attributes;
    weights are the module's state dict. Shapes are known only where the archive recorded them.
    """
    from ...safety.torchscript import check_torchscript

    progress(0.05, "checking the archive's code")
    check_torchscript(path, trust=trust, action="read")
    import torch

    progress(0.1, "loading TorchScript archive")
    try:
        mod = torch.jit.load(path, map_location="cpu")
    except RuntimeError as exc:
        # torch quotes the archive's code after the first line ("Serialized File ... <--- HERE"): keep
        # only the reason itself
        text = first_line(exc) or type(exc).__name__
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
