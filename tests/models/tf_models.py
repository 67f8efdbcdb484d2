"""Tiny Keras / TensorFlow / TFLite models for the TF-family reader tests (built by the frameworks themselves).

Facts use the neutral model's conventions: shapes as lists with None for the batch dim, dtypes as numpy
names, ``node_count`` = layer calls excluding InputLayers (Keras) or operators (TFLite).
"""
from __future__ import annotations

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LAMBDA_MARKER = "lambda_ran.marker"  # written beside the model by the Lambda layer whenever it runs


def _keras():
    import keras

    keras.utils.set_random_seed(0)
    return keras


def _shape(s):
    return [None if d is None else int(d) for d in s]


def _cnn():
    keras = _keras()
    from keras import layers

    inp = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    y = layers.Conv2D(4, 1, name="proj")(x)
    x = layers.Add(name="add")([x, y])
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    out = layers.Dense(10, name="logits")(x)
    return keras.Model(inp, out, name="cnn")


def _keras_facts(m) -> dict:
    import numpy as np

    layers = [l for l in m.layers if type(l).__name__ != "InputLayer"]
    return {
        "param_count": int(m.count_params()),
        "node_count": len(layers),
        "layer_names": [l.name for l in layers],
        "layer_classes": [type(l).__name__ for l in layers],
        "inputs": [{"shape": _shape(t.shape), "dtype": str(np.dtype(t.dtype))} for t in m.inputs],
        "outputs": [{"shape": _shape(t.shape), "dtype": str(np.dtype(t.dtype))} for t in m.outputs],
        "weights": {w.path: _shape(w.shape) for w in m.weights},
    }


def build_cnn_keras(out: str) -> dict:
    m = _cnn()
    m.save(out)
    facts = _keras_facts(m)
    facts["kernel_conv1"] = m.get_layer("conv1").kernel.numpy().ravel()[:5].tolist()
    return facts


def build_cnn_h5(out: str) -> dict:
    m = _cnn()
    m.save(out)  # Keras 3 writes the legacy HDF5 layout (model_config + model_weights)
    facts = _keras_facts(m)
    facts["kernel_conv1"] = m.get_layer("conv1").kernel.numpy().ravel()[:5].tolist()
    return facts


def build_mlp_keras(out: str) -> dict:
    keras = _keras()
    from keras import layers

    m = keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu", name="fc1"),
                          layers.Dropout(0.1, name="drop"), layers.Dense(3, name="fc2"),
                          layers.Softmax(name="probs")], name="mlp")
    m.save(out)
    return _keras_facts(m)


def build_nested_keras(out: str) -> dict:
    keras = _keras()
    from keras import layers

    inner = keras.Sequential([keras.Input((8,)), layers.Dense(5, name="d1")], name="inner_seq")
    j = keras.Input((5,), name="j")
    inner_func = keras.Model(j, layers.Dense(4, name="d2")(j), name="inner_func")
    x = keras.Input((8,), name="x")
    out_t = layers.Dense(2, name="head")(inner_func(inner(x)))
    m = keras.Model(x, out_t, name="outer")
    m.save(out)
    facts = _keras_facts(m)
    facts["leaf_nodes"] = ["inner_seq/d1", "inner_func/d2", "head"]
    return facts


def build_legacy_tfkeras_h5(out: str) -> dict:
    """A Keras 2 (tf_keras) HDF5 file: config without tensor shapes, weight names with ':0'."""
    import tf_keras
    from tf_keras import layers

    inp = tf_keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv1")(inp)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Flatten(name="flat")(x)
    out_t = layers.Dense(6, name="logits")(x)
    m = tf_keras.Model(inp, out_t, name="tk_cnn")
    m.save(out)
    layers_ = [l for l in m.layers if type(l).__name__ != "InputLayer"]
    return {"param_count": int(m.count_params()), "node_count": len(layers_),
            "inputs": [{"shape": _shape(t.shape), "dtype": "float32"} for t in m.inputs],
            "outputs": [{"shape": _shape(t.shape), "dtype": "float32"} for t in m.outputs],
            "bn_shape": _shape(m.get_layer("bn1").output.shape)}


