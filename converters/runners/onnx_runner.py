"""onnxruntime runner: any .onnx file, on the execution providers this onnxruntime build has.

Devices: "cpu" (CPUExecutionProvider), "cuda:N" (CUDAExecutionProvider, device_id N), or an execution
provider name such as "CUDAExecutionProvider". Capture: names of any intermediate value in the graph;
the model is re-written with those values added as graph outputs (after shape inference, so they carry
types), then run in a separate session.
"""
from __future__ import annotations

import numpy as np

from .base import DeviceUnavailable, Runner, RunnerError, TensorSpec

_ORT_TYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(bfloat16)": "bfloat16", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
    "tensor(int16)": "int16", "tensor(uint16)": "uint16", "tensor(int32)": "int32",
    "tensor(uint32)": "uint32", "tensor(int64)": "int64", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool", "tensor(string)": "string",
}


def _ort_spec(arg) -> TensorSpec:
    shape = getattr(arg, "shape", None)
    if shape is not None:
        shape = tuple(d if isinstance(d, (int, str)) or d is None else None for d in shape)
        shape = tuple(None if isinstance(d, str) and not d else d for d in shape)
    return TensorSpec(arg.name, _ORT_TYPES.get(arg.type, arg.type), shape)


def providers_for(device: str) -> list:
    """onnxruntime providers list for a device string; raises DeviceUnavailable with the fix."""
    import onnxruntime as ort

    avail = ort.get_available_providers()
    d = (device or "cpu").strip()
    low = d.lower()
    if low == "cpu":
        return ["CPUExecutionProvider"]
    if low.startswith("cuda") or low.startswith("gpu"):
        idx = int(low.split(":", 1)[1]) if ":" in low else 0
        if "CUDAExecutionProvider" not in avail:
            raise DeviceUnavailable(
                f"onnxruntime {ort.__version__} was built without CUDA (providers: {', '.join(avail)}); "
                f"install onnxruntime-gpu to run on '{d}', or pick device 'cpu'")
        return [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"]
    if d in avail:
        return [d] + (["CPUExecutionProvider"] if d != "CPUExecutionProvider" else [])
    raise DeviceUnavailable(f"onnxruntime has no device or provider '{d}'; available: cpu, "
                            + ", ".join(avail))


def _no_spin(opts) -> None:
    """The runtime's threads sleep when idle instead of spinning: another process computes on the same
    cores at the same time (the two sides of a per-layer comparison), and spinning threads would take its
    time. Option ``share_cores``."""
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")


class OnnxRuntimeRunner(Runner):
    runtime = "onnxruntime"

    def _open_impl(self) -> None:
        import onnxruntime as ort

        self._providers = providers_for(self.device)
        self._ort = ort
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._shared = bool(self.options.get("share_cores"))
        if self._shared:
            _no_spin(opts)
        self._opts = opts
        try:
            self.session = ort.InferenceSession(self.path, sess_options=opts, providers=self._providers)
        except Exception as exc:
            from ..errors import one_line
            raise RunnerError(f"{self.path}: onnxruntime cannot load this model ({one_line(exc)})") from exc
        self._capture_sessions: dict[tuple, object] = {}
        self._out_names = [o.name for o in self.session.get_outputs()]
        self._out_specs = None

    def _close_impl(self) -> None:
        self.session = None
        self._capture_sessions = {}

    def _base(self):
        """The whole model's session (opened again if a capture run let it go)."""
        if self.session is None:
            self.session = self._ort.InferenceSession(self.path, sess_options=self._opts, providers=self._providers)
        return self.session

    def _input_specs_impl(self):
        return [_ort_spec(a) for a in self._base().get_inputs()]

    def _output_specs_impl(self):
        if getattr(self, "_out_specs", None) is None:
            self._out_specs = [_ort_spec(a) for a in self._base().get_outputs()]
        return list(self._out_specs)

    def _capture_session(self, names: tuple):
        sess = self._capture_sessions.get(names)
        if sess is not None:
            return sess
        import onnx

        model = onnx.load(self.path)
        try:
            model = onnx.shape_inference.infer_shapes(model)
        except Exception:  # types for added outputs are optional; keep going without them
            pass
        known = {vi.name: vi for vi in model.graph.value_info}
        produced = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.input}
        existing = {o.name for o in model.graph.output}
        for name in names:
            if name in existing:
                continue
            if name not in produced:
                raise RunnerError(f"{self.path}: no tensor named '{name}' to capture; pick a node output name")
            vi = known.get(name) or onnx.helper.make_empty_tensor_value_info(name)
            model.graph.output.append(vi)
        data = model.SerializeToString() if model.ByteSize() < 2_000_000_000 else None
        if data is None:
            raise RunnerError(f"{self.path}: capturing intermediates of a model over 2 GB is not supported")
        sess = self._ort.InferenceSession(data, sess_options=self._opts, providers=self._providers)
        self._capture_sessions[names] = sess
        return sess

    # -- capture piece by piece -----------------------------------------------------------------------
    def _proto(self):
        proto = getattr(self, "_proto_cache", None)
        if proto is None:
            import onnx
            proto = self._proto_cache = onnx.load(self.path)
        return proto

    def capturable(self, names: list[str]) -> list[str]:
        g = self._proto().graph
        produced = {o for n in g.node for o in n.output if o}
        return [n for n in names if n in produced]

    def _capture_stream_impl(self, feeds, names, sink, budget_bytes):
        """Run the graph as consecutive pieces, each with at most about ``budget_bytes`` of tensors that
        must leave it (captured ones and ones later pieces read); a captured tensor goes to ``sink`` as
        its piece finishes, and a tensor nobody reads any more is dropped. Peak memory is then about one
        piece's tensors, not every node output at once (what marking all of them as outputs costs)."""
        wanted = set(self.capturable(names))
        pieces = self._pieces(frozenset(wanted), budget_bytes)
        if self.session is not None:  # the pieces hold the weights now: the whole model's copy can go
            self.input_specs()
            self.output_specs()
            self.session = None
            self._capture_sessions = {}
        env: dict[str, np.ndarray] = dict(feeds)
        result: dict[str, np.ndarray] = {}
        model_outs = set(self._out_names)
        for piece in pieces:
            sess = piece.session(self, env, keep=len(pieces) == 1)
            vals = sess.run(piece.outputs, {k: env[k] for k in piece.inputs})
            del sess  # each piece's session (and its memory) goes once it has run
            for n, v in zip(piece.outputs, vals):
                if n in wanted:
                    sink(n, v)
                if n in model_outs:
                    result[n] = v
                if n in piece.keep:
                    env[n] = v
            for n in piece.drop:
                env.pop(n, None)
            del vals
        for n in self._out_names:  # an output that is a graph input (or passes straight through)
            if n not in result and n in env:
                result[n] = env[n]
        return {n: result[n] for n in self._out_names if n in result}

    def _pieces(self, wanted: frozenset, budget_bytes: int) -> list["_Piece"]:
        cache = getattr(self, "_pieces_cache", None)
        if cache is not None and cache[0] == (wanted, budget_bytes):
            return cache[1]
        pieces = _plan_pieces(self._proto(), wanted, budget_bytes)
        self._pieces_cache = ((wanted, budget_bytes), pieces)
        return pieces

    def _infer_impl(self, feeds, capture):
        if capture:
            sess = self._capture_session(tuple(capture))
            names = [o.name for o in sess.get_outputs()]
        else:
            sess = self._base()
            names = self._out_names
        values = sess.run(names, feeds)
        out = {n: np.asarray(v) for n, v in zip(names, values)}
        if capture:
            order = [s.name for s in self._output_specs_impl()] + [c for c in capture]
            out = {n: out[n] for n in order if n in out}
        return out


