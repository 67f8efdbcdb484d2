"""ONNX -> TensorFlow SavedModel, tf_keras ``.h5`` and TFLite (fp32 / fp16) with onnx2tf, in one run.

onnx2tf 1.29 changes layout: 4-D image tensors become NHWC (channels last) unless ``keep_nchw`` names
the inputs to keep; some 3-D inputs are read as NCW and transposed too. The sidecar records the
permutation of every tensor it can tell.

How it is run, and why:
* on a copy of the ONNX file in the hop's own folder: onnx2tf (through onnxsim) overwrites its input;
* with a synthetic calibration file in the working folder and HTTP(S) sent to a dead proxy: onnx2tf
  downloads a sample-image file from GitHub inside ``convert()`` for 3-channel image models;
* without onnxsim unless ``simplify``: onnxsim 0.8 costs about 7 s per conversion here and drops the
  ONNX metadata; onnx2tf then runs the model as given;
* ``sys.exit`` from onnx2tf becomes a one-line error naming the ONNX node it was converting.

Correspondence: onnx2tf keeps its ONNX-name -> TF-tensor table only while converting; each op module's
``make_node`` receives it, so the op modules are wrapped (while ``convert`` runs) to keep a reference.
This relies on onnx2tf internals: when they change, the sidecar falls back to inputs and outputs only.
The SavedModel tensor names are the tf_keras layer names of that table; TFLite fuses ops, so its
sidecar records inputs and outputs only.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import shutil

from ..errors import TensorbridgeError, UnsupportedOp, first_line
from ..onnx_fold import fold_constants, pick_from_concat
from ..onnx_rewrites import conv1d_from_unit_conv2d, fold_scale_into_conv, global_pool_as_reduce, uniform_gather_elements
from ..tbmap import write_map
from ..layouts import explain_layout as shape_perm
from .common import offline, tool_version, working_dir
from .options import ConvertOptions

CALIBRATION_NAME = "calibration_image_sample_data_20x128x128x3_float32.npy"
SAVEDMODEL_PARTS = ("saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb")


class _Capture:
    """Wraps ``importlib`` as seen by onnx2tf so every op's make_node reports the shared table."""

    def __init__(self):
        self.table: dict | None = None
        self.current: tuple[str, str] | None = None   # (op type, node name) being converted
        self._wrapped: dict[str, object] = {}

    def import_module(self, name, package=None):
        mod = importlib.import_module(name, package)
        fn = getattr(mod, "make_node", None)
        if fn is not None and name not in self._wrapped:
            self._wrapped[name] = fn
            cap = self

            def make_node(*args, _orig=fn, **kwargs):
                node = kwargs.get("graph_node")
                if node is not None:
                    cap.current = (getattr(node, "op", "?"), getattr(node, "name", "?"))
                table = kwargs.get("tf_layers_dict")
                if isinstance(table, dict):
                    cap.table = table
                return _orig(*args, **kwargs)

            mod.make_node = make_node
        return mod

    def restore(self) -> None:
        for name, fn in self._wrapped.items():
            mod = importlib.import_module(name)
            mod.make_node = fn
        self._wrapped.clear()

    def __getattr__(self, item):
        return getattr(importlib, item)


@contextlib.contextmanager
def _captured():
    import onnx2tf.onnx2tf as core

    cap = _Capture()
    saved = core.importlib
    core.importlib = cap
    try:
        yield cap
    finally:
        core.importlib = saved
        cap.restore()


class _Tee:
    """stdout that still reaches the job log, with the last part kept to read onnx2tf's own errors."""

    def __init__(self, keep: int = 200_000):
        import sys
        self._out, self._buf, self._keep = sys.stdout, [], keep

    def write(self, s: str) -> int:
        self._buf.append(s)
        if len(self._buf) > 4000:
            self._buf = ["".join(self._buf)[-self._keep:]]
        return self._out.write(s)

    def flush(self) -> None:
        self._out.flush()

    def text(self) -> str:
        return "".join(self._buf)[-self._keep:]