def build_tfkeras_keras(out: str) -> dict:
    """tf_keras's own .keras archive: weight groups carry no layer names, only class-name order."""
    import tf_keras
    from tf_keras import layers

    inp = tf_keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(inp)   # its weights sit in group "conv2d"
    y = layers.Conv2D(4, 1)(x)                                    # auto-named "conv2d": group "conv2d_1"
    out_t = layers.Dense(3, name="logits")(layers.Flatten()(layers.Add()([x, y])))
    m = tf_keras.Model(inp, out_t, name="tk_keras")
    m.save(out)
    return {"param_count": int(m.count_params()),
            "weights": {w.name.split(":")[0]: _shape(w.shape) for w in m.weights},
            "outputs": [_shape(m.output.shape)]}


def build_weights_only_h5(out: str) -> dict:
    import tf_keras
    from tf_keras import layers

    m = tf_keras.Sequential([tf_keras.Input((8,)), layers.Dense(16, name="fc1"), layers.Dense(3, name="fc2")])
    m.save_weights(out)
    return {"param_count": int(m.count_params()), "weight_count": len(m.weights)}


def build_lambda_keras(out: str) -> dict:
    keras = _keras()
    from keras import layers

    marker = os.path.join(os.path.dirname(out), LAMBDA_MARKER)

    x = keras.Input((4,), name="x")
    h = layers.Dense(3, name="fc")(x)
    # A real lambda expression: Keras stores its bytecode in the file (a named def is stored by name only).
    # The path is a constant inside the code because Keras cannot reload a lambda's default arguments.
    fn = eval(f"lambda t: (open({marker!r}, 'w').write('ran'), t * 2.0)[1]")  # noqa: S307 - test fixture
    out_t = layers.Lambda(fn, name="double")(h)
    m = keras.Model(x, out_t, name="with_lambda")
    m.save(out)
    if os.path.exists(marker):
        os.remove(marker)  # building the model ran the lambda; the tests need a clean slate
    facts = _keras_facts(m)
    facts["marker"] = marker
    return facts


def build_custom_layer_keras(out: str) -> dict:
    """A registered custom layer class (unknown to the reading process) and a layer called twice."""
    keras = _keras()
    from keras import layers

    @keras.saving.register_keras_serializable(package="tb_test")
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kw):
            super().__init__(**kw)
            self.factor = factor

        def build(self, shape):
            self.w = self.add_weight(shape=(shape[-1],), name="w")

        def call(self, x):
            return x * self.w * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    x = keras.Input((5,), name="x")
    shared = layers.Dense(5, name="shared")
    h = Scale(name="scale")(shared(shared(x)))
    m = keras.Model(x, layers.Dense(2, name="out")(h), name="custom")
    m.save(out)
    m.save_weights(os.path.join(os.path.dirname(out), "custom.weights.h5"))
    facts = _keras_facts(m)
    facts["weight_count"] = len(m.weights)
    return facts


def build_subclassed_keras(out: str) -> dict:
    keras = _keras()
    from keras import layers

    class TwoDense(keras.Model):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.first = layers.Dense(4, name="first")
            self.second = layers.Dense(2, name="second")

        def call(self, x):
            return self.second(self.first(x))

    m = TwoDense(name="two_dense")
    m(keras.ops.zeros((1, 3)))
    m.save(out)
    return {"param_count": int(m.count_params()), "layers": ["first", "second"]}


def build_tfkeras_nested_h5(out: str) -> dict:
    import tf_keras
    from tf_keras import layers

    inner = tf_keras.Sequential([tf_keras.Input((8,)), layers.Dense(5, name="d1")], name="inner")
    x = tf_keras.Input((8,), name="x")
    m = tf_keras.Model(x, layers.Dense(2, name="head")(inner(x)), name="tk_nested")
    m.save(out)
    return {"param_count": int(m.count_params()), "outputs": [_shape(m.output.shape)],
            "leaf_nodes": ["inner/d1", "head"]}


def build_mobilenet_keras(out: str) -> dict:
    keras = _keras()
    m = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), classes=10)
    m.save(out)
    return _keras_facts(m)


def build_exported_savedmodel(out: str) -> dict:
    _keras()  # configures Keras before the model is built
    m = _cnn()
    m.export(out, verbose=False)
    import tensorflow as tf

    loaded = tf.saved_model.load(out)
    sigs = {}
    for name, fn in loaded.signatures.items():
        ins = fn.structured_input_signature[1]
        outs = fn.structured_outputs
        sigs[name] = {"inputs": {k: _shape(v.shape) for k, v in ins.items()},
                      "outputs": {k: _shape(v.shape) for k, v in outs.items()}}
    return {"signatures": sigs, "param_count": int(m.count_params()),
            "variables": sorted(v.path for v in m.weights)}


