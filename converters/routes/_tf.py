"""TensorFlow-side helpers shared by the Keras / SavedModel / TFLite hops (worker processes only)."""
from __future__ import annotations

import os
import re

from ..errors import TensorbridgeError, TrustRequired, first_line
from ..formats.keras.files import h5_layer_classes, safe_mode_refusal
from ..layouts import explain_layout as shape_perm


def load_keras(src: str, family: str, trust: bool):
    """(model, flavour) with flavour "keras3" or "tf_keras" (Keras 2 files, such as onnx2tf's .h5)."""
    import keras

    if family == "keras.h5" and h5_layer_classes(src) & {"TFOpLambda", "SlicingOpLambda"}:
        first = None  # a tf_keras (Keras 2) file: Keras 3 cannot rebuild these layers
    else:
        try:
            return keras.models.load_model(src, compile=False, safe_mode=not trust), "keras3"
        except ValueError as exc:
            what = safe_mode_refusal(exc)
            if what:
                raise TrustRequired(f"{src}: the model holds {what} that runs when it is loaded; convert it "
                                    f"only if you trust it (--trust)") from None
            first = exc
        except Exception as exc:
            first = exc
    if family == "keras.h5":
        classes = h5_layer_classes(src)
        if "Lambda" in classes and not trust:
            raise TrustRequired(f"{src}: the model holds Python code (a Lambda layer) that runs when it is "
                                f"loaded; convert it only if you trust it (--trust)")
        try:
            import tf_keras
            return tf_keras.models.load_model(src, compile=False), "tf_keras"
        except Exception as exc:
            first = first or exc
    if first is None:
        raise TensorbridgeError(f"{src}: neither Keras 3 nor tf_keras can load this model")
    raise TensorbridgeError(f"{src}: Keras cannot load this model ({type(first).__name__}: "
                            f"{first_line(first)})")


def keras_input_specs(model, opts):
    """tf.TensorSpec per model input, applying ``input_shapes`` and ``dynamic_batch``."""
    import tensorflow as tf

    specs = []
    inputs = list(model.inputs)
    opts.check_input_names([t.name.split(":")[0] for t in inputs], model.name)
    for idx, t in enumerate(inputs):
        name = t.name.split(":")[0]
        shape = list(t.shape)
        user = opts.shape_for(name, idx, len(inputs))
        if user:
            shape = list(user)
        if opts.dynamic_batch and shape:
            shape[0] = None
        specs.append(tf.TensorSpec(shape, t.dtype if isinstance(t.dtype, tf.DType) else tf.as_dtype(t.dtype),
                                   name=name))
    return specs


_SUFFIX = re.compile(r"_\d+$")


_MOVED_OPS = {"Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze"}
_GENERATED = re.compile(r"__\d+$")


def keras_layer_map(model, onnx_model) -> list[dict]:
    """Keras layer -> ONNX tensor: node ``<model>_1/<layer>_<k>/<op>``; strip exactly one ``_N`` from
    the second path part (Keras' call-uniquifier), take the last such node in graph order."""
    layers = {}
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        layers[layer.name] = layer
    last: dict[str, tuple[str, str]] = {}
    for node in onnx_model.graph.node:
        parts = node.name.split("/")
        if len(parts) < 3 or not node.output:
            continue
        cand = _SUFFIX.sub("", parts[1])
        name = cand if cand in layers else (parts[1] if parts[1] in layers else None)
        # tf2onnx names the layout ops it moves around after whatever op they came from
        # (``…/bn1_1/batchnorm/mul_1__6`` can transpose another layer's tensor): never a layer's output
        if name is not None and not (node.op_type in _MOVED_OPS and _GENERATED.search(parts[-1])):
            last[name] = (node.output[0], node.name)
    shapes = onnx_shapes(onnx_model)
    out = []
    for name, layer in layers.items():
        if name not in last:
            continue
        tensor, node = last[name]
        kshape = None
        try:
            kshape = list(layer.output.shape)
        except Exception:
            pass
        perm, known = shape_perm(kshape, shapes.get(tensor))
        out.append({"source": name, "source_kind": "layer", "source_class": type(layer).__name__,
                    "target": tensor, "target_node": node, "layout": perm, "layout_known": known,
                    "source_shape": kshape, "target_shape": shapes.get(tensor)})
    return out


def onnx_shapes(model) -> dict[str, list]:
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:
        inferred = model
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return shapes


def tflite_io(path: str) -> dict:
    """{"inputs": [{name, shape}], "outputs": [...]} of a TFLite file (-1 dims become None)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    res = {}
    for key, det in (("inputs", it.get_input_details()), ("outputs", it.get_output_details())):
        res[key] = [{"name": d["name"], "shape": [None if s < 0 else int(s)
                                                  for s in d.get("shape_signature", d["shape"])]}
                    for d in det]
    return res


def onnx_io(model) -> dict:
    init = {i.name for i in model.graph.initializer}

    def dims(vi):
        return [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]

    return {"inputs": [{"name": i.name, "shape": dims(i)} for i in model.graph.input if i.name not in init],
            "outputs": [{"name": o.name, "shape": dims(o)} for o in model.graph.output]}


def pair_io(src_list: list[dict], dst_list: list[dict]) -> list[dict]:
    """Pair inputs/outputs by position (converters keep the order), recording layout changes."""
    res = []
    for s, t in zip(src_list, dst_list):
        perm, known = shape_perm(s.get("shape"), t.get("shape"))
        res.append({"source": s["name"], "target": t["name"], "layout": perm, "layout_known": known,
                    "source_shape": s.get("shape"), "target_shape": t.get("shape")})
    return res


def tflite_convert(converter, opts, src: str) -> bytes:
    import tensorflow as tf

    if opts.fp16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as exc:
        text = str(exc)
        ops = re.findall(r"'([a-z_]+\.[A-Za-z0-9_]+)'", text) or re.findall(r"op: ([A-Za-z0-9_]+)", text)
        if ops:
            # Ops TFLite lacks can run through the TF (Flex) kernels, which the LiteRT runtime needs too.
            hint = ""
            if any("TensorList" in o for o in ops):
                hint = ("; for recurrent Keras layers convert the .keras file instead (the batch is then "
                        "fixed to 1)")
            raise TensorbridgeError(f"{src}: TFLite has no builtin kernel for {', '.join(sorted(set(ops))[:5])}; "
                                    f"the model needs TF ops (Flex), which this conversion does not enable{hint}")
        first = first_line(text, 300) or type(exc).__name__
        raise TensorbridgeError(f"{src}: TFLite conversion failed: {first}") from exc


def savedmodel_io(path: str, *, trust: bool = False) -> dict:
    import tensorflow as tf

    from ..safety.savedmodel import check_savedmodel
    check_savedmodel(path, trust=trust)  # tf.saved_model.load runs the model's initializers
    loaded = tf.saved_model.load(path)
    sig = loaded.signatures.get("serving_default") or next(iter(loaded.signatures.values()))
    _, kw = sig.structured_input_signature
    ins = [{"name": k, "shape": [None if d is None else int(d) for d in v.shape]} for k, v in kw.items()]
    outs = [{"name": k, "shape": [None if d is None else int(d) for d in v.shape]}
            for k, v in sig.structured_outputs.items()]
    return {"inputs": ins, "outputs": outs}


def exists_or_fail(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise TensorbridgeError(f"{path}: {what} was not written")