def _h5_failure(printed: str) -> str:
    """What tf_keras said when onnx2tf's ``model.save(….h5)`` failed: the layer piece that cannot be
    serialised (``: a recurrent layer's cell has no Keras config (get_config in base_rnn)``), or ""."""
    import re

    tail = printed.rsplit("h5 output started", 1)[-1]
    frames = re.findall(r'File "[^"]*/(?:tf_keras|keras)/src/([\w/]+)\.py", line \d+, in (\w+)', tail)
    errs = re.findall(r"^(\w+Error): ?(.*)$", tail, re.M)
    if not frames and not errs:
        return ""
    where = frames[-1] if frames else None
    err = errs[-1] if errs else ("", "")
    rnn = next((f for f in reversed(frames) if "rnn" in f[0]), None)
    if rnn:
        return (f": its recurrent layer's cell cannot be saved ({err[0] or 'error'} in {where[1]}, from "
                f"{rnn[1]} of {rnn[0].split('/')[-1]})")
    text = f"{err[0]}: {err[1]}".strip(": ")[:120] if err[0] else "error"
    return f": tf_keras {text}" + (f" (in {where[1]} of {where[0].split('/')[-1]})" if where else "")


@contextlib.contextmanager
def _tools_on_path():
    """onnx2tf runs ``onnxsim`` as a program found through PATH: put this interpreter's bin first."""
    import sys

    old = os.environ.get("PATH", "")
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