def build_module_savedmodel(out: str) -> dict:
    import tensorflow as tf

    class Scaler(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(tf.ones([3, 2]) * 0.5, name="w")
            self.b = tf.Variable(tf.zeros([2]), name="b")

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def project(self, x):
            return {"y": tf.matmul(x, self.w) + self.b}

        @tf.function(input_signature=[tf.TensorSpec([2, 5], tf.int32, name="ids")])
        def count(self, ids):
            return {"total": tf.reduce_sum(ids, axis=1), "ids_sq": ids * ids}

    mod = Scaler()
    tf.saved_model.save(mod, out, signatures={"serving_default": mod.project, "count": mod.count})
    return {"signatures": {
        "serving_default": {"inputs": {"x": [None, 3]}, "outputs": {"y": [None, 2]}},
        "count": {"inputs": {"ids": [2, 5]}, "outputs": {"total": [2], "ids_sq": [2, 5]}}},
        "param_count": 8}


def build_stripped_savedmodel(out: str) -> dict:
    """The Keras export with every ``_output_shapes`` attribute removed (as graph-rewriting tools leave it)."""
    src = os.path.join(os.path.dirname(out), "exported_savedmodel")
    if not os.path.isdir(src):
        build_exported_savedmodel(src)
    if os.path.isdir(out):
        shutil.rmtree(out)
    shutil.copytree(src, out)
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    pb = os.path.join(out, "saved_model.pb")
    with open(pb, "rb") as f:
        sm.ParseFromString(f.read())
    removed = 0
    for mg in sm.meta_graphs:
        nodes = list(mg.graph_def.node) + [n for fn in mg.graph_def.library.function for n in fn.node_def]
        for n in nodes:
            if "_output_shapes" in n.attr:
                del n.attr["_output_shapes"]
                removed += 1
        for fn in mg.graph_def.library.function:
            for a in fn.arg_attr.values():
                if "_output_shapes" in a.attr:
                    del a.attr["_output_shapes"]
    with open(pb, "wb") as f:
        f.write(sm.SerializeToString())
    return {"removed": removed, "conv_shape": [None, 16, 16, 4], "pool_shape": [None, 8, 8, 4]}


def build_cnn_tflite(out: str) -> dict:
    import tensorflow as tf

    m = _cnn()
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    data = conv.convert()
    with open(out, "wb") as f:
        f.write(data)
    interp = tf.lite.Interpreter(  # no default delegate: its DELEGATE pseudo-op is not in the file
        model_content=data,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    ins = [{"name": d["name"], "shape": [int(x) for x in d["shape"]],
            "shape_signature": [int(x) for x in d["shape_signature"]], "dtype": str(d["dtype"].__name__)}
           for d in interp.get_input_details()]
    outs = [{"name": d["name"], "shape": [int(x) for x in d["shape"]],
             "shape_signature": [int(x) for x in d["shape_signature"]], "dtype": str(d["dtype"].__name__)}
            for d in interp.get_output_details()]
    ops = interp._get_ops_details()
    # constant elements counted through TF's own object-API reader (a different code path from ours)
    import numpy as np
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    sg = obj.subgraphs[0]
    consts = [t for t in sg.tensors if obj.buffers[t.buffer].data is not None and len(obj.buffers[t.buffer].data)]
    return {"inputs": ins, "outputs": outs, "op_count": len(ops),
            "const_elements": int(sum(int(np.prod(t.shape)) for t in consts)), "const_count": len(consts),
            "tensor_count": len(sg.tensors),
            "op_types": [o["op_name"] for o in ops], "signatures": list(interp.get_signature_list()),
            "param_count_keras": int(m.count_params())}


def build_int8_tflite(out: str) -> dict:
    """Full-integer quantized conv net (float in/out): per-channel weight scales, quantize/dequantize ops."""
    import numpy as np
    import tensorflow as tf

    keras = _keras()
    from keras import layers

    inp = keras.Input((8, 8, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inp)
    m = keras.Model(inp, layers.Dense(2, name="fc")(layers.Flatten(name="flat")(x)), name="q")
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.standard_normal((1, 8, 8, 3)).astype("float32")] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    data = conv.convert()
    with open(out, "wb") as f:
        f.write(data)
    interp = tf.lite.Interpreter(model_content=data)
    quant = {}
    for d in interp.get_tensor_details():
        qp = d["quantization_parameters"]
        if len(qp["scales"]):
            quant[d["name"]] = {"scale": [float(v) for v in qp["scales"]],
                                "zero_point": [int(v) for v in qp["zero_points"]],
                                "dtype": d["dtype"].__name__}
    return {"quantized": quant}


def build_while_tflite(out: str) -> dict:
    """A loop the converter keeps as a WHILE op with cond and body subgraphs."""
    import tensorflow as tf
    from tensorflow.lite.tools import flatbuffer_utils

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def loop(x):
        i = tf.constant(0)
        _, y = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, v * 2.0 + 1.0), [i, x])
        return {"y": y}

    conv = tf.lite.TFLiteConverter.from_concrete_functions([loop.get_concrete_function()], loop)
    data = conv.convert()
    with open(out, "wb") as f:
        f.write(data)
    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    main = obj.subgraphs[0]
    ops = [flatbuffer_utils.opcode_to_name(obj, op.opcodeIndex) for op in main.operators]
    return {"subgraph_count": len(obj.subgraphs), "main_ops": ops,
            "sub_names": [(s.name or b"").decode() for s in obj.subgraphs]}