class _Piece:
    """A run of consecutive nodes as its own small model: what it reads, what it hands on."""

    def __init__(self, nodes, inputs, outputs, keep, drop, inits, proto):
        self.nodes, self.inputs, self.outputs = nodes, inputs, outputs
        self.keep, self.drop, self.inits = keep, drop, inits
        self._proto, self._sess = proto, None

    def session(self, runner, env, keep: bool = False):
        """The piece's onnxruntime session. Without ``keep`` it is not cached and its memory arena is off:
        a session per piece held at once would hold every piece's buffers, which is what the pieces avoid."""
        sess = self._sess
        if sess is None:
            from onnx import helper

            g = self._proto.graph
            ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.asarray(env[n]).dtype), None)
                   for n in self.inputs]
            outs = [helper.make_empty_tensor_value_info(n) for n in self.outputs]
            inits = [t for t in g.initializer if t.name in self.inits]
            sub = helper.make_graph(self.nodes, g.name or "piece", ins, outs, inits)
            m = helper.make_model(sub, opset_imports=list(self._proto.opset_import), ir_version=self._proto.ir_version)
            m.functions.extend(self._proto.functions)
            data = m.SerializeToString()
            del m, sub, inits
            opts = runner._opts
            if not keep:
                opts = runner._ort.SessionOptions()
                opts.log_severity_level = 3
                if runner._shared:
                    _no_spin(opts)
                opts.enable_cpu_mem_arena = False
                opts.enable_mem_pattern = False
            sess = runner._ort.InferenceSession(data, sess_options=opts, providers=runner._providers)
            if keep:
                self._sess = sess
        return sess