def run(src: str, out: str, opts: ConvertOptions, *, product: str = "savedmodel", log=print,
        **_) -> dict:
    """Convert ONNX ``src``; ``product`` in {savedmodel, tflite, tf_keras} decides what ``out`` is.

    Returns {"output": out, "extra": [other files kept when ``opts.all_outputs``]}.
    """
    import numpy as np
    import onnx

    work = out + ".onnx2tf"
    os.makedirs(work)
    try:
        model = onnx.load(src)  # also reads external data, so the copy is self-contained
        uniform_gather_elements(model, log=log)  # RoBERTa's token types: onnx2tf's meshgrid breaks the .h5
        if not opts.simplify:  # onnxsim folds constants itself; without it, weights computed by nodes
            fold_constants(model, log=log)  # (Constant / ConstantOfShape / Identity chains) become initializers
            fold_scale_into_conv(model, log=log)  # and a batch norm left after a depthwise conv (onnxsim fuses it)
        pick_from_concat(model, log=log)  # a stacked RNN's h_n[-1]: onnx2tf mistakes the concat's axis
        conv1d_from_unit_conv2d(model, log=log)  # tf2onnx's Keras Conv1D: onnx2tf misreads its Unsqueeze
        global_pool_as_reduce(model, log=log)  # a 3-D global pool (a LayerNorm's mean): onnx2tf guesses its axis
        copy = os.path.join(work, "model.onnx")
        big = sum(len(t.raw_data) for t in model.graph.initializer) > 1_800_000_000
        onnx.save(model, copy, save_as_external_data=big)  # protobuf cannot hold more than 2 GB
        # Synthetic calibration data: 20 images 128x128x3 float32 in [0, 1), what onnx2tf would download.
        rng = np.random.default_rng(0)
        np.save(os.path.join(work, CALIBRATION_NAME),
                rng.random((20, 128, 128, 3), dtype=np.float32))
        init = {i.name for i in model.graph.initializer}
        graph_inputs = [i for i in model.graph.input if i.name not in init]
        opts.check_input_names([i.name for i in graph_inputs], src)
        kwargs = _onnx2tf_kwargs(opts, graph_inputs, product)
        tf_dir = os.path.join(work, "tf")
        log(f"onnx2tf.convert({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")
        printed = _Tee()
        with working_dir(work), offline(), _tools_on_path(), _captured() as cap, contextlib.redirect_stdout(printed):
            try:
                import onnx2tf
                onnx2tf.convert(input_onnx_file_path=copy, output_folder_path=tf_dir, **kwargs)
            except SystemExit as exc:
                raise _failure(src, cap, exc) from None
            except ModuleNotFoundError as exc:
                if (exc.name or "").startswith("onnx2tf.ops."):
                    op = exc.name.rsplit(".", 1)[1]
                    node = cap.current[1] if cap.current and cap.current[0] == op else "?"
                    raise UnsupportedOp(f"{src}: ONNX op '{op}' (node {_node_of(exc, node)}) is not "
                                        f"supported by onnx2tf; replace it in the source model") from None
                raise
            except TensorbridgeError:
                raise
            except Exception as exc:
                raise _failure(src, cap, exc) from exc
        files = _products(tf_dir)
        if product not in files:
            raise TensorbridgeError(f"{src}: onnx2tf finished but wrote no {product} output; "
                                    f"see the job log for its messages")
        if product == "tf_keras" and not _has_model_config(files[product]):
            # onnx2tf writes an empty .h5 when its Keras model cannot be saved (recurrent and some audio
            # models): say so instead of handing over a file nothing can open
            why = _h5_failure(printed.text())
            raise UnsupportedOp(f"{src}: onnx2tf could not save this model as a Keras .h5{why} (it wrote an "
                                f"empty file); convert it to tf (SavedModel) or tflite instead")
        if product == "tf_keras":
            broken = _h5_cannot_run(files[product])
            if broken:
                raise UnsupportedOp(f"{src}: onnx2tf wrote a Keras .h5 that cannot run ({broken}); convert it to "
                                    f"tf (SavedModel) or tflite instead")
        outputs = {product: out}
        os.replace(files[product], out)
        extra = []
        if opts.all_outputs:
            base = out
            for sfx in (".tf_keras.h5", "_fp16.tflite", ".tflite", ".tf"):
                if base.endswith(sfx):
                    base = base[: -len(sfx)]
                    break
            else:
                base = os.path.splitext(base)[0]
            for kind, path in files.items():
                if kind == product:
                    continue
                dst = {"savedmodel": base + ".tf", "tflite": base + ".tflite",
                       "tflite_fp16": base + "_fp16.tflite", "tf_keras": base + ".tf_keras.h5"}.get(kind)
                if dst and not os.path.lexists(dst):
                    os.replace(path, dst)
                    extra.append(dst)
                    outputs[kind] = dst
        warnings = []
        for kind, path in outputs.items():
            _write_map(src, path, kind, model, cap.table if cap else None, graph_inputs, opts)
            if kind.startswith("tflite"):
                flex = flex_ops(path)
                if flex:
                    warnings.append(
                        f"{path}: uses TensorFlow Select ops ({', '.join(flex[:5])}{' …' if len(flex) > 5 else ''}), "
                        f"which the plain TFLite / LiteRT interpreter cannot run; it needs a TFLite runtime "
                        f"with the Flex delegate (on Android: tensorflow-lite-select-tf-ops), or a source that "
                        f"needs no TF ops (float64 tensors and 3-D pooling are the usual causes)")
        for w in warnings:
            log(f"warning: {w}")
        return {"output": out, "extra": extra, "warnings": warnings}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def flex_ops(path: str) -> list[str]:
    """The TF ops (``Flex*`` custom operators) a ``.tflite`` file needs, read from its operator table."""
    from ..formats.tflite_reader import custom_op_names

    try:
        return sorted(n[4:] for n in custom_op_names(path) if n.startswith("Flex"))
    except Exception:
        return []


