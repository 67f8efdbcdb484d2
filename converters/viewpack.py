"""ViewPack: the compact form of a model that the window draws (numpy columns + small JSON, no Qt).

A pack is a folder:

* ``pack.npz`` (uncompressed numpy arrays): per node ``node_op`` (op table id), ``node_cat`` (category
  id, see :data:`CATEGORIES`), ``node_group``, ``node_w`` (box width); node names as one UTF-8 blob
  (``names_blob``, '\\0'-separated); edges ``edge_src``, ``edge_dst``, ``edge_label`` (label table id
  or -1); the group tree ``group_parent``, ``group_artificial`` with paths/labels as blobs;
  ``details_off`` (N+1 byte offsets into ``details.jsonl``); the overview layout (``ov_*``).
* graph inputs and outputs, drawn as nodes of their own kind (the model holds no such nodes, so node
  ``i`` of every per-node column is node ``i`` of ``Model.graph.nodes``, for selection, overlays,
  parity and find alike): ``io_kind`` (K, int8: 1 graph input, 2 graph output, see
  :mod:`converters.viewio`), their value names (``io_names_blob``), ``io_w`` (box width), their edges
  ``io_edge_src`` / ``io_edge_dst`` / ``io_edge_label`` in the layout's node space (model node ``i``
  is ``i``, I/O node ``k`` is ``n_nodes + k``; an edge ref ``n_edges + j`` in a layout is I/O edge
  ``j``), and ``node_rank`` (n_nodes + K: drawing order; inputs first, weights beside their consumer).
  A :class:`Layout` lists I/O nodes in ``io_idx`` / ``io_rect``, apart from ``node_idx``.
* ``meta.json``: format version, the model summary, op and label tables, counts, the overview's
  expanded groups; for weights-only models ``weights.json`` holds ``[{name, dtype, shape}]``.
* ``details.jsonl``: one JSON object per node, read on demand by :meth:`ViewPack.details` (seek + one
  small ``json.loads``), so the window never parses the whole graph's attributes up front.

Why not one JSON file: a 50k-node graph is ~17 MB of JSON and ``json.loads`` holds the GIL ~1 s.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import CorruptFile
from .graph import Model, _jsonable, shape_str
from .grouping import view_grouping
from .layout import Layout, LayoutEngine, build_groups, node_width
from .viewio import IO_INPUT, IO_KINDS, io_nodes

__all__ = ["ViewPack", "build_pack", "CATEGORIES", "op_category", "PACK_VERSION"]

PACK_VERSION = 3

# Op categories drawn in distinct colours (the view owns the palette; the engine owns the mapping).
CATEGORIES = ("conv", "linear", "norm", "activation", "pool", "shape", "elementwise", "attention",
              "control", "other")

_CAT_OPS = {
    "conv": {"conv", "convtranspose", "conv2d", "conv1d", "conv3d", "depthwiseconv2d", "depthwise_conv_2d",
             "conv_2d", "conv_3d", "transpose_conv", "qlinearconv", "convinteger", "deformconv",
             "separableconv2d", "conv2dtranspose", "convolution"},
    "linear": {"matmul", "gemm", "linear", "dense", "fully_connected", "batch_matmul", "einsum",
               "qlinearmatmul", "matmulinteger", "addmm", "mm", "bmm"},
    "norm": {"batchnormalization", "layernormalization", "instancenormalization", "groupnormalization",
             "lrn", "rmsnormalization", "simplifiedlayernormalization", "l2normalization",
             "meanvariancenormalization", "batch_norm", "layer_norm", "layernorm", "batchnorm",
             "fusedbatchnormv3", "skiplayernormalization", "l2_normalization", "normalization"},
    "activation": {"relu", "sigmoid", "tanh", "gelu", "leakyrelu", "elu", "selu", "prelu", "hardsigmoid",
                   "hardswish", "softplus", "softsign", "mish", "silu", "swish", "relu6", "celu",
                   "thresholdedrelu", "clip", "logistic", "hard_swish", "leaky_relu", "erf", "fastgelu",
                   "biasgelu", "quickgelu", "activation", "hardtanh", "logsigmoid"},
    "pool": {"maxpool", "averagepool", "globalaveragepool", "globalmaxpool", "lppool", "maxunpool",
             "max_pool_2d", "average_pool_2d", "maxpooling2d", "averagepooling2d", "globalaveragepooling2d",
             "adaptiveavgpool2d", "roialign", "maxroipool", "globallppool", "reducemean", "reducemax",
             "mean"},
    "shape": {"reshape", "transpose", "flatten", "squeeze", "unsqueeze", "concat", "concatenation", "split",
              "slice", "gather", "gatherelements", "gathernd", "scatter", "scatterelements", "scatternd",
              "shape", "size", "expand", "tile", "pad", "resize", "upsample", "cast", "identity",
              "constant", "constantofshape", "range", "depthtospace", "spacetodepth", "strided_slice",
              "pack", "unpack", "view", "permute", "cat", "stack", "onehot", "nonzero", "where",
              "castlike", "reverse", "compress", "trilu", "dropout", "topk", "argmax", "argmin",
              "concatenate", "zeropadding2d", "zeropadding1d", "cropping2d", "upsampling2d", "repeatvector",
              "reshape2d", "unflatten", "select", "index_select", "expand_dims", "getitem", "clone", "contiguous"},
    "elementwise": {"add", "sub", "mul", "div", "pow", "sqrt", "exp", "log", "abs", "neg", "reciprocal",
                    "min", "max", "sum", "floor", "ceil", "round", "sign", "equal", "less", "greater",
                    "lessorequal", "greaterorequal", "and", "or", "not", "xor", "mod", "sin", "cos",
                    "isnan", "isinf", "bitshift", "square", "rsqrt", "squared_difference", "maximum",
                    "minimum", "reducesum", "reduceprod", "reducel2", "reducel1", "reducelogsumexp",
                    "reducesumsquare", "cumsum", "bitwiseand", "bitwiseor", "bitwisenot", "addv2",
                    "realdiv", "sub_", "floordiv", "quantizelinear", "dequantizelinear", "quantize",
                    "dequantize", "multiply", "subtract", "average", "maximum_", "rescaling", "mul_", "add_"},
    "attention": {"softmax", "logsoftmax", "attention", "multiheadattention", "scaled_dot_product_attention",
                  "groupqueryattention", "rotaryembedding", "hardmax", "softmaxcrossentropyloss",
                  "multiheadattention_", "packedattention"},
    "control": {"if", "loop", "scan", "while", "call", "stateless_while", "statelesswhile", "statelessif",
                "partitionedcall", "statefulpartitionedcall", "sequenceconstruct", "sequenceat",
                "sequenceinsert", "sequenceempty", "splittosequence", "concatfromsequence"},
}
_OP_TO_CAT = {op: k for k, ops in _CAT_OPS.items() for op in ops}
_CAT_ID = {k: i for i, k in enumerate(CATEGORIES)}


def op_category(op_type: str) -> int:
    """Index into :data:`CATEGORIES` for an op type of any framework (case-insensitive)."""
    o = op_type.lower()
    c = _OP_TO_CAT.get(o)
    if c is None:
        o2 = o.replace("_", "").split(".")[-1].split("::")[-1]
        c = _OP_TO_CAT.get(o2)
        if c is None:
            for key, cat in (("conv", "conv"), ("matmul", "linear"), ("norm", "norm"), ("pool", "pool"),
                             ("attention", "attention"), ("softmax", "attention"), ("relu", "activation"),
                             ("reshape", "shape")):
                if key in o2:
                    c = cat
                    break
    return _CAT_ID[c or "other"]


def _blob(strings: list[str]) -> np.ndarray:
    return np.frombuffer("\0".join(strings).encode("utf-8", "surrogatepass"), dtype=np.uint8)


def _unblob(arr: np.ndarray, n: int) -> list[str]:
    if n == 0:
        return []
    return arr.tobytes().decode("utf-8", "surrogatepass").split("\0")


def _vdict(name: str, graph) -> dict:
    v = graph.values.get(name)
    if v is None:
        return {"name": name, "dtype": None, "shape": None}
    return v.to_dict()


def build_pack(model: Model, out_dir: str | os.PathLike, *, progress: Callable | None = None,
               cap: int | None = None, overview_budget: int = 1000, details: bool = True) -> "ViewPack":
    """Write the pack of ``model`` into ``out_dir`` (created) and return it opened.

    ``cap``: most children per group before artificial grouping (default :data:`layout.DEFAULT_CAP`);
    ``overview_budget``: how many items the precomputed overview may draw (whole levels of groups
    expanded while within it; every group for graphs up to that many nodes). ``details=False`` skips
    the per-node inspector file (a quick first pack; :meth:`ViewPack.details` then gives only what
    the columns hold).
    """
    from .layout import DEFAULT_CAP

    prog = progress or (lambda *a, **k: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = model.summary()
    meta: dict[str, Any] = {"version": PACK_VERSION, "summary": summary, "weights_only": model.is_weights_only}
    arrays: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    g = model.graph
    if g is None:
        weights = [w.to_dict() for w in (model.weights or [])]
        with open(out / "weights.json", "w") as f:
            json.dump(weights, f)
        meta.update(n_nodes=0, n_groups=0, n_edges=0, ops=[], labels=[], overview_expanded=[])
        arrays["details_off"] = np.zeros(1, np.int64)
        np.savez(out / "pack.npz", **arrays)
        (out / "details.jsonl").write_bytes(b"")
        with open(out / "meta.json", "w") as f:
            json.dump(meta, f)
        return ViewPack.load(out)

    nodes = g.nodes
    n = len(nodes)
    names = [nd.name or f"{nd.op_type}_{i}" for i, nd in enumerate(nodes)]
    ops: dict[str, int] = {}
    node_op = np.fromiter((ops.setdefault(nd.op_type, len(ops)) for nd in nodes), np.int32, n)
    op_list = list(ops)
    op_cat = np.array([op_category(o) for o in op_list], np.int8)
    op_w = np.array([node_width(o) for o in op_list], np.float32)
    # edges: producer -> consumer for every value, labelled "shape dtype"
    producer: dict[str, int] = {}
    for i, nd in enumerate(nodes):
        for o in nd.outputs:
            if o:
                producer[o] = i
    labels: dict[str, int] = {}
    vlabel: dict[str, int] = {}
    src, dst, lab = [], [], []
    values = g.values

    def label_of(v: str) -> int:
        lb = vlabel.get(v)
        if lb is None:
            val = values.get(v)
            if val is None or (val.shape is None and val.dtype is None):
                lb = -1
            else:
                text = f"{shape_str(val.shape)} {val.dtype or '?'}"
                lb = labels.setdefault(text, len(labels))
            vlabel[v] = lb
        return lb

    g_in = set(g.inputs)
    read_in: list[tuple[str, int]] = []            # (graph input, node reading it)
    for j, nd in enumerate(nodes):
        for v in nd.inputs:
            i = producer.get(v)
            if i is None:
                if v in g_in:
                    read_in.append((v, j))
                continue
            src.append(i)
            dst.append(j)
            lb = vlabel.get(v)
            lab.append(label_of(v) if lb is None else lb)
    timings["edges"] = time.perf_counter() - t0
    prog(0.55, "grouping")
    io = io_nodes(g, producer, n, read_in)
    from_in = (io.edge_src >= n) & (io.edge_dst < n)
    scopes, rank = view_grouping(nodes, src, dst, io.edge_src[from_in], io.edge_dst[from_in], node_op, op_list)
    groups = build_groups(scopes, names, cap or DEFAULT_CAP, rank=rank)
    timings["groups"] = time.perf_counter() - t0
    io_lab = np.array([label_of(v) for v in io.edge_value], np.int32)
    n_in = int((io.kind == IO_INPUT).sum())
    # drawing order: graph inputs, the model's nodes, graph outputs
    node_rank = np.concatenate([rank + n_in, np.arange(n_in), n + np.arange(n_in, io.n)]).astype(np.int32)

    prog(0.65, "laying out the overview")
    node_w = op_w[node_op] if n else np.zeros(0, np.float32)
    eng = _engine(groups.node_group, groups.parent, np.array(src, np.int32), np.array(dst, np.int32), node_w,
                  io.edge_src, io.edge_dst, io.width, node_rank)
    expanded = sorted(eng.default_expanded(overview_budget))
    ov = eng.layout(expanded)
    timings["overview"] = time.perf_counter() - t0

    arrays.update(
        node_op=node_op, node_cat=op_cat[node_op] if n else np.zeros(0, np.int8), node_group=groups.node_group,
        node_w=node_w.astype(np.float32), names_blob=_blob(names),
        edge_src=np.array(src, np.int32), edge_dst=np.array(dst, np.int32), edge_label=np.array(lab, np.int32),
        group_parent=groups.parent, group_artificial=groups.artificial,
        group_path_blob=_blob(groups.path), group_label_blob=_blob(groups.label),
        group_count=eng.group_count.astype(np.int64),
        io_kind=io.kind, io_names_blob=_blob(io.names), io_w=io.width, io_edge_src=io.edge_src,
        io_edge_dst=io.edge_dst, io_edge_label=io_lab, node_rank=node_rank,
    )
    for k, v in _layout_arrays(ov).items():
        arrays["ov_" + k] = v
    meta.update(n_nodes=n, n_groups=groups.n_groups, n_edges=len(src), n_io=io.n, ops=op_list, labels=list(labels),
                overview_expanded=[int(x) for x in expanded], overview_size=[ov.width, ov.height])

    prog(0.8, "writing node details")
    inits = g.initializers
    offs = np.zeros(n + 1, np.int64)
    pos = 0
    meta["has_details"] = bool(details)
    encode = json.JSONEncoder(default=str).encode      # one encoder: json.dumps(default=...) makes one per call
    with open(out / "details.jsonl", "wb") as f:
        if not details:
            nodes = []
        buf = []
        for i, nd in enumerate(nodes):
            d = {"index": i, "name": names[i], "op_type": nd.op_type, "domain": nd.domain, "scope": nd.scope,
                 "group": groups.path[groups.node_group[i]],
                 "attrs": _jsonable(nd.attrs) if nd.attrs else {},
                 "inputs": [_vdict(v, g) for v in nd.inputs if v and v not in inits],
                 "outputs": [_vdict(v, g) for v in nd.outputs if v],
                 "weights": [inits[v].to_dict() for v in nd.inputs if v in inits]}
            if nd.subgraphs:
                d["subgraphs"] = {k: {"nodes": len(sg.nodes)} for k, sg in nd.subgraphs.items()}
            line = (encode(d) + "\n").encode("utf-8", "surrogatepass")
            buf.append(line)
            pos += len(line)
            offs[i + 1] = pos
            if len(buf) >= 4096:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
    arrays["details_off"] = offs
    timings["details"] = time.perf_counter() - t0
    np.savez(out / "pack.npz", **arrays)
    meta["timings"] = timings
    with open(out / "meta.json", "w") as f:
        json.dump(meta, f, default=str)
    prog(0.95, "pack written")
    return ViewPack.load(out)


def _engine(node_group, group_parent, src, dst, node_w, io_src, io_dst, io_w, node_rank) -> LayoutEngine:
    """The layout engine over the model's nodes and the I/O nodes (held by the root group)."""
    n = len(node_group)
    return LayoutEngine(np.concatenate([node_group, np.zeros(len(io_w), node_group.dtype)]), group_parent,
                        np.concatenate([src, io_src]), np.concatenate([dst, io_dst]),
                        np.concatenate([node_w, io_w]), node_rank, n_model=n)


