"""SavedModel reader: parses ``saved_model.pb`` (or ``.pbtxt``) and the variables checkpoint; runs nothing.

* Every signature (``signature_def``, except the ``__saved_model_init_op`` pseudo-signature) becomes a
  :class:`Graph` in ``Model.signatures``; ``Model.graph`` is ``serving_default`` (else the first one).
  Graph inputs and outputs are named by the signature keys (``image``, ``output_0``); shapes use ``None``
  for ``-1`` dims.
* The graph holds the ops that compute the signature outputs: starting from the output tensors it walks
  back through the top-level GraphDef, and every function call (``StatefulPartitionedCall``,
  ``PartitionedCall`` or a node whose op is a library function) is replaced by the body of the called
  function, recursively, so the user sees the layers' ops rather than one call node. A body node's
  ``scope`` is the call's scope joined with the node's own name prefix (``sequential/conv2d/Conv2D`` ->
  ``sequential/conv2d``); its ``name`` is prefixed by the call path so names stay unique.
* Bounded: a function body is copied once per call site, so calls fanning out k-fold over d levels would
  make k**d nodes from a few KB of file. Past :data:`NODE_BUDGET` emitted nodes (all signatures together),
  deeper than 64 nested calls, or on a recursive call, a call stays a single call node (op
  ``StatefulPartitionedCall``, attribute ``f`` names the function) and the model gets a warning: the
  user still sees the model, rather than an error or a worker out of memory.
* Files: ``saved_model.pb`` and ``variables/`` are read only as regular files inside the folder, with
  ``saved_model.pb`` below 2 GiB (:func:`converters.safety.savedmodel.read_saved_model`); a FIFO, a
  device or a link out of the folder is a one-line error.
* Filtered: ``NoOp`` nodes and control-dependency edges (``^node``), which carry no data. Kept:
  ``Identity`` and ``ReadVariableOp`` nodes, so node counts are the op counts of the inlined functions.
* Variables captured by a signature become graph initializers named by their object path
  (``conv1/kernel``), read lazily from ``variables/`` with ``tf.train.load_checkpoint``.
* Shapes come from the ``_output_shapes`` attributes TensorFlow stores on every node of a SavedModel
  written by TF 2. Where they are missing (stripped files, TF1 graphs), TensorFlow's static shape
  inference fills them: the graph / function bodies are imported into a ``tf.Graph`` (no session, no
  execution), which only runs each op's C++ shape function. Nothing from the model is executed: the
  reader needs TensorFlow's protobuf classes, its op registry (each op's outputs) and graph import.

Why one module of this size: most of it is one walk, :class:`_SignatureBuilder` (inlining, the node
budget, scopes and shapes share its state); the variables reader and protobuf helpers around it are
small and used by nothing else.

Why one module of this size: the walk over the GraphDef, the function inlining and the variable
reader share one model of the protobuf; they are read and changed together.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable

from ..errors import CorruptFile, UnsupportedFormat, text_of
from ..graph import Graph, Model, Node, Tensor, Value
from ..safety.savedmodel import read_saved_model

__all__ = ["load"]

_CALL_OPS = {"StatefulPartitionedCall", "PartitionedCall"}
_VAR_OPS = {"VarHandleOp", "VariableV2", "Variable"}
_INIT_SIG = "__saved_model_init_op"
# Expanding function calls copies a body per call site: calls that fan out k-fold over d levels emit
# k**d nodes from a few KB of file. Past this many emitted nodes (all signatures together), or deeper than
# _MAX_CALL_DEPTH nested calls, or on a recursive call, a call stays one call node (with a warning).
NODE_BUDGET = 100_000
_MAX_CALL_DEPTH = 64
_SHAPE_INFERENCE_SECONDS = 5.0  # re-importing function bodies for missing shapes stops after this


def load(path: str, *, trust: bool = False, progress: Callable = lambda *a: None, **options) -> Model:
    """Read a SavedModel folder (or its ``saved_model.pb``) into a Model with one graph per signature."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    pb = os.path.join(folder, "saved_model.pb")
    pbtxt = os.path.join(folder, "saved_model.pbtxt")
    if not os.path.lexists(pb) and not os.path.lexists(pbtxt):
        raise UnsupportedFormat(f"{path}: no saved_model.pb in this folder, so not a SavedModel; open a "
                                f"SavedModel folder or a model file")
    progress(0.02, "importing TensorFlow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    progress(0.1, "parsing saved_model.pb")
    # regular files only, no link out of the folder, at most 2 GiB: a FIFO, /dev/zero or a huge file
    # named saved_model.pb (or under variables/) is a one-line error, not a hang
    _pb_path, sm = read_saved_model(folder)
    if not sm.meta_graphs:
        raise CorruptFile(f"{path}: saved_model.pb holds no meta graph; the file is damaged or empty")
    mg = next((m for m in sm.meta_graphs if "serve" in m.meta_info_def.tags), sm.meta_graphs[0])

    model = Model("savedmodel", path)
    model.extra["tags"] = ",".join(mg.meta_info_def.tags)
    if mg.meta_info_def.tensorflow_version:
        model.extra["tensorflow_version"] = mg.meta_info_def.tensorflow_version
    reader = _VariableReader(folder, mg)
    lib = {f.signature.name: f for f in mg.graph_def.library.function}
    top = {n.name: n for n in mg.graph_def.node}
    sig_names = [k for k in mg.signature_def if k != _INIT_SIG]
    if not sig_names:
        model.warnings.append("the SavedModel has no signatures; nothing callable to show")
    budget = _Budget(int(options.get("node_budget") or NODE_BUDGET))
    for i, name in enumerate(sig_names):
        progress(0.15 + 0.8 * i / max(1, len(sig_names)), f"reading signature {name}")
        model.signatures[name] = _SignatureBuilder(name, mg.signature_def[name], top, lib, reader, mg,
                                                   budget).build()
    model.warnings.extend(budget.warnings())
    if model.signatures:
        model.graph = model.signatures.get("serving_default") or model.signatures[sig_names[0]]
    model.extra["signature_names"] = ",".join(sig_names)
    if reader.missing:
        if not os.path.isdir(os.path.join(folder, "variables")):
            why = "the variables/ folder is missing"
        elif reader.error:
            why = f"the checkpoint in variables/ cannot be read ({reader.error})"
        else:
            why = "they could not be matched to the checkpoint in variables/"
        model.warnings.append(f"{len(reader.missing)} variable(s) have no values: {why}; shapes and dtypes "
                              f"are shown, weight statistics are not")
    progress(1.0, "done")
    return model


# ---- variables --------------------------------------------------------------------------------------
class _VariableReader:
    """Maps captured variable handles to checkpoint keys and reads them on demand."""

    def __init__(self, folder: str, mg):
        self.prefix = os.path.join(folder, "variables", "variables")
        self.mg = mg
        self.missing: set[str] = set()
        self.error: str | None = None  # why the checkpoint could not be opened
        self._reader = None
        self._keys: dict[int, str] | None = None

    def reader(self):
        if self._reader is None:
            import tensorflow as tf

            try:
                self._reader = tf.train.load_checkpoint(self.prefix)
            except Exception as exc:
                self.error = text_of(exc) or type(exc).__name__
                raise
        return self._reader

    def keys_by_node(self) -> dict[int, str]:
        """Object-graph node id -> checkpoint key (the checkpoint's object graph uses the same ids)."""
        if self._keys is None:
            self._keys = {}
            try:
                from tensorflow.core.protobuf import trackable_object_graph_pb2

                g = trackable_object_graph_pb2.TrackableObjectGraph()
                g.ParseFromString(self.reader().get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
                for i, n in enumerate(g.nodes):
                    for a in n.attributes:
                        if a.name == "VARIABLE_VALUE":
                            self._keys[i] = a.checkpoint_key
            except Exception:  # no checkpoint or a TF1 one: keys fall back to node names
                pass
        return self._keys

    def tensor(self, name: str, node_id: int | None, fallback_key: str, dtype, shape) -> Tensor:
        key = self.keys_by_node().get(node_id) if node_id is not None else None
        if key is None:
            try:
                if self.reader().has_tensor(fallback_key):
                    key = fallback_key
            except Exception:
                key = None
        if key is None:
            self.missing.add(name)
            return Tensor(name, dtype, shape)

        def load(key=key):
            return self.reader().get_tensor(key)
        return Tensor(name, dtype, shape, load)


# ---- protobuf helpers -----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _dtype_name(enum: int) -> str | None:
    if not enum:
        return None
    try:
        from tensorflow.python.framework import dtypes

        return dtypes.as_dtype(enum).name.replace("_ref", "")
    except Exception:
        return None


def _shape(proto) -> tuple | None:
    if proto is None or proto.unknown_rank:
        return None
    return tuple(None if d.size < 0 else int(d.size) for d in proto.dim)


def _attr_value(v) -> Any:
    kind = v.WhichOneof("value")
    if kind == "s":
        try:
            return v.s.decode()
        except UnicodeDecodeError:
            return f"<{len(v.s)} bytes>"
    if kind in ("i", "f", "b"):
        return getattr(v, kind)
    if kind == "type":
        return _dtype_name(v.type)
    if kind == "shape":
        s = _shape(v.shape)
        return None if s is None else list(s)
    if kind == "func":
        return v.func.name
    if kind == "tensor":
        t = v.tensor
        shape = _shape(t.tensor_shape)
        n = 1
        for d in shape or ():
            n *= d or 0
        if shape is not None and n <= 16:
            try:
                from tensorflow.python.framework import tensor_util

                return tensor_util.MakeNdarray(t).tolist()
            except Exception:
                pass
        return {"dtype": _dtype_name(t.dtype), "shape": None if shape is None else list(shape)}
    if kind == "list":
        lst = v.list
        for f in ("s", "i", "f", "b"):
            vals = list(getattr(lst, f))
            if vals:
                return [x.decode(errors="replace") if isinstance(x, bytes) else x for x in vals]
        if lst.type:
            return [_dtype_name(x) for x in lst.type]
        if lst.shape:
            return [None if _shape(s) is None else list(_shape(s)) for s in lst.shape]
        if lst.func:
            return [f.name for f in lst.func]
        return []
    return None


class _Budget:
    """Nodes left to emit (shared by all signatures of a model) and the calls kept unexpanded, by reason."""

    def __init__(self, nodes: int):
        self.total = self.left = nodes
        self.over_budget = self.too_deep = self.recursive = 0
        self.functions: dict[str, tuple] = {}  # function name -> its body, prepared once (_function_info)

    def warnings(self) -> list[str]:
        out = []
        if self.over_budget:
            out.append(f"expanding the function calls would make more than {self.total:,} nodes; "
                       f"{self.over_budget:,} call(s) past that are shown as single call nodes (their "
                       f"function name is the node's 'f' attribute)")
        if self.too_deep:
            out.append(f"{self.too_deep:,} function call(s) nested deeper than {_MAX_CALL_DEPTH} levels are "
                       f"shown as single call nodes")
        if self.recursive:
            out.append(f"{self.recursive:,} recursive function call(s) are shown as single call nodes")
        return out


class _SignatureBuilder:
    def __init__(self, sig_name: str, sig, top: dict, lib: dict, reader: _VariableReader, mg,
                 budget: _Budget | None = None):
        self.sig_name, self.sig, self.top, self.lib, self.reader, self.mg = sig_name, sig, top, lib, reader, mg
        self.budget = budget or _Budget(NODE_BUDGET)
        self.call_stack: list[str] = []  # functions being expanded, outermost first
        self.graph = Graph(sig_name)
        self.alias: dict[str, str] = {}
        self.emitted_top: set[str] = set()
        self._opdefs: dict[str, Any] = {}
        self.inlined: list[tuple[str, Any, list[str]]] = []  # (name prefix, FunctionDef, input values)
        self.top_nodes: list[str] = []                       # names of emitted top-level nodes

    # -- op definitions ----------------------------------------------------------------------------
    def _opdef(self, op: str):
        if op not in self._opdefs:
            from tensorflow.python.framework import op_def_registry

            self._opdefs[op] = op_def_registry.get(op)
        return self._opdefs[op]

    def _output_layout(self, node) -> tuple[list[tuple[str, int]], list[str | None]]:
        """[(output arg name, count)] and the dtype of every flat output of a NodeDef."""
        if node.op in self.lib:
            sig = self.lib[node.op].signature
            return [(a.name, 1) for a in sig.output_arg], [_dtype_name(a.type) for a in sig.output_arg]
        od = self._opdef(node.op)
        if od is None:
            n = len(node.attr["_output_shapes"].list.shape) if "_output_shapes" in node.attr else 1
            return [("output", n)], [None] * n
        defaults = {a.name: a.default_value for a in od.attr if a.HasField("default_value")}

        def attr(name):  # SavedModels strip attributes equal to the op's default: fall back to it
            return node.attr[name] if name in node.attr else defaults.get(name)

        layout, dtypes = [], []
        for a in od.output_arg:
            t_attr = attr(a.type_attr) if a.type_attr else None
            if a.number_attr:
                n_attr = attr(a.number_attr)
                cnt = n_attr.i if n_attr is not None else 1
                dts = [a.type or (t_attr.type if t_attr is not None else 0)] * cnt
            elif a.type_list_attr:
                l_attr = attr(a.type_list_attr)
                dts = list(l_attr.list.type) if l_attr is not None else []
                cnt = len(dts)
            else:
                cnt = 1
                dts = [a.type or (t_attr.type if t_attr is not None else 0)]
            layout.append((a.name, cnt))
            dtypes.extend(_dtype_name(t) for t in dts)
        return layout, dtypes

    # -- building -----------------------------------------------------------------------------------
    def build(self) -> Graph:
        g = self.graph
        for key, info in self.sig.inputs.items():
            node_name, idx = _split_top_ref(info.name)
            v = _top_value(node_name, idx)
            self.alias[v] = key
            g.values[key] = Value(key, _dtype_name(info.dtype), _shape(info.tensor_shape))
            g.inputs.append(key)
            self.emitted_top.add(node_name)
        outs = []
        for key, info in self.sig.outputs.items():
            node_name, idx = _split_top_ref(info.name)
            self._emit_top(node_name)
            outs.append((key, _top_value(node_name, idx), info))
        self._infer_missing_shapes()
        self._finish(outs)
        return g

    def _infer_missing_shapes(self) -> None:
        """Fill shapes the file does not record (``_output_shapes`` stripped, TF1 graphs) with TensorFlow's
        static shape inference: the top-level graph and each inlined function body are imported into a
        tf.Graph (function inputs fed with placeholders of the known shapes, captured variables with
        variable handles of their stored shapes), which runs every op's C++ shape function. Nothing is
        executed. Shape-preserving ops after an inlined call get their input's shape."""
        g = self.graph
        missing = {o for n in g.nodes for o in n.outputs if g.values.get(o) is None or g.values[o].shape is None}
        if not missing:
            return
        try:
            import tensorflow as tf
            from tensorflow.core.framework import graph_pb2
            from tensorflow.python.framework import function_def_to_graph
        except ImportError:
            return

        def fill(tf_graph, scope: str, prefix: str, names) -> None:
            for name in names:
                try:
                    op = tf_graph.get_operation_by_name(scope + name)
                except (KeyError, ValueError):
                    continue
                for i, t in enumerate(op.outputs):
                    v = g.values.get(f"{prefix}{name}:{i}")
                    if v is None or v.shape is not None or t.shape.rank is None:
                        continue
                    v.shape = tuple(t.shape.as_list())
                    if v.dtype is None:
                        v.dtype = t.dtype.base_dtype.name

        if any(f"{n}:0" in missing for n in self.top_nodes):
            try:
                tg = tf.Graph()
                with tg.as_default():
                    tf.graph_util.import_graph_def(self.mg.graph_def, name="")
                fill(tg, "", "", self.top_nodes)
            except Exception:
                pass
        fg = None
        import time
        deadline = time.monotonic() + _SHAPE_INFERENCE_SECONDS
        for k, (prefix, fdef, ins) in enumerate(self.inlined):
            names = [n.name for n in fdef.node_def if f"{prefix}/{n.name}:0" in missing]
            if not names:
                continue
            if time.monotonic() > deadline:
                break
            try:
                if fg is None:  # one graph holding the function library, so nested calls resolve
                    fg = tf.Graph()
                    lib = graph_pb2.GraphDef()
                    lib.library.CopyFrom(self.mg.graph_def.library)
                    with fg.as_default():
                        tf.graph_util.import_graph_def(lib, name="")
                with fg.as_default():
                    gd, _ = function_def_to_graph.function_def_to_graph_def(fdef)
                    feeds = {}
                    for i, arg in enumerate(fdef.signature.input_arg):
                        src = self._resolve(ins[i]) if i < len(ins) else ""
                        val = g.values.get(src)
                        if val is None:
                            continue
                        if arg.type == tf.resource.as_datatype_enum:
                            t = g.initializers.get(src)
                            if t is None or t.shape is None or not t.dtype:
                                continue
                            feeds[f"{arg.name}:0"] = tf.raw_ops.VarHandleOp(
                                dtype=tf.as_dtype(t.dtype), shape=list(t.shape), shared_name=f"v{k}_{i}")
                        elif val.shape is not None:
                            feeds[f"{arg.name}:0"] = tf.compat.v1.placeholder(
                                tf.as_dtype(arg.type), [None if d is None else d for d in val.shape])
                    tf.graph_util.import_graph_def(gd, input_map=feeds, name=f"fn{k}")
                fill(fg, f"fn{k}/", prefix + "/", names)
            except Exception:
                continue
        for n in g.nodes:  # across inlined call boundaries TF could not see: pass shapes through
            if n.op_type in ("Identity", "IdentityN", "StopGradient", "Snapshot", "PreventGradient"):
                for i, o in enumerate(n.outputs):
                    v, src = g.values.get(o), g.values.get(self._resolve(n.inputs[i])) if i < len(n.inputs) else None
                    if v is not None and v.shape is None and src is not None and src.shape is not None:
                        v.shape = src.shape
                        v.dtype = v.dtype or src.dtype

    def _resolve(self, v: str) -> str:
        seen = 0
        while v in self.alias and seen < 10000:
            v = self.alias[v]
            seen += 1
        return v

    def _emit_top(self, start: str) -> None:
        stack = [start]
        order: list[str] = []
        while stack:  # iterative DFS (graphs can be deep), post-order for a topological emission
            name = stack.pop()
            if isinstance(name, tuple):
                order.append(name[1])
                continue
            if name in self.emitted_top or name not in self.top:
                continue
            self.emitted_top.add(name)
            stack.append(("done", name))
            for ref in self.top[name].input:
                if not ref.startswith("^"):
                    stack.append(_split_top_ref(ref)[0])
        for name in order:
            self._emit_top_node(self.top[name])

    def _emit_top_node(self, node) -> None:
        if node.op in _VAR_OPS:
            return self._add_variable(node)
        if node.op == "Placeholder":  # an input of another signature or a feed: keep it as an input
            v = _top_value(node.name, 0)
            self.graph.values[v] = Value(v, _dtype_name(node.attr["dtype"].type), _shape(node.attr["shape"].shape))
            self.graph.inputs.append(v)
            return
        ins = [_top_value(*_split_top_ref(r)) for r in node.input if not r.startswith("^")]
        self.top_nodes.append(node.name)
        self._emit(node, node.name, _dirname(node.name), ins, lambda i: _top_value(node.name, i))

    def _add_variable(self, node) -> None:
        var_name, node_id = self._variable_identity(node.name)
        name = var_name or node.name
        base, i = name, 1
        while name in self.graph.initializers:
            name = f"{base}_{i}"
            i += 1
        dtype = _dtype_name(node.attr["dtype"].type) if "dtype" in node.attr else None
        shape = _shape(node.attr["shape"].shape) if "shape" in node.attr else None
        self.graph.initializers[name] = self.reader.tensor(name, node_id, node.name, dtype, shape)
        self.graph.values[name] = Value(name, dtype, shape)
        self.alias[_top_value(node.name, 0)] = name

    def _variable_identity(self, handle_name: str) -> tuple[str | None, int | None]:
        """Which saved variable a top-level handle is: via the bound inputs of the functions it feeds."""
        if not hasattr(self, "_handle_ids"):
            self._handle_ids: dict[str, int] = {}
            cfs = self.mg.object_graph_def.concrete_functions
            for n in self.top.values():
                fname = n.attr["f"].func.name if "f" in n.attr else (n.op if n.op in self.lib else None)
                if not fname or fname not in cfs:
                    continue
                bound = list(cfs[fname].bound_inputs)
                data_ins = [r for r in n.input if not r.startswith("^")]
                captured = data_ins[len(data_ins) - len(bound):] if bound else []
                for ref, nid in zip(captured, bound):
                    self._handle_ids.setdefault(_split_top_ref(ref)[0], nid)
        nid = self._handle_ids.get(handle_name)
        if nid is None:
            return None, None
        obj = self.mg.object_graph_def.nodes[nid]
        if obj.WhichOneof("kind") == "variable" and obj.variable.name:
            return obj.variable.name, nid
        return None, nid

    def _node_info(self, node) -> tuple:
        """What emitting a NodeDef needs, computed once per NodeDef of a function body (cached)."""
        layout, dtypes = self._output_layout(node)
        n_out = sum(c for _, c in layout)
        fname = node.attr["f"].func.name if (node.op in _CALL_OPS and "f" in node.attr) else \
            (node.op if node.op in self.lib else None)
        shapes = [_shape(s) for s in node.attr["_output_shapes"].list.shape] if "_output_shapes" in node.attr \
            else []
        attrs = {k: _attr_value(v) for k, v in node.attr.items() if not k.startswith("_")}
        return layout, dtypes, n_out, fname, shapes, attrs

    def _function_info(self, fdef) -> tuple:
        """(body nodes in topological order, their infos, output layouts by node name) of a function."""
        key = fdef.signature.name
        hit = self.budget.functions.get(key)
        if hit is None:
            nodes = list(fdef.node_def)
            order = _topo(nodes, {n.name: n for n in nodes})
            infos = [self._node_info(n) for n in order]
            hit = (order, infos, {n.name: info[0] for n, info in zip(order, infos)})
            self.budget.functions[key] = hit
        return hit

    def _emit(self, node, full: str, scope: str, ins: list[str], out_name: Callable[[int], str],
              info: tuple | None = None) -> None:
        """Emit one NodeDef (inlining it when it calls a library function)."""
        layout, dtypes, n_out, fname, shapes, attrs = info or self._node_info(node)
        if fname and fname in self.lib:
            b = self.budget
            if fname in self.call_stack:
                b.recursive += 1
            elif len(self.call_stack) >= _MAX_CALL_DEPTH:
                b.too_deep += 1
            elif b.left <= 0:
                b.over_budget += 1
            else:
                self.call_stack.append(fname)
                try:
                    rets = self._inline(self.lib[fname], full, scope, ins)
                finally:
                    self.call_stack.pop()
                for i in range(n_out):
                    if i < len(rets):
                        self.alias[out_name(i)] = rets[i]
                return
        if node.op == "NoOp":
            return
        self.budget.left -= 1
        outs = [out_name(i) for i in range(n_out)]
        values = self.graph.values
        for i, o in enumerate(outs):
            values[o] = Value(o, dtypes[i] if i < len(dtypes) else None, shapes[i] if i < len(shapes) else None)
        self.graph.nodes.append(Node(full, node.op, ins, outs, dict(attrs), scope))

    def _inline(self, fdef, prefix: str, call_scope: str, ins: list[str]) -> list[str]:
        sig = fdef.signature
        local_alias = {a.name: (ins[i] if i < len(ins) else "") for i, a in enumerate(sig.input_arg)}
        for i, a in enumerate(sig.input_arg):  # record the argument shapes the function was traced with
            if i < len(ins) and i in fdef.arg_attr and "_output_shapes" in fdef.arg_attr[i].attr:
                shapes = fdef.arg_attr[i].attr["_output_shapes"].list.shape
                v = self.graph.values.get(ins[i])
                if shapes and v is not None and v.shape is None:
                    v.shape = _shape(shapes[0])
        self.inlined.append((prefix, fdef, list(ins)))
        order, infos, layouts = self._function_info(fdef)

        def resolve(ref: str) -> str:
            parts = ref.split(":")
            if len(parts) == 1:
                if parts[0] in local_alias:
                    return local_alias[parts[0]]
                return f"{prefix}/{parts[0]}:0"
            node_name = parts[0]
            if len(parts) == 2:  # "node:idx" (rare inside functions)
                return f"{prefix}/{node_name}:{int(parts[1])}"
            arg, idx = parts[1], int(parts[2])
            base = 0
            for name, cnt in layouts.get(node_name, []):
                if name == arg:
                    return f"{prefix}/{node_name}:{base + idx}"
                base += cnt
            return f"{prefix}/{node_name}:{idx}"

        for n, info in zip(order, infos):
            full = f"{prefix}/{n.name}"
            data = [resolve(r) for r in n.input if not r.startswith("^")]
            self._emit(n, full, _join(call_scope, _dirname(n.name)), data, lambda i, full=full: f"{full}:{i}", info)
        return [resolve(fdef.ret[a.name]) for a in sig.output_arg]

    def _finish(self, outs) -> None:
        g = self.graph

        def final(v: str) -> str:
            seen = 0
            while v in self.alias and seen < 10000:
                v = self.alias[v]
                seen += 1
            return v
        for n in g.nodes:
            n.inputs = [final(v) for v in n.inputs]
        rename: dict[str, str] = {}
        for key, v, info in outs:
            fv = final(v)
            if fv not in g.inputs and fv not in g.initializers and fv not in rename and key not in g.values:
                rename[fv] = key
            name = rename.get(fv, fv)
            old = g.values.pop(fv, None) if fv in rename else g.values.get(fv)
            g.values[name] = Value(name, _dtype_name(info.dtype) or (old.dtype if old else None),
                                   _shape(info.tensor_shape) if info.HasField("tensor_shape") and
                                   not info.tensor_shape.unknown_rank else (old.shape if old else None))
            g.outputs.append(name)
        if rename:
            for n in g.nodes:
                n.inputs = [rename.get(v, v) for v in n.inputs]
                n.outputs = [rename.get(v, v) for v in n.outputs]
        used = set(g.inputs) | set(g.outputs) | set(g.initializers)
        for n in g.nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        for k in [k for k in g.values if k not in used]:
            del g.values[k]


def _topo(nodes, body: dict) -> list:
    """Function bodies are not stored in topological order: order them by their data and control inputs."""
    index = {n.name: i for i, n in enumerate(nodes)}
    state: dict[str, int] = {}
    out = []
    for root in nodes:
        if root.name in state:
            continue
        stack = [(root.name, False)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                out.append(body[name])
                continue
            if state.get(name):
                continue
            state[name] = 1
            stack.append((name, True))
            for r in body[name].input:
                dep = r.lstrip("^").split(":")[0]
                if dep in index and not state.get(dep):
                    stack.append((dep, False))
    return out


def _split_top_ref(ref: str) -> tuple[str, int]:
    """Top-level GraphDef tensor reference ``node:idx`` (or ``node``) -> (node, idx)."""
    name, _, idx = ref.lstrip("^").partition(":")
    return name, int(idx) if idx.isdigit() else 0


def _top_value(node: str, idx: int) -> str:
    return f"{node}:{idx}"


def _dirname(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def _join(a: str, b: str) -> str:
    return f"{a}/{b}" if a and b else (a or b)
