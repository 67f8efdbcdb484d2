"""What a SavedModel would do outside itself when TensorFlow loads and runs it: checked from its protobuf.

``check_savedmodel(folder, trust=...)`` parses ``saved_model.pb`` with TensorFlow's protobuf classes
(nothing is imported into a graph, nothing runs) and refuses (:class:`TrustRequired`) a SavedModel whose
loading or running would reach an op with an effect outside the model: writing, deleting or reading
files by path, running Python callbacks, opening network connections, writing debug dumps or summaries.
``read_saved_model`` / ``check_files`` are the file guards every SavedModel reader here uses: only
regular files, no symlink out of the folder, ``saved_model.pb`` at most 2 GiB (protobuf's own limit).

What counts as "would run" (the roots), from ``tensorflow/python/saved_model/load.py`` and
``load_v1_in_v2.py``:

* every ``signature_def`` (the runner and the converters call signatures), including the
  ``__saved_model_init_op`` pseudo-signature that TF1 loaders, the C++ loader and converters run;
* TF2 load-time functions from the object graph: each resource's ``_create_resource`` / ``_initialize``
  (run by ``tf.saved_model.load`` right after restoring) and ``_destroy_resource`` (run when the object is
  freed), and every ``saveable_objects`` save / restore function (the checkpoint restore calls them);
* TF1 load-time ops: the init op collections (``saved_model_main_op``, ``legacy_init_op``,
  ``table_initializer``, …), local variables' initializers, and the saver's restore op.

From each root the main GraphDef is walked backward (data and control inputs), and every function a node
names (its op, or any ``func`` / ``list(func)`` attribute: ``f``, ``then_branch``, ``body``, ``branches``,
dataset functions, …) is followed through the function library; each function body is checked whole (TF 2
functions run every stateful op they hold). Not walked: the saver's *save* subgraph
(``saver_def.save_tensor_name``: ``SaveV2`` + ``MergeV2Checkpoints``, present in every SavedModel, run
only when someone saves a checkpoint), and functions attached to objects that nothing here calls.
The saver's *restore* op is walked with checkpoint reads (``RestoreV2``) allowed: reading the model's
own ``variables/`` is its job.

The denylist (:data:`DENY`) is by category, each with the reason a user is told. Allowed on purpose:
``ShardedFilename`` / ``ShardedFilespec`` / ``StringJoin`` (string formatting, no file access); ``Print``
and ``PrintV2`` to stdout/stderr/log (``PrintV2`` to ``file://`` is refused); v1 summary ops
(``ScalarSummary``, ``ImageSummary``, … only build a protobuf string); ``InitializeTableFromTextFile``
when its path is an argument or a saved asset (vocabulary tables ship this way; TF points the path at
the model's own ``assets/``), refused when the path is a constant string in the graph; ``CacheDataset``
with a constant empty file name (an in-memory cache). ``ReadFile`` is refused: a model could read any
file the user can (its contents then land in compare reports), and ``/dev/zero`` or a FIFO would
exhaust memory or hang the job. There is no ``DeleteFile`` op; ``MergeV2Checkpoints`` deletes files.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Set

from ..errors import CorruptFile, TrustRequired, UnsupportedFormat, text_of

__all__ = ["check_savedmodel", "check_files", "read_saved_model", "DENY", "MAX_PB_BYTES"]

MAX_PB_BYTES = 2 << 30  # protobuf cannot parse a message of 2 GiB or more
_MAX_LISTED = 100_000   # directory entries looked at under variables/ and assets/

_INIT_SIG = "__saved_model_init_op"
_RESOURCE_FUNCS = ("_create_resource", "_initialize", "_destroy_resource")
_TF1_INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "main_op", "table_initializer",
                         "init_op", "local_init_op", "ready_op", "ready_for_local_init_op")

# category -> (what the user is told the model would do, ops)
DENY: dict[str, tuple[str, frozenset[str]]] = {
    "write": ("write files", frozenset({
        "WriteFile", "Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints", "CalibrationStatisticsSaver",
        "SaveDataset", "SaveDatasetV2", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord",
        "SnapshotDataset", "SnapshotDatasetV2", "CacheDataset", "CacheDatasetV2"})),
    "summary": ("write summary (event) files", frozenset({
        "SummaryWriter", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "WriteSummary",
        "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary",
        "WriteGraphSummary", "WriteRawProtoSummary", "ImportEvent", "FlushSummaryWriter",
        "CloseSummaryWriter", "StatsAggregatorSetSummaryWriter"})),
    "debug": ("write debug dumps", frozenset({
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
        "DumpTensor"})),
    "read": ("read files by path", frozenset({
        "ReadFile", "MatchingFiles", "ImmutableConst", "Restore", "RestoreV2", "RestoreSlice",
        "LoadAndRemapMatrix", "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
        "TFRecordDataset", "TFRecordDatasetV2", "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2",
        "TextLineDataset", "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "LMDBDataset",
        "ExperimentalLMDBDataset", "SqlDataset", "ExperimentalSqlDataset", "MatchingFilesDataset",
        "ExperimentalMatchingFilesDataset", "LoadDataset", "SnapshotDatasetReader",
        "SnapshotNestedDatasetReader", "SnapshotChunkDataset", "ListSnapshotChunksDataset", "RecordInput",
        "TFRecordReader", "TFRecordReaderV2", "TextLineReader", "TextLineReaderV2", "WholeFileReader",
        "WholeFileReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "LMDBReader"})),
    "python": ("run Python code", frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})),
    "network": ("open network connections", frozenset({
        "RpcServer", "RpcServerStart", "RpcServerRegister", "RpcClient", "RpcCall", "RpcCheckStatus",
        "RpcGetValue", "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
        "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2", "DistributedSave"})),
    "settings": ("change TensorFlow's file system settings", frozenset({"FileSystemSetConfiguration"})),
    "dynamic": ("run a graph it builds while running", frozenset({"DatasetFromGraph"})),
}
_CATEGORY = {op: cat for cat, (_, ops) in DENY.items() for op in ops}
_CHECKPOINT_READS = frozenset({"Restore", "RestoreV2", "RestoreSlice"})


# ---- files ---------------------------------------------------------------------------------------------
def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:
        return False


def _regular(path: str, folder: str, what: str) -> os.stat_result:
    """stat of ``path``, which must be a regular file resolving inside ``folder`` (else a one-line error)."""
    root = os.path.realpath(folder)
    real = os.path.realpath(path)
    if os.path.islink(path) and not _inside(real, root):
        raise CorruptFile(f"{path}: is a link to {real}, outside the SavedModel folder; copy the file into "
                          f"the folder instead of linking it")
    try:
        st = os.stat(real)
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else
                "not a regular file")
        raise CorruptFile(f"{path}: {what} is {kind}, not a regular file; a SavedModel holds regular files only")
    return st


def check_files(folder: str) -> None:
    """Refuse a SavedModel folder whose model files are not regular files inside it.

    Checked: ``saved_model.pb`` / ``.pbtxt`` (also at most :data:`MAX_PB_BYTES`), ``fingerprint.pb``, every
    entry under ``variables/`` and ``assets/`` (TensorFlow opens them while loading: a FIFO would hang it,
    ``/dev/zero`` would fill memory, a link could point anywhere)."""
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        p = os.path.join(folder, name)
        if os.path.lexists(p):
            st = _regular(p, folder, "the model graph")
            if st.st_size >= MAX_PB_BYTES:
                raise CorruptFile(f"{p}: is {st.st_size / (1 << 30):.1f} GiB, more than the 2 GiB a SavedModel "
                                  f"graph can hold; the file is damaged or not a SavedModel")
    p = os.path.join(folder, "fingerprint.pb")
    if os.path.lexists(p):
        _regular(p, folder, "the fingerprint")
    seen = 0
    for sub in ("variables", "assets", "assets.extra"):
        top = os.path.join(folder, sub)
        if not os.path.lexists(top):
            continue
        if os.path.islink(top) and not _inside(os.path.realpath(top), os.path.realpath(folder)):
            raise CorruptFile(f"{top}: is a link to {os.path.realpath(top)}, outside the SavedModel folder; "
                              f"copy it into the folder instead of linking it")
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):  # os.walk follows no symlinked folder
            for d in dirnames:
                dp = os.path.join(dirpath, d)
                if os.path.islink(dp) and not _inside(os.path.realpath(dp), os.path.realpath(folder)):
                    raise CorruptFile(f"{dp}: is a link to {os.path.realpath(dp)}, outside the SavedModel "
                                      f"folder; copy it into the folder instead of linking it")
            for fn in filenames:
                seen += 1
                if seen > _MAX_LISTED:
                    raise CorruptFile(f"{folder}: holds more than {_MAX_LISTED:,} files under {sub}/; "
                                      f"not a SavedModel Tensorbridge opens")
                _regular(os.path.join(dirpath, fn), folder, f"a file of {sub}/")


def read_saved_model(folder: str):
    """``(path, SavedModel proto)`` of a SavedModel folder, read as data after :func:`check_files`."""
    pb = os.path.join(folder, "saved_model.pb")
    pbtxt = os.path.join(folder, "saved_model.pbtxt")
    if not os.path.lexists(pb) and not os.path.lexists(pbtxt):
        raise UnsupportedFormat(f"{folder}: no saved_model.pb in this folder, so not a SavedModel; open a "
                                f"SavedModel folder or a model file")
    check_files(folder)
    try:
        from google.protobuf import message, text_format
        from tensorflow.core.protobuf import saved_model_pb2
    except ImportError as exc:
        raise UnsupportedFormat(f"{folder}: reading SavedModels needs TensorFlow; install tensorflow-cpu and "
                                f"try again") from exc
    sm = saved_model_pb2.SavedModel()
    path = pb if os.path.lexists(pb) else pbtxt
    try:
        # read what the file holds (check_files capped its size): f.read(n) reserves n bytes up front,
        # so asking for the cap itself would cost 2 GiB for any file
        size = os.path.getsize(path)
        if path == pb:
            with open(pb, "rb") as f:
                sm.ParseFromString(f.read(min(size, MAX_PB_BYTES)))
        else:
            with open(pbtxt, encoding="utf-8") as f:
                text_format.Parse(f.read(min(size, MAX_PB_BYTES)), sm)
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError, ValueError, RuntimeError) as exc:
        raise CorruptFile(f"{path}: cannot be parsed as a SavedModel "
                          f"({text_of(exc) or type(exc).__name__}); the file is damaged or "
                          f"truncated") from None
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return path, sm


# ---- what loading and running would execute -----------------------------------------------------------
def _func_refs(node, lib: dict) -> list[str]:
    """Library functions a NodeDef calls: its op, and every func / list(func) attribute."""
    out = [node.op] if node.op in lib else []
    for v in node.attr.values():
        kind = v.WhichOneof("value")
        if kind == "func":
            out.append(v.func.name)
        elif kind == "list":
            out.extend(f.name for f in v.list.func)
    return [f for f in out if f in lib]


def _const_string(nodes: dict, ref: str, assets: Set[str] = frozenset(), depth: int = 0) -> str | None:
    """The string value of a scalar Const that ``ref`` (a function-body or graph input) reads, through
    Identity nodes; None when it is anything else (an argument, a placeholder, a saved asset's tensor,
    a computed string)."""
    name = ref.lstrip("^").split(":")[0]
    n = nodes.get(name)
    if n is None or name in assets or depth > 32:
        return None
    if n.op in ("Identity", "Snapshot") and n.input:
        return _const_string(nodes, n.input[0], assets, depth + 1)
    if n.op != "Const" or "value" not in n.attr:
        return None
    t = n.attr["value"].tensor
    if t.string_val:
        return t.string_val[0].decode(errors="replace")
    return ""


def _input_ref(node, index: int) -> str | None:
    data = [r for r in node.input if not r.startswith("^")]
    return data[index] if index < len(data) else None


def _finding(node, nodes: dict, assets: Set[str], allow: frozenset[str]) -> tuple[str, str] | None:
    """(category verb, op) if ``node`` has an effect outside the model, else None."""
    op = node.op
    if op in allow:
        return None
    if op == "PrintV2":
        stream = node.attr["output_stream"].s.decode(errors="replace") if "output_stream" in node.attr else ""
        return ("write files", f"PrintV2 to {stream}") if stream.startswith("file://") else None
    if op in ("Copy", "CopyHost"):
        spec = node.attr["debug_ops_spec"].list.s if "debug_ops_spec" in node.attr else []
        return (DENY["debug"][0], f"{op} with debug ops") if spec else None
    if op in ("DecodeProtoV2", "EncodeProto"):
        src = node.attr["descriptor_source"].s.decode(errors="replace") if "descriptor_source" in node.attr else ""
        if src and not src.startswith(("local://", "bytes://")):
            return DENY["read"][0], f"{op} with descriptors from {src}"
        return None
    if op in ("InitializeTableFromTextFile", "InitializeTableFromTextFileV2"):
        ref = _input_ref(node, 1)
        path = None if ref is None else _const_string(nodes, ref, assets)
        return (DENY["read"][0], f"{op} of '{path}'") if path is not None else None
    if op in ("CacheDataset", "CacheDatasetV2"):
        ref = _input_ref(node, 1)
        if ref is not None and _const_string(nodes, ref) == "":
            return None  # an in-memory cache
    cat = _CATEGORY.get(op)
    return (DENY[cat][0], op) if cat else None


class _Walker:
    def __init__(self, mg, where: str):
        self.mg, self.where = mg, where
        self.lib = {f.signature.name: f for f in mg.graph_def.library.function}
        self.top = {n.name: n for n in mg.graph_def.node}
        self.assets = {a.tensor_info.name.split(":")[0] for a in mg.asset_file_def if a.tensor_info.name}
        self.seen_nodes: set[str] = set()
        self.seen_funcs: set[str] = set()
        self._bodies: dict[str, dict] = {}

    def _refuse(self, label: str, verb: str, op: str, func: str | None) -> None:
        inside = f" in {func}" if func and func != label else ""
        raise TrustRequired(f"{self.where}: {label} would {verb} ({op}{inside}); run it only if you trust "
                            f"its source (--trust)")

    def walk(self, label: str, nodes: Iterable[str] = (), funcs: Iterable[str] = (),
             allow: frozenset[str] = frozenset()) -> None:
        """Check everything reachable from top-level ``nodes`` and library ``funcs``; raise on a finding."""
        stack = [n.lstrip("^").split(":")[0] for n in nodes]
        pending = [f for f in funcs if f in self.lib]
        while stack:  # the main graph, backward through data and control inputs
            name = stack.pop()
            if name in self.seen_nodes or name not in self.top:
                continue
            self.seen_nodes.add(name)
            node = self.top[name]
            hit = _finding(node, self.top, self.assets, allow)
            if hit:
                self._refuse(label, hit[0], hit[1], None)
            pending.extend(_func_refs(node, self.lib))
            stack.extend(r.lstrip("^").split(":")[0] for r in node.input)
        while pending:  # the function library, transitively
            fname = pending.pop()
            if fname in self.seen_funcs:
                continue
            self.seen_funcs.add(fname)
            fdef = self.lib[fname]
            body = {n.name: n for n in fdef.node_def}
            for node in fdef.node_def:
                hit = _finding(node, body, set(), allow)
                if hit:
                    self._refuse(label, hit[0], hit[1], fname)
                pending.extend(f for f in _func_refs(node, self.lib) if f not in self.seen_funcs)


def _tensor_names(info) -> list[str]:
    kind = info.WhichOneof("encoding")
    if kind == "name":
        return [info.name]
    if kind == "coo_sparse":
        c = info.coo_sparse
        return [c.values_tensor_name, c.indices_tensor_name, c.dense_shape_tensor_name]
    if kind == "composite_tensor":
        out = []
        for comp in info.composite_tensor.components:
            out.extend(_tensor_names(comp))
        return out
    return []


def _concrete_names(og, node_id: int) -> list[str]:
    if not 0 <= node_id < len(og.nodes):
        return []
    n = og.nodes[node_id]
    kind = n.WhichOneof("kind")
    if kind == "function":
        return list(n.function.concrete_functions)
    if kind == "bare_concrete_function":
        return [n.bare_concrete_function.concrete_function_name]
    return []


def check_meta_graph(mg, where: str) -> None:
    """Raise TrustRequired if a MetaGraphDef's load-time or signature code has an outside effect."""
    w = _Walker(mg, where)
    sigs = sorted(mg.signature_def, key=lambda k: (k != "serving_default", k == _INIT_SIG, k))
    for key in sigs:
        sig = mg.signature_def[key]
        refs = [t for info in list(sig.outputs.values()) + list(sig.inputs.values()) for t in _tensor_names(info)]
        label = "its initializer (__saved_model_init_op)" if key == _INIT_SIG else f"its function '{key}'"
        w.walk(label, nodes=refs)
    og = mg.object_graph_def
    if len(og.nodes):
        sig_obj = next((c.node_id for c in og.nodes[0].children if c.local_name == "signatures"), None)
        if sig_obj is not None and sig_obj < len(og.nodes):
            for c in og.nodes[sig_obj].children:
                w.walk(f"its function '{c.local_name}'", funcs=_concrete_names(og, c.node_id))
        for i, n in enumerate(og.nodes):
            for c in n.children:
                if c.local_name in _RESOURCE_FUNCS:
                    w.walk(f"its resource initializer ({c.local_name})", funcs=_concrete_names(og, c.node_id))
            for sname, so in n.saveable_objects.items():
                w.walk(f"its checkpoint restore function for '{sname}'",
                       funcs=_concrete_names(og, so.restore_function) + _concrete_names(og, so.save_function))
    roots = []
    for cname in _TF1_INIT_COLLECTIONS:
        if cname in mg.collection_def:
            roots.extend(mg.collection_def[cname].node_list.value)
    if "local_variables" in mg.collection_def:
        from tensorflow.core.framework import variable_pb2

        for raw in mg.collection_def["local_variables"].bytes_list.value[:100_000]:
            vd = variable_pb2.VariableDef()
            try:
                vd.ParseFromString(raw)
            except Exception:
                continue
            roots += [vd.initializer_name, vd.initial_value_name]
    if roots:
        w.walk("its initializer (init op)", nodes=roots)
    if mg.saver_def.restore_op_name:  # last: its checkpoint reads are allowed, nothing else
        w.walk("its checkpoint restore", nodes=[mg.saver_def.restore_op_name], allow=_CHECKPOINT_READS)


def check_savedmodel(folder: str, *, trust: bool) -> None:
    """Refuse (``TrustRequired``) a SavedModel whose loading or signatures would act outside the model.

    ``folder`` is the SavedModel folder (or its ``saved_model.pb``). The folder's files are always checked
    (:func:`check_files`: regular files, no link out, size cap), trusted or not — a FIFO hangs TensorFlow
    whoever trusts it. With ``trust`` the graph is not checked."""
    folder = os.path.normpath(folder) if os.path.isdir(folder) else os.path.dirname(os.path.abspath(folder))
    if trust:
        check_files(folder)
        return
    _path, sm = read_saved_model(folder)
    for mg in sm.meta_graphs:
        check_meta_graph(mg, folder)
