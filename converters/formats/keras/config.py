"""Reading a stored Keras config: what layers are, their calls, tensor references, attributes and weight names."""
from __future__ import annotations

from typing import Any



_LAMBDA_CLASSES = {"Lambda", "__lambda__"}


_MODEL_CLASSES = {"Functional", "Model", "Sequential"}


_BULKY_SUFFIXES = ("_initializer", "_regularizer", "_constraint")


_BULKY_KEYS = {"name", "layers", "input_layers", "output_layers", "build_input_shape", "build_config",
               "compile_config", "trainable", "batch_input_shape", "batch_shape"}


# Variable names of built-in layers in the order Keras creates (and stores) them. Used only when the
# number of stored variables matches; otherwise variables are named by index.
_VAR_NAMES = {
    **{c: ["kernel", "bias"] for c in (
        "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
        "DepthwiseConv1D", "DepthwiseConv2D", "EinsumDense", "Convolution2D")},
    "SeparableConv1D": ["depthwise_kernel", "pointwise_kernel", "bias"],
    "SeparableConv2D": ["depthwise_kernel", "pointwise_kernel", "bias"],
    "Embedding": ["embeddings"],
    "PReLU": ["alpha"],
}


_SAME_SHAPE = {
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "BatchNormalization",
    "LayerNormalization", "GroupNormalization", "UnitNormalization", "Identity", "ActivityRegularization",
    "PReLU", "Rescaling", "Normalization", "ThresholdedReLU",
}


_ELEMENTWISE_MERGE = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"}


def _classify(cfg: Any) -> tuple[bool, bool]:
    """(has_lambda, has_custom): whether the config names a Lambda or anything outside the Keras packages."""
    has_lambda = has_custom = False
    stack = [cfg]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            cls = x.get("class_name")
            if cls in _LAMBDA_CLASSES:
                has_lambda = True
            mod = x.get("module")
            if isinstance(mod, str) and cls is not None and not (
                    mod == "keras" or mod.startswith(("keras.", "tf_keras", "builtins"))):
                has_custom = True
            reg = x.get("registered_name")
            if isinstance(reg, str) and ">" in reg:
                has_custom = True
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return has_lambda, has_custom


def _simplify(x: Any, depth: int = 0) -> Any:
    """Serialized Keras objects become their class name (plus a small config); dtype policies their name."""
    if isinstance(x, dict):
        if x.get("class_name") == "DTypePolicy" or x.get("class_name") == "Policy":
            return (x.get("config") or {}).get("name")
        if "class_name" in x and "config" in x:
            cfg = x.get("config")
            if x["class_name"] in _LAMBDA_CLASSES:
                return "<python function>"
            if not cfg or depth > 1:
                return x["class_name"]
            return {"class_name": x["class_name"], **{k: _simplify(v, depth + 1) for k, v in cfg.items()
                                                      if k not in ("code", "defaults", "closure")}}
        return {k: _simplify(v, depth + 1) for k, v in x.items()}
    if isinstance(x, list):
        return [_simplify(v, depth + 1) for v in x]
    return x


def _attrs(layer_cfg: dict) -> dict:
    cfg = layer_cfg.get("config") or {}
    out = {}
    for k, v in cfg.items():
        if k in _BULKY_KEYS or k.endswith(_BULKY_SUFFIXES) or k.endswith("_regularizer"):
            continue
        if k == "function" and layer_cfg.get("class_name") in _LAMBDA_CLASSES:
            out[k] = "<python function: runs only when the file is trusted>"
            continue
        if v is None:
            continue
        out[k] = _simplify(v)
    return out


def _norm_shape(s) -> tuple | None:
    if s is None or not isinstance(s, (list, tuple)):
        return None
    return tuple(int(d) if isinstance(d, (int, float)) and d is not None and d >= 0 else None for d in s)


def _dtype_name(d) -> str | None:
    if isinstance(d, dict):
        d = (d.get("config") or {}).get("name")
    if not isinstance(d, str):
        return None
    if d.startswith("mixed_"):
        return d[len("mixed_"):]
    return d


def _is_tensor_ref(x) -> bool:
    return isinstance(x, dict) and x.get("class_name") == "__keras_tensor__"


