"""The framework-neutral graph model every loader produces and every view, converter and comparer reads.

Shapes are tuples whose entries are ``int`` (static), ``str`` (a named dynamic dim such as ``"batch"``)
or ``None`` (unknown). A shape of ``None`` means the rank itself is unknown. Dtypes are numpy-style names
(``"float32"``, ``"int64"``, ``"bfloat16"``, ``"bool"``, ``"string"``) or ``None`` when unknown.

Weights are :class:`Tensor` objects that hold a loader, not data: ``Tensor.numpy()`` reads the array on
first use. Graphs of tens of thousands of nodes are plain lists of small objects; nothing here copies
weights up front.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator

Dim = int | str | None
Shape = tuple[Dim, ...] | None

__all__ = [
    "Dim", "Shape", "Value", "Tensor", "Node", "Graph", "Model", "WeightEntry",
    "shape_str", "numel", "tensor_stats", "SCOPE_SEP",
]

SCOPE_SEP = "/"


def shape_str(shape: Shape) -> str:
    """Human-readable shape: ``1×3×224×224``, ``batch×128``, ``?×10``; ``?`` for an unknown rank."""
    if shape is None:
        return "?"
    if len(shape) == 0:
        return "scalar"
    return "×".join("?" if d is None else str(d) for d in shape)


def numel(shape: Shape) -> int | None:
    """Number of elements of a fully static shape, else None."""
    if shape is None:
        return None
    dims = [d for d in shape if isinstance(d, int)]
    if len(dims) != len(shape):
        return None
    return math.prod(dims) if dims else 1


def tensor_stats(array) -> dict[str, Any]:
    """min / max / mean / std / zero fraction / NaN and Inf counts of an array (any float or int dtype)."""
    import numpy as np

    a = np.asarray(array)
    out: dict[str, Any] = {"numel": int(a.size)}
    if a.size == 0 or a.dtype.kind not in "fiub":
        return out
    af = a.astype(np.float64, copy=False) if a.dtype.kind != "f" or a.dtype.itemsize < 4 else a
    finite = np.isfinite(af) if af.dtype.kind == "f" else None
    if finite is not None and not finite.all():
        out["nan"] = int(np.isnan(af).sum())
        out["inf"] = int(np.isinf(af).sum())
        af = af[finite]
        if af.size == 0:
            return out
    out.update(min=float(af.min()), max=float(af.max()), mean=float(af.mean()), std=float(af.std()),
               zeros=float((af == 0).mean()))
    return out


@dataclass(slots=True)
class Value:
    """A tensor flowing along an edge: produced by one node (or a graph input), consumed by others."""

    name: str
    dtype: str | None = None
    shape: Shape = None

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}

    @staticmethod
    def from_dict(d: dict) -> "Value":
        s = d.get("shape")
        return Value(d["name"], d.get("dtype"), None if s is None else tuple(s))


@dataclass(slots=True)
class Tensor:
    """A stored weight. ``loader`` returns the numpy array; it runs only when the data is asked for."""

    name: str
    dtype: str | None
    shape: Shape
    loader: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    _cache: Any = field(default=None, repr=False, compare=False)
    # "parameter", "buffer" or "constant" where the format says; None where it does not (see is_parameter)
    kind: str | None = None
    # the name of another tensor this one shares its storage with (tied weights: lm_head = wte)
    alias_of: str | None = None

    @property
    def is_parameter(self) -> bool:
        """A trainable weight: what ``sum(p.numel() for p in model.parameters())`` counts in torch.

        Where the format does not say, integer and boolean tensors (step counters, position ids, masks)
        and batch-norm running statistics are buffers; every other tensor counts as a parameter.
        """
        if self.kind is not None:
            return self.kind == "parameter"
        if self.dtype is not None and (self.dtype.startswith(("int", "uint")) or self.dtype == "bool"):
            return False
        return self.name.rsplit(".", 1)[-1] not in _BN_STATS

    @property
    def numel(self) -> int:
        n = numel(self.shape)
        return 0 if n is None else n

    @property
    def nbytes(self) -> int:
        import numpy as np

        try:
            return self.numel * np.dtype(self.dtype).itemsize
        except Exception:
            return 0

    def numpy(self):
        """The weight as a numpy array (read now, then cached). Raises if the data is not available."""
        if self._cache is None:
            if self.loader is None:
                raise ValueError(f"no data stored for tensor {self.name!r}")
            self._cache = self.loader()
        return self._cache

    def stats(self) -> dict[str, Any]:
        return tensor_stats(self.numpy())

    def to_dict(self) -> dict:
        d = {"name": self.name, "dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}
        if self.kind is not None:
            d["kind"] = self.kind
        if self.alias_of is not None:
            d["alias_of"] = self.alias_of
        return d

    @staticmethod
    def from_dict(d: dict) -> "Tensor":
        s = d.get("shape")
        return Tensor(d["name"], d.get("dtype"), None if s is None else tuple(s), kind=d.get("kind"),
                      alias_of=d.get("alias_of"))


_BN_STATS = {"running_mean", "running_var", "num_batches_tracked"}


def count_params(tensors) -> tuple[int, int]:
    """(parameter elements, buffer elements) of ``tensors``, each shared storage counted once."""
    params = buffers = 0
    for t in tensors:
        if t.alias_of is not None:
            continue
        if t.is_parameter:
            params += t.numel
        else:
            buffers += t.numel
    return params, buffers


@dataclass(slots=True)
class Node:
    """One operation. ``inputs``/``outputs`` are value names ('' marks an omitted optional input).

    ``scope`` is the module/layer path the node belongs to, ``/``-separated (``encoder/layer.3/attn``);
    '' is the root. ``subgraphs`` holds bodies of control-flow ops (If/Loop/While) and called functions.
    """

    name: str
    op_type: str
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    scope: str = ""
    domain: str = ""
    subgraphs: dict[str, "Graph"] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"name": self.name, "op_type": self.op_type, "inputs": self.inputs, "outputs": self.outputs,
             "attrs": _jsonable(self.attrs), "scope": self.scope}
        if self.domain:
            d["domain"] = self.domain
        if self.subgraphs:
            d["subgraphs"] = {k: g.to_dict() for k, g in self.subgraphs.items()}
        return d

    @staticmethod
    def from_dict(d: dict) -> "Node":
        return Node(d["name"], d["op_type"], list(d.get("inputs", [])), list(d.get("outputs", [])),
                    dict(d.get("attrs", {})), d.get("scope", ""), d.get("domain", ""),
                    {k: Graph.from_dict(g) for k, g in d.get("subgraphs", {}).items()})


@dataclass
class Graph:
    """Nodes in topological order where the format gives one, the values they exchange, and weights."""

    name: str = ""
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    values: dict[str, Value] = field(default_factory=dict)
    initializers: dict[str, Tensor] = field(default_factory=dict)

    def value(self, name: str) -> Value:
        """The Value of that name, created empty (unknown dtype and shape) if the loader had no info."""
        v = self.values.get(name)
        if v is None:
            v = self.values[name] = Value(name)
        return v

    @property
    def input_values(self) -> list[Value]:
        return [self.value(n) for n in self.inputs]

    @property
    def output_values(self) -> list[Value]:
        return [self.value(n) for n in self.outputs]

    def walk(self) -> Iterator[Node]:
        """Every node, descending into subgraphs."""
        for n in self.nodes:
            yield n
            for g in n.subgraphs.values():
                yield from g.walk()

    @property
    def param_count(self) -> int:
        """Elements of the trainable weights (tied ones once; buffers and constants not)."""
        return count_params(self.initializers.values())[0]

    @property
    def buffer_count(self) -> int:
        """Elements of the stored tensors that are not parameters (buffers, constants)."""
        return count_params(self.initializers.values())[1]

    def producers(self) -> dict[str, int]:
        """value name -> index of the node producing it."""
        return {o: i for i, n in enumerate(self.nodes) for o in n.outputs if o}

    def consumers(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for v in n.inputs:
                if v:
                    out.setdefault(v, []).append(i)
        return out

    def to_dict(self) -> dict:
        used = set(self.inputs) | set(self.outputs)
        for n in self.nodes:
            used.update(n.inputs)
            used.update(n.outputs)
        used.discard("")
        return {
            "name": self.name,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "nodes": [n.to_dict() for n in self.nodes],
            "values": [self.value(v).to_dict() for v in sorted(used) if v not in self.initializers],
            "initializers": [t.to_dict() for t in self.initializers.values()],
        }

    @staticmethod
    def from_dict(d: dict) -> "Graph":
        g = Graph(d.get("name", ""), [Node.from_dict(n) for n in d.get("nodes", [])],
                  list(d.get("inputs", [])), list(d.get("outputs", [])))
        for v in d.get("values", []):
            g.values[v["name"]] = Value.from_dict(v)
        for t in d.get("initializers", []):
            s = t.get("shape")
            g.initializers[t["name"]] = Tensor.from_dict(t)
            g.values.setdefault(t["name"], Value(t["name"], t.get("dtype"), None if s is None else tuple(s)))
        return g


@dataclass(slots=True)
class WeightEntry:
    """One entry of a weights-only checkpoint (state_dict, .safetensors, Lightning .ckpt)."""

    name: str            # dotted path as stored: "encoder.layers.0.linear1.weight"
    tensor: Tensor

    def to_dict(self) -> dict:
        return dict(self.tensor.to_dict(), name=self.name)


@dataclass
class Model:
    """What a loader returns: a graph (or one per signature), or a weights tree, plus facts about the file.

    ``format`` is a stable identifier (``onnx``, ``torch.export``, ``torchscript``, ``torch.module``,
    ``torch.state_dict``, ``safetensors``, ``keras``, ``keras.h5``, ``savedmodel``, ``tflite``).
    ``graph`` is the main graph; ``signatures`` holds every SavedModel signature by name (``graph`` is the
    default one). ``weights`` is set for weights-only files, whose ``graph`` is None. ``extra`` keeps
    format-specific information shown to the user (opset, producer, hyper-parameters, …).
    """

    format: str
    path: str
    graph: Graph | None = None
    signatures: dict[str, Graph] = field(default_factory=dict)
    functions: dict[str, Graph] = field(default_factory=dict)
    weights: list[WeightEntry] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def is_weights_only(self) -> bool:
        return self.graph is None and self.weights is not None

    @property
    def node_count(self) -> int:
        """Nodes of the main graph (not counting subgraph bodies)."""
        return len(self.graph.nodes) if self.graph is not None else 0

    @property
    def param_count(self) -> int:
        """Elements of the trainable weights, as the framework counts them (tied weights once, buffers
        apart; Keras files count non-trainable weights too, as ``count_params()`` does)."""
        return self._counts()[0]

    @property
    def buffer_count(self) -> int:
        """Elements of stored tensors that are not parameters (buffers, running statistics, constants)."""
        return self._counts()[1]

    def _counts(self) -> tuple[int, int]:
        if self.graph is not None:
            return count_params(self.graph.initializers.values())
        return count_params(w.tensor for w in self.weights or [])

    def summary(self) -> dict[str, Any]:
        """The facts ``tensorbridge inspect`` prints."""
        d: dict[str, Any] = {"path": self.path, "format": self.format}
        if self.graph is not None:
            d["inputs"] = [v.to_dict() for v in self.graph.input_values]
            d["outputs"] = [v.to_dict() for v in self.graph.output_values]
            d["node_count"] = self.node_count
        if self.signatures:
            d["signatures"] = {k: {"inputs": [v.to_dict() for v in g.input_values],
                                   "outputs": [v.to_dict() for v in g.output_values]}
                               for k, g in self.signatures.items()}
        if self.weights is not None:
            d["weight_count"] = len(self.weights)
        d["param_count"], d["buffer_count"] = self._counts()
        if self.extra:
            d["extra"] = _jsonable(self.extra)
        if self.warnings:
            d["warnings"] = list(self.warnings)
        return d

    def to_dict(self) -> dict:
        d = self.summary()
        if self.graph is not None:
            d["graph"] = self.graph.to_dict()
        if self.signatures:
            d["signature_graphs"] = {k: g.to_dict() for k, g in self.signatures.items() if g is not self.graph}
        if self.functions:
            d["functions"] = {k: g.to_dict() for k, g in self.functions.items()}
        if self.weights is not None:
            d["weights"] = [w.to_dict() for w in self.weights]
        return d

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    @staticmethod
    def from_dict(d: dict) -> "Model":
        m = Model(d["format"], d.get("path", ""))
        if "graph" in d:
            m.graph = Graph.from_dict(d["graph"])
        for k, g in d.get("signature_graphs", {}).items():
            m.signatures[k] = Graph.from_dict(g)
        if "signatures" in d and m.graph is not None:
            for k in d["signatures"]:
                m.signatures.setdefault(k, m.graph)
        for k, g in d.get("functions", {}).items():
            m.functions[k] = Graph.from_dict(g)
        if "weights" in d:
            m.weights = [WeightEntry(w["name"], Tensor.from_dict(w)) for w in d["weights"]]
        m.extra = dict(d.get("extra", {}))
        m.warnings = list(d.get("warnings", []))
        return m

    @staticmethod
    def from_json(s: str) -> "Model":
        return Model.from_dict(json.loads(s))


def _jsonable(x: Any) -> Any:
    """Attributes as JSON: numbers, strings, lists; arrays become lists when small, else a short summary."""
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if isinstance(x, bytes):
        try:
            return x.decode("utf-8")
        except UnicodeDecodeError:
            return f"<{len(x)} bytes>"
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (Graph,)):
        return f"<graph {x.name}>"
    if isinstance(x, Tensor):
        return {"tensor": x.name, "dtype": x.dtype, "shape": None if x.shape is None else list(x.shape)}
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return _jsonable(x.item())
        if isinstance(x, np.ndarray):
            if x.size <= 64:
                return _jsonable(x.tolist())
            return {"array": True, "dtype": str(x.dtype), "shape": list(x.shape)}
    except ImportError:  # pragma: no cover
        pass
    return str(x)


def iter_scopes(scope: str) -> Iterable[str]:
    """``a/b/c`` -> ``a``, ``a/b``, ``a/b/c``."""
    if not scope:
        return []
    parts = scope.split(SCOPE_SEP)
    return [SCOPE_SEP.join(parts[: i + 1]) for i in range(len(parts))]