def _onnx2tf_kwargs(opts: ConvertOptions, graph_inputs, product: str) -> dict:
    kw: dict = {"not_use_onnxsim": not opts.simplify, "copy_onnx_input_output_names_to_tflite": True,
                "verbosity": "info"}
    if product == "tf_keras" or opts.all_outputs:
        kw["output_h5"] = True
    names = [i.name for i in graph_inputs]
    if opts.keep_nchw:
        keep = names if opts.keep_nchw is True else list(opts.keep_nchw)
        unknown = [n for n in keep if n not in names]
        if unknown:
            from .options import BadOption
            raise BadOption(f"keep-NCHW input(s) {', '.join(unknown)} are not inputs of the model "
                            f"(inputs: {', '.join(names)})")
        kw["keep_ncw_or_nchw_or_ncdhw_input_names"] = keep
    shapes = []
    for idx, inp in enumerate(graph_inputs):
        s = opts.shape_for(inp.name, idx, len(graph_inputs))
        if s:
            shapes.append(f"{inp.name}:{','.join(str(d) for d in s)}")
    if shapes:
        kw["overwrite_input_shape"] = shapes
    return kw


def _h5_cannot_run(h5_path: str) -> str | None:
    """Why the Keras .h5 onnx2tf wrote cannot be run once on random inputs (None: it runs). onnx2tf can
    save a model whose layers fail when it is loaded back and called (a Squeeze of a dimension that is
    not 1): handing that file over would be handing over a model that does not work."""
    import re

    from ..errors import one_line
    from ..inputs import random_inputs
    from ..runners import runner_for

    try:
        with runner_for(h5_path) as r:
            r.infer(random_inputs(r.input_specs(), seed=0))
        return None
    except Exception as exc:
        text = one_line(exc)
        layer = re.search(r"calling layer ['\"]([^'\"]+)['\"]", text)
        cause = re.search(r"\}\}\s*(.+?)\s*\[Op:", text)
        if layer:
            return f"layer '{layer.group(1)}' fails: {cause.group(1).strip() if cause else text[:200]}"
        return text[:300]


def _has_model_config(h5_path: str) -> bool:
    """Whether a Keras .h5 holds a model (its ``model_config`` attribute), read as data."""
    try:
        import h5py
        with h5py.File(h5_path, "r") as f:
            return f.attrs.get("model_config") is not None
    except (OSError, ImportError):
        return False


def _products(tf_dir: str) -> dict[str, str]:
    """Sort onnx2tf's mixed output folder into products: a clean SavedModel folder, TFLite files, .h5."""
    names = os.listdir(tf_dir)
    found: dict[str, str] = {}
    if "saved_model.pb" in names:
        sm = tf_dir + ".savedmodel"
        os.makedirs(sm)
        for part in SAVEDMODEL_PARTS:
            if part in names:
                os.replace(os.path.join(tf_dir, part), os.path.join(sm, part))
        found["savedmodel"] = sm
    for n in names:
        p = os.path.join(tf_dir, n)
        if n.endswith("_float32.tflite"):
            found["tflite"] = p
        elif n.endswith("_float16.tflite"):
            found["tflite_fp16"] = p
        elif n.endswith("_float32.h5") and not n.endswith(".weights.h5"):
            found["tf_keras"] = p
    return found


def _node_of(exc: BaseException, fallback: str) -> str:
    return getattr(exc, "onnx_op_name", None) or fallback


def _failure(src: str, cap, exc: BaseException) -> TensorbridgeError:
    op, node = cap.current if cap and cap.current else ("?", "?")
    if isinstance(exc, SystemExit):
        why = f"onnx2tf stopped (exit code {exc.code})"
    else:
        text = first_line(exc)
        why = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if op == "?":
        return TensorbridgeError(f"{src}: onnx2tf failed before converting any node ({why}); "
                                 f"see the job log")
    return UnsupportedOp(f"{src}: onnx2tf failed on ONNX op '{op}' (node {node}): {why}; "
                         f"see the job log for onnx2tf's own messages")


def _tf_shape(t):
    try:
        return [None if d is None else int(d) for d in t.shape]
    except Exception:
        return None