def _tensor_refs(x, out: list) -> list:
    """Keras 3 call arguments: every ``__keras_tensor__`` in order, as (layer, node, tensor, shape, dtype)."""
    if _is_tensor_ref(x):
        c = x.get("config") or {}
        h = c.get("keras_history") or [None, 0, 0]
        out.append((h[0], int(h[1]), int(h[2]), _norm_shape(c.get("shape")), c.get("dtype")))
    elif isinstance(x, dict):
        for v in x.values():
            _tensor_refs(v, out)
    elif isinstance(x, (list, tuple)):
        for v in x:
            _tensor_refs(v, out)
    return out


def _io_specs(spec) -> list[tuple[str, int, int]]:
    """input_layers / output_layers in any of Keras' spellings -> [(layer, node, tensor), ...]."""
    if spec is None:
        return []
    if isinstance(spec, dict):
        return [t for v in spec.values() for t in _io_specs(v)]
    if isinstance(spec, (list, tuple)) and spec and isinstance(spec[0], str):
        return [(spec[0], int(spec[1]) if len(spec) > 1 else 0, int(spec[2]) if len(spec) > 2 else 0)]
    return [t for v in spec for t in _io_specs(v)]


def _calls_of(layer: dict) -> list[dict]:
    """Each call of a layer as {"refs": [(layer, node, tensor, shape, dtype)], "fmt", "args", "kwargs"}."""
    calls = []
    for node in layer.get("inbound_nodes") or []:
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            refs = _tensor_refs(node.get("args", []), []) + _tensor_refs(node.get("kwargs", {}), [])
            calls.append({"refs": refs, "fmt": 3, "args": node.get("args", []), "kwargs": node.get("kwargs", {})})
        elif isinstance(node, list):  # Keras 2: [[layer, node, tensor, kwargs], ...]
            refs, kwargs = [], {}
            for t in node:
                if isinstance(t, list) and t and isinstance(t[0], str):
                    refs.append((t[0], int(t[1]) if len(t) > 1 else 0, int(t[2]) if len(t) > 2 else 0, None, None))
                    if len(t) > 3 and isinstance(t[3], dict):
                        kwargs = t[3]
            calls.append({"refs": refs, "fmt": 2, "args": None, "kwargs": kwargs})
    return calls


def _join(scope: str, name: str) -> str:
    return f"{scope}/{name}" if scope else name


def _str_list(x) -> list[str]:
    if x is None:
        return []
    try:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in list(x)]
    except TypeError:
        return []


def _snake_case(name: str) -> str:
    """Keras's own ``naming.to_snake_case`` (Conv2D -> conv2d, ReLU -> re_lu)."""
    import re

    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()
    return "private" + s if s.startswith("_") else s


def _expected_group_names(model_cfg: dict) -> dict[str, str]:
    """Weights-file group name -> layer name, as Keras names the groups: the layer class in snake case plus
    a counter, in ``model.layers`` order (Sequential leaves its InputLayer out, Functional keeps it)."""
    inner = model_cfg.get("config") or {}
    layers = [l for l in inner.get("layers", []) if isinstance(l, dict)] if isinstance(inner, dict) else []
    sequential = model_cfg.get("class_name") == "Sequential" or "input_layers" not in inner
    out: dict[str, str] = {}
    used: dict[str, int] = {}
    for l in layers:
        cls = str(l.get("class_name", "layer"))
        if sequential and cls == "InputLayer":
            continue
        base = _snake_case(cls)
        n = used.get(base, 0)
        used[base] = n + 1
        out[base if n == 0 else f"{base}_{n}"] = l.get("name") or (l.get("config") or {}).get("name") or base
    return out


def _var_names(cls: str | None, cfg: dict, n: int) -> list[str]:
    names: list[str] | None = None
    if cls in _VAR_NAMES:
        names = list(_VAR_NAMES[cls])
        if cfg.get("use_bias") is False and "bias" in names:
            names.remove("bias")
    elif cls in ("BatchNormalization", "LayerNormalization", "GroupNormalization"):
        names = (["gamma"] if cfg.get("scale", True) else []) + (["beta"] if cfg.get("center", True) else [])
        if cls == "BatchNormalization":
            names += ["moving_mean", "moving_variance"]
    if names is None or len(names) != n:
        return [str(i) for i in range(n)]
    return names