def build_truncated_keras(out: str) -> dict:
    full = out + ".full.keras"
    build_mlp_keras(full)
    data = open(full, "rb").read()
    os.remove(full)
    with open(out, "wb") as f:
        f.write(data[: len(data) // 2])
    return {}


def build_truncated_tflite(out: str) -> dict:
    src = os.path.join(os.path.dirname(out), "cnn.tflite")
    if not os.path.exists(src):
        build_cnn_tflite(src)
    data = open(src, "rb").read()
    with open(out, "wb") as f:
        f.write(data[: len(data) // 3])
    return {}


def build_garbage_h5(out: str) -> dict:
    with open(out, "wb") as f:
        f.write(b"\x89HDF\r\n\x1a\n" + os.urandom(2048))
    return {}


def build_plain_h5(out: str) -> dict:
    """An HDF5 file that is not Keras at all (a data file)."""
    import h5py
    import numpy as np

    with h5py.File(out, "w") as f:
        f["measurements"] = np.arange(10.0)
    return {}


def build_truncated_pb_savedmodel(out: str) -> dict:
    src = os.path.join(os.path.dirname(out), "module_savedmodel")
    if not os.path.isdir(src):
        build_module_savedmodel(src)
    if os.path.isdir(out):
        shutil.rmtree(out)
    shutil.copytree(src, out)
    pb = os.path.join(out, "saved_model.pb")
    data = open(pb, "rb").read()
    with open(pb, "wb") as f:
        f.write(data[: len(data) // 2])
    return {}


def build_no_savedmodel_dir(out: str) -> dict:
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "variables"))
    with open(os.path.join(out, "fingerprint.pb"), "wb") as f:
        f.write(b"\x08\x01")
    return {}


MODELS = {
    "cnn.keras": build_cnn_keras,
    "cnn.h5": build_cnn_h5,
    "mlp.keras": build_mlp_keras,
    "nested.keras": build_nested_keras,
    "tk_cnn.h5": build_legacy_tfkeras_h5,
    "weights_only.h5": build_weights_only_h5,
    "tk_cnn.keras": build_tfkeras_keras,
    "lambda.keras": build_lambda_keras,
    "mobilenet_v2.keras": build_mobilenet_keras,
    "custom.keras": build_custom_layer_keras,  # also writes custom.weights.h5 (Keras 3 weights layout)
    "subclassed.keras": build_subclassed_keras,
    "tk_nested.h5": build_tfkeras_nested_h5,
    "exported_savedmodel": build_exported_savedmodel,
    "module_savedmodel": build_module_savedmodel,
    "stripped_savedmodel": build_stripped_savedmodel,
    "cnn.tflite": build_cnn_tflite,
    "int8.tflite": build_int8_tflite,
    "while.tflite": build_while_tflite,
    "truncated.keras": build_truncated_keras,
    "truncated.tflite": build_truncated_tflite,
    "garbage.h5": build_garbage_h5,
    "no_savedmodel": build_no_savedmodel_dir,
    "plain.h5": build_plain_h5,
    "truncated_pb_savedmodel": build_truncated_pb_savedmodel,
}