def _write_map(src, out, kind, model, table, graph_inputs, opts) -> None:
    from ._tf import onnx_shapes as _onnx_shapes

    onnx_shapes = _onnx_shapes(model)
    target_format = {"savedmodel": "savedmodel", "tflite": "tflite", "tflite_fp16": "tflite",
                     "tf_keras": "keras.h5"}[kind]
    notes = []
    inputs, outputs, tensors = [], [], []
    tf_in = _target_io(out, kind)
    by_name = {t["name"]: t for t in tf_in["inputs"]}
    names_match = bool(by_name.keys() & {i.name for i in graph_inputs})
    sig = tf_in.get("signature") or {"inputs": {}, "outputs": {}}
    for idx, inp in enumerate(graph_inputs):
        if names_match:  # SavedModel signatures keep the ONNX names
            tgt = by_name.get(inp.name)
        elif inp.name in sig["inputs"]:  # a TFLite signature keyed by the ONNX names
            tgt = sig["inputs"][inp.name]
        else:            # TFLite renames them (serving_default_x:0) but keeps the order
            tgt = tf_in["inputs"][idx] if idx < len(tf_in["inputs"]) else None
        tgt = dict(tgt or {"name": inp.name, "shape": None})
        if tgt["shape"] is None and table and inp.name in table:
            tgt["shape"] = _tf_shape(table[inp.name].get("tf_node"))
        perm, known = shape_perm(onnx_shapes.get(inp.name), tgt["shape"])
        inputs.append({"source": inp.name, "target": tgt["name"], "layout": perm, "layout_known": known,
                       "source_shape": onnx_shapes.get(inp.name), "target_shape": tgt["shape"]})
    for idx, o in enumerate(model.graph.output):
        if o.name in sig["outputs"]:  # the TFLite interpreter's output order is not the graph's: by name
            tgt = dict(sig["outputs"][o.name])
        else:
            tgt = tf_in["outputs"][idx] if idx < len(tf_in["outputs"]) else {"name": o.name, "shape": None}
        if tgt["shape"] is None and table and o.name in table:
            tgt["shape"] = _tf_shape(table[o.name].get("tf_node"))
        perm, known = shape_perm(onnx_shapes.get(o.name), tgt["shape"])
        outputs.append({"source": o.name, "target": tgt["name"], "layout": perm, "layout_known": known,
                        "source_shape": onnx_shapes.get(o.name), "target_shape": tgt["shape"]})
    if kind in ("savedmodel", "tf_keras") and table:
        for node in model.graph.node:
            for name in node.output:
                entry = table.get(name)
                if not isinstance(entry, dict) or entry.get("tf_node") is None:
                    continue
                t = entry["tf_node"]
                hist = getattr(t, "_keras_history", None)
                layer = getattr(getattr(hist, "layer", None), "name", None) if hist else None
                if not isinstance(layer or getattr(t, "name", None), str):
                    continue  # a tensor onnx2tf made without a layer or a name: nothing to pair it with
                tshape = _tf_shape(t)
                perm, known = shape_perm(onnx_shapes.get(name), tshape)
                tensors.append({"source": name, "source_node": node.name, "source_op": node.op_type,
                                "target": layer or getattr(t, "name", None), "layout": perm,
                                "layout_known": known, "source_shape": onnx_shapes.get(name),
                                "target_shape": tshape})
        notes.append("targets are layer names of onnx2tf's tf_keras model (the SavedModel's op names "
                     "start with them); a layout marked unknown needs a value check: same-shape "
                     "transposes (square images, attention scores) cannot be told from shapes")
    elif kind in ("savedmodel", "tf_keras"):
        notes.append("onnx2tf's internal tensor table was not available (its internals changed); only "
                     "inputs and outputs are mapped")
    elif table:
        tensors = _tflite_tensors(out, model, table, onnx_shapes)
        notes.append("TFLite tensors are named after the fused TF ops ('a/relu/Relu;a/add/Add;…'); each is "
                     "mapped to the latest ONNX node among those ops, keeping the last TFLite tensor per "
                     "ONNX output. Outputs fused away (pre-activation Conv/Add/Gemm, MatMul before its "
                     "bias, Reshape/Transpose chains) have no entry")
    else:
        notes.append("onnx2tf's internal tensor table was not available; only inputs and outputs are mapped")
    write_map(out, hop="savedmodel_from_onnx", tool=tool_version("onnx2tf"), source=src,
                  source_format="onnx", target_format=target_format, inputs=inputs, outputs=outputs,
                  tensors=tensors, notes=notes, product=kind)