def _value_bytes(vi) -> int | None:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    n = 1
    for d in t.shape.dim:
        if not d.HasField("dim_value"):
            return None
        n *= d.dim_value
    from onnx import helper
    try:
        return n * np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)).itemsize
    except Exception:
        return None


def _plan_pieces(proto, wanted: frozenset, budget_bytes: int) -> list[_Piece]:
    """Cut the graph (in its topological order) into pieces whose outgoing tensors stay near the budget."""
    import onnx
    from onnx import AttributeProto

    g = proto.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(proto).graph
        sizes = {vi.name: _value_bytes(vi) for vi in list(inferred.value_info) + list(inferred.output)}
    except Exception:
        sizes = {}
    inits = {t.name for t in g.initializer}
    nodes = list(g.node)

    def reads(n) -> list[str]:
        names = [i for i in n.input if i]
        for a in n.attribute:  # a subgraph can read any outer value (not the ones it makes itself)
            subs = [a.g] if a.type == AttributeProto.GRAPH else list(a.graphs) if a.type == AttributeProto.GRAPHS else []
            for sg in subs:
                own = {o for m in sg.node for o in m.output} | {i.name for i in sg.input} | \
                    {t.name for t in sg.initializer}
                names.extend(v for m in sg.node for v in reads(m) if v not in own)
        return names

    node_reads = [reads(n) for n in nodes]
    last_use: dict[str, int] = {}
    for i, r in enumerate(node_reads):
        for v in r:
            last_use[v] = i
    graph_outs = {o.name for o in g.output}
    end = len(nodes)
    for v in graph_outs:
        last_use[v] = end
    default = 1 << 20  # an unknown size counts as 1 MiB
    cuts, acc = [0], 0
    for i, n in enumerate(nodes):
        out_bytes = sum((sizes.get(o) or default) for o in n.output
                        if o and (o in wanted or last_use.get(o, -1) > i or o in graph_outs))
        if acc and acc + out_bytes > budget_bytes:
            cuts.append(i)
            acc = 0
        acc += out_bytes
    cuts.append(end)
    pieces = []
    for lo, hi in zip(cuts, cuts[1:]):
        if lo == hi:
            continue
        produced = [o for n in nodes[lo:hi] for o in n.output if o]
        pset = set(produced)
        needed: list[str] = []
        seen: set[str] = set()
        for r in node_reads[lo:hi]:
            for v in r:
                if v not in pset and v not in inits and v not in seen:
                    seen.add(v)
                    needed.append(v)
        outs = [o for o in produced if o in wanted or last_use.get(o, -1) >= hi or o in graph_outs]
        keep = {o for o in outs if last_use.get(o, -1) >= hi or o in graph_outs}
        drop = {v for v in needed if last_use.get(v, -1) < hi and v not in graph_outs}
        used_inits = {v for r in node_reads[lo:hi] for v in r if v in inits}
        pieces.append(_Piece(nodes[lo:hi], needed, outs or produced[-1:], keep, drop, used_inits, proto))
    return pieces