_LAYOUT_FIELDS = ("node_idx", "node_rect", "box_idx", "box_rect", "frame_idx", "frame_rect", "seg", "seg_edge",
                  "edge_ref", "edge_src_item", "edge_dst_item", "edge_first_seg", "io_idx", "io_rect")


def _layout_arrays(lay: Layout) -> dict[str, np.ndarray]:
    out = {k: getattr(lay, k) for k in _LAYOUT_FIELDS}
    for k in ("node_rect", "box_rect", "frame_rect", "seg", "io_rect"):
        out[k] = out[k].astype(np.float32)
    for k in ("node_idx", "box_idx", "frame_idx", "seg_edge", "edge_ref", "edge_src_item", "edge_dst_item",
              "edge_first_seg", "io_idx"):
        out[k] = out[k].astype(np.int32)
    return out


class ViewPack:
    """An opened pack. Columns are numpy arrays; names and details are read lazily.

    Attributes: ``summary`` (Model.summary()), ``weights_only``, ``n_nodes``, ``n_groups``, ``n_edges``,
    ``ops`` (op table), ``labels`` (edge label table: ``"1×64×56×56 float32"``), ``node_op``,
    ``node_cat``, ``node_group``, ``node_w``, ``edge_src``/``edge_dst``/``edge_label``,
    ``group_parent``, ``group_artificial``, ``group_count`` (nodes inside, all levels),
    ``overview`` (a :class:`Layout`, or None for weights-only packs), ``weights`` (list of dicts for
    weights-only packs, else None). Graph inputs and outputs: ``n_io``, ``io_kind`` (1 input, 2
    output), ``io_names``, ``io_w``, ``io_edge_src`` / ``io_edge_dst`` / ``io_edge_label`` (layout node
    space, see the module's docstring), :meth:`io_details`; ``node_rank``.
    """

    def __init__(self, folder: Path, meta: dict, arrays: dict[str, np.ndarray]):
        self.dir = folder
        self.meta = meta
        self.summary: dict = meta.get("summary", {})
        self.weights_only: bool = bool(meta.get("weights_only"))
        self.n_nodes: int = int(meta.get("n_nodes", 0))
        self.n_groups: int = int(meta.get("n_groups", 0))
        self.n_edges: int = int(meta.get("n_edges", 0))
        self.ops: list[str] = list(meta.get("ops", []))
        self.labels: list[str] = list(meta.get("labels", []))
        a = arrays
        empty_i = np.zeros(0, np.int32)
        self.node_op = a.get("node_op", empty_i)
        self.node_cat = a.get("node_cat", np.zeros(0, np.int8))
        self.node_group = a.get("node_group", empty_i)
        self.node_w = a.get("node_w", np.zeros(0, np.float32))
        self.edge_src = a.get("edge_src", empty_i)
        self.edge_dst = a.get("edge_dst", empty_i)
        self.edge_label = a.get("edge_label", empty_i)
        self.group_parent = a.get("group_parent", empty_i)
        self.group_artificial = a.get("group_artificial", np.zeros(0, bool))
        self.group_count = a.get("group_count", np.zeros(0, np.int64))
        self.n_io: int = int(meta.get("n_io", 0))
        self.io_kind = a.get("io_kind", np.zeros(0, np.int8))
        self.io_w = a.get("io_w", np.zeros(0, np.float32))
        self.io_edge_src = a.get("io_edge_src", empty_i)
        self.io_edge_dst = a.get("io_edge_dst", empty_i)
        self.io_edge_label = a.get("io_edge_label", empty_i)
        self.node_rank = a.get("node_rank", np.arange(self.n_nodes, dtype=np.int32))
        self._io_names_blob = a.get("io_names_blob")
        self._io_names: list[str] | None = None
        self._names_blob = a.get("names_blob")
        self._gpath_blob = a.get("group_path_blob")
        self._glabel_blob = a.get("group_label_blob")
        self._details_off = a.get("details_off", np.zeros(1, np.int64))
        self._names: list[str] | None = None
        self._names_lower: list[str] | None = None
        self._gpaths: list[str] | None = None
        self._glabels: list[str] | None = None
        self._lock = threading.Lock()
        self._engine: LayoutEngine | None = None
        self.overview: Layout | None = None
        if "ov_node_idx" in a:
            f = {k: a["ov_" + k] for k in _LAYOUT_FIELDS}
            w, h = meta.get("overview_size", [0.0, 0.0])
            self.overview = Layout(**f, width=float(w), height=float(h),
                                   expanded=frozenset(int(x) for x in meta.get("overview_expanded", [])) | {0})
        self.weights: list[dict] | None = None
        if self.weights_only:
            try:
                with open(folder / "weights.json") as fh:
                    self.weights = json.load(fh)
            except (OSError, ValueError) as exc:
                raise CorruptFile(f"{folder}: the view data is incomplete ({exc}); open the model again") from None

    @staticmethod
    def load(folder: str | os.PathLike) -> "ViewPack":
        """Open a pack folder written by :func:`build_pack`."""
        folder = Path(folder)
        try:
            with open(folder / "meta.json") as fh:
                meta = json.load(fh)
            with np.load(folder / "pack.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as exc:
            raise CorruptFile(f"{folder}: not a readable view pack ({exc}); open the model again") from None
        if meta.get("version") != PACK_VERSION:
            raise CorruptFile(f"{folder}: view pack version {meta.get('version')} is not {PACK_VERSION}; "
                              f"open the model again")
        return ViewPack(folder, meta, arrays)

    # -- strings -------------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Node names (decoded on first use, ~5 ms per 50k nodes)."""
        if self._names is None:
            self._names = _unblob(self._names_blob, self.n_nodes) if self._names_blob is not None else []
        return self._names

    @property
    def group_paths(self) -> list[str]:
        if self._gpaths is None:
            self._gpaths = _unblob(self._gpath_blob, self.n_groups) if self._gpath_blob is not None else []
        return self._gpaths

    @property
    def group_labels(self) -> list[str]:
        if self._glabels is None:
            self._glabels = _unblob(self._glabel_blob, self.n_groups) if self._glabel_blob is not None else []
        return self._glabels

    @property
    def io_names(self) -> list[str]:
        """Value names of the I/O nodes (``io_names[k]`` for I/O node k)."""
        if self._io_names is None:
            self._io_names = _unblob(self._io_names_blob, self.n_io) if self._io_names_blob is not None else []
        return self._io_names

    def io_details(self, k: int) -> dict:
        """Inspector data of I/O node k: ``{"io": "input"|"output", "name", "shape_text", "nodes"}`` where
        ``nodes`` are the model nodes it feeds (an input) or that produce it (an output)."""
        if not 0 <= k < self.n_io:
            raise IndexError(f"I/O node {k} out of range 0..{self.n_io - 1}")
        me = self.n_nodes + k
        kind = IO_KINDS[int(self.io_kind[k])]
        j = np.flatnonzero((self.io_edge_src == me) | (self.io_edge_dst == me))
        other = np.where(self.io_edge_src[j] == me, self.io_edge_dst[j], self.io_edge_src[j])
        lb = int(self.io_edge_label[j[0]]) if len(j) else -1
        return {"io": kind, "name": self.io_names[k], "shape_text": self.labels[lb] if lb >= 0 else "",
                "nodes": [int(x) for x in other if x < self.n_nodes]}

    def name(self, i: int) -> str:
        return self.names[i]

    def op_type(self, i: int) -> str:
        return self.ops[int(self.node_op[i])]

    def category(self, i: int) -> str:
        return CATEGORIES[int(self.node_cat[i])]

    # -- queries -------------------------------------------------------------------------------------
    def details(self, i: int) -> dict:
        """Inspector data of node i: op_type, name, scope, group, attrs, inputs / outputs
        ``[{name, dtype, shape}]`` (graph values, weights excluded) and weights ``[{name, dtype, shape}]``."""
        if not 0 <= i < self.n_nodes:
            raise IndexError(f"node index {i} out of range 0..{self.n_nodes - 1}")
        if not self.meta.get("has_details", True):
            return {"index": i, "name": self.names[i], "op_type": self.op_type(i), "domain": "",
                    "scope": "", "group": self.group_paths[int(self.node_group[i])], "attrs": {},
                    "inputs": [], "outputs": [], "weights": [], "partial": True}
        a, b = int(self._details_off[i]), int(self._details_off[i + 1])
        with open(self.dir / "details.jsonl", "rb") as f:
            f.seek(a)
            return json.loads(f.read(b - a))

    def find(self, text: str, limit: int | None = None) -> list[int]:
        """Nodes whose op type equals ``text`` or whose name contains it (case-insensitive), in graph
        order; exact name matches first."""
        t = text.strip().lower()
        if not t:
            return []
        if self._names_lower is None:
            self._names_lower = [s.lower() for s in self.names]
        op_ids = [k for k, o in enumerate(self.ops) if o.lower() == t]
        is_op = np.zeros(len(self.ops) + 1, bool)
        is_op[op_ids] = True
        hits = set(np.flatnonzero(is_op[self.node_op]).tolist()) if op_ids else set()
        exact = [i for i, s in enumerate(self._names_lower) if s == t]
        hits.update(i for i, s in enumerate(self._names_lower) if t in s)
        rest = sorted(hits.difference(exact))
        out = exact + rest
        return out[:limit] if limit else out

    def same_structure(self, other: "ViewPack") -> bool:
        """Whether ``other`` holds the same nodes, groups and edges (a layout of one fits the other)."""
        return (other is not None and self.n_nodes == other.n_nodes and self.n_groups == other.n_groups
                and self.n_edges == other.n_edges and np.array_equal(self.node_group, other.node_group)
                and np.array_equal(self.group_parent, other.group_parent)
                and np.array_equal(self.edge_src, other.edge_src) and np.array_equal(self.edge_dst, other.edge_dst)
                and np.array_equal(self.node_w, other.node_w) and np.array_equal(self.io_w, other.io_w)
                and np.array_equal(self.io_edge_src, other.io_edge_src)
                and np.array_equal(self.io_edge_dst, other.io_edge_dst)
                and np.array_equal(self.node_rank, other.node_rank))

    def adopt_engine(self, other: "ViewPack") -> bool:
        """Reuse ``other``'s layout engine (and its caches) when both packs have the same structure."""
        if other._engine is not None and self._engine is None and self.same_structure(other):
            self._engine = other._engine
            return True
        return False

    def edge_text(self, ref: int) -> str:
        """Label (``"1×64×56×56 float32"``) of graph edge ``ref`` (an I/O edge from ``n_edges`` on), ''
        when unknown or ref is -1."""
        if ref < 0:
            return ""
        lb = int(self.edge_label[ref]) if ref < self.n_edges else int(self.io_edge_label[ref - self.n_edges])
        return self.labels[lb] if lb >= 0 else ""

    def engine(self) -> LayoutEngine:
        """The layout engine over this pack (built on first use, ~0.1 s per 50k nodes; thread-safe)."""
        with self._lock:
            if self._engine is None:
                self._engine = _engine(self.node_group, self.group_parent, self.edge_src, self.edge_dst,
                                       self.node_w, self.io_edge_src, self.io_edge_dst, self.io_w, self.node_rank)
            return self._engine