def _tflite_tensors(path, model, table, onnx_shapes) -> list[dict]:
    """ONNX output -> TFLite tensor, through the tf_keras layer names in the fused TFLite tensor names."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path=path)
        details = {d["index"]: d for d in it.get_tensor_details()}
        ops = it._get_ops_details()
        produced = [i for op in ops for i in op["outputs"]]
        graph_inputs = {d["index"] for d in it.get_input_details()}
    except Exception:
        return []
    # tensors computed from stored ones only (a float16 file's DEQUANTIZE of each weight and bias): weights,
    # never a layer's activation, though they carry the layer's name
    made = set(produced)
    constant = {i for i in details if i not in made and i not in graph_inputs}
    for op in ops:  # ops are in execution order
        if all(i < 0 or i in constant for i in op["inputs"]):
            constant.update(op["outputs"])
    order = {}
    layer_to_onnx: dict[str, tuple[int, str]] = {}
    for k, node in enumerate(model.graph.node):
        for name in node.output:
            order[name] = k
            entry = table.get(name)
            t = entry.get("tf_node") if isinstance(entry, dict) else None
            hist = getattr(t, "_keras_history", None)
            layer = getattr(getattr(hist, "layer", None), "name", None) if hist else None
            if layer:
                layer_to_onnx[layer] = (k, name)
    found: dict[str, tuple[int, dict]] = {}
    for idx in produced:
        d = details.get(idx)
        if d is None or idx in constant:
            continue
        cands = []
        for part in d["name"].split(";"):
            segs = part.split("/")
            if len(segs) >= 2 and segs[1] in layer_to_onnx:
                cands.append(layer_to_onnx[segs[1]])
        if not cands:
            continue
        _, onnx_name = max(cands)
        shape = [int(v) for v in d.get("shape_signature", d["shape"])]
        shape = [None if v < 0 else v for v in shape]
        src_shape = onnx_shapes.get(onnx_name)
        perm, known = shape_perm(src_shape, shape)
        if src_shape and (len(src_shape) != len(shape) or (all(isinstance(v, int) for v in src_shape + shape)
                                                           and sorted(src_shape) != sorted(shape))):
            continue  # not the same tensor in another layout
        found[onnx_name] = (idx, {"source": onnx_name, "target": d["name"], "target_index": int(idx),
                                  "layout": perm, "layout_known": known, "source_shape": src_shape,
                                  "target_shape": shape})
    return [e for _, (_, e) in sorted(found.items(), key=lambda kv: order.get(kv[0], 0))]


def _target_io(out: str, kind: str) -> dict:
    """Input/output names and shapes of the written product, in the ONNX graph's order where known. For a
    TFLite file, ``signature`` maps the ONNX names onnx2tf keeps as its signature's keys to those tensors
    (the interpreter's own output order is not the ONNX graph's)."""
    res: dict = {"inputs": [], "outputs": []}
    try:
        if kind.startswith("tflite"):
            from ai_edge_litert.interpreter import Interpreter
            it = Interpreter(model_path=out)

            def row(d: dict) -> dict:
                return {"name": d["name"], "shape": [None if s < 0 else int(s)
                                                     for s in d.get("shape_signature", d["shape"])]}

            for key, det in (("inputs", it.get_input_details()), ("outputs", it.get_output_details())):
                res[key] = [row(d) for d in det]
            sigs = it.get_signature_list()
            if len(sigs) == 1:
                runner = it.get_signature_runner(next(iter(sigs)))
                res["signature"] = {"inputs": {k: row(d) for k, d in runner.get_input_details().items()},
                                    "outputs": {k: row(d) for k, d in runner.get_output_details().items()}}
        elif kind == "savedmodel":
            from ._tf import savedmodel_io
            res = savedmodel_io(out)
    except Exception:
        pass
    return res
