"""Route planning: which conversion hops turn a model of one format into another.

Pure Python: importing this module imports neither torch, TensorFlow nor onnx, so a window can show the
route the moment a file is chosen. ``plan(src, to)`` accepts a path (its format is detected from its
content by :func:`converters.formats.detect`) or a format id, and returns a :class:`Route`.

Format ids (sources) are the families of :mod:`converters.formats`: ``onnx``, ``torch.export``,
``torchscript``, ``torch.pickle``, ``keras``, ``keras.h5``, ``savedmodel``, ``tflite``
(``safetensors`` holds weights only and cannot be converted without the model's code). Targets are
``onnx``, ``tf`` (a SavedModel folder), ``keras`` (a tf_keras/Keras 2 ``.h5`` written by onnx2tf, or a
Keras 3 source kept as it is), ``tflite`` and ``torch`` (a ``torch.export`` ``.pt2`` archive).
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

from ..errors import TensorbridgeError, UnsupportedFormat
from ..formats.registry import KIND_OF

__all__ = ["Hop", "Route", "NoRoute", "TARGETS", "HOPS", "plan", "source_kind", "target_kind"]

TARGETS = ("onnx", "tf", "keras", "tflite", "torch")

# Format families of converters.formats -> the kind of model a hop consumes.
_FAMILY_KIND = dict(KIND_OF)  # format id -> planner kind, from the format registry
# Target ids -> the kind of model the last hop must produce.
_TARGET_KIND = {"onnx": "onnx", "tf": "savedmodel", "keras": "tf_keras", "tflite": "tflite", "torch": "torch"}
# Words that users (and the CLI) may use for a target.
_TARGET_ALIASES = {"savedmodel": "tf", "tensorflow": "tf", "saved_model": "tf", "pytorch": "torch",
                   "pt2": "torch", "h5": "keras", "tf_keras": "keras", "lite": "tflite"}


class NoRoute(TensorbridgeError):
    """No chain of conversion hops reaches the requested format."""


@dataclass(frozen=True)
class Hop:
    """One conversion step. ``module`` is ``converters.routes.<name>`` and exposes ``run(...)``."""

    name: str           # module name, output-from-input
    src: str            # kind consumed
    dst: str            # kind produced
    tool: str           # the library doing the work
    description: str    # one line for people
    cost: float = 1.0   # relative wall time, used to pick between equally long routes
    options: tuple[str, ...] = ()  # ConvertOptions fields this hop reads (beyond trust)

    def to_dict(self) -> dict:
        return {"name": self.name, "from": self.src, "to": self.dst, "tool": self.tool,
                "description": self.description, "options": list(self.options)}


_ONNX2TF = ("keep_nchw", "input_shapes", "simplify", "all_outputs")

# The hop table. Every entry is one module of this package. onnx2tf writes a SavedModel, a tf_keras model
# and TFLite files in one run, so ONNX -> tflite and ONNX -> tf_keras are the same module with another product.
HOPS: tuple[Hop, ...] = (
    Hop("onnx_from_torch", "torch", "onnx", "torch.onnx (dynamo)",
        "export the PyTorch model to ONNX with torch.onnx.export (dynamo exporter)",
        options=("opset", "dynamic_batch", "input_shapes", "input_names", "output_names", "onnx_optimize")),
    Hop("onnx_from_keras", "keras", "onnx", "keras export / tf2onnx",
        "export the Keras model to ONNX (Keras export(format='onnx'), which runs tf2onnx)",
        options=("opset", "dynamic_batch", "input_shapes", "input_names", "output_names")),
    Hop("onnx_from_savedmodel", "savedmodel", "onnx", "tf2onnx",
        "convert the SavedModel's serving signature to ONNX with tf2onnx",
        options=("opset", "input_shapes", "input_names", "output_names")),
    Hop("onnx_from_tflite", "tflite", "onnx", "tf2onnx",
        "convert the TFLite flatbuffer to ONNX with tf2onnx (--tflite)", cost=1.2,
        options=("opset", "input_names", "output_names")),
    Hop("savedmodel_from_onnx", "onnx", "savedmodel", "onnx2tf",
        "convert ONNX to a TensorFlow SavedModel with onnx2tf (NCHW becomes NHWC)", cost=2.0,
        options=_ONNX2TF),
    Hop("savedmodel_from_onnx", "onnx", "tflite", "onnx2tf",
        "convert ONNX to TFLite with onnx2tf (via its SavedModel, one run; NCHW becomes NHWC)", cost=2.0,
        options=_ONNX2TF + ("fp16",)),
    Hop("savedmodel_from_onnx", "onnx", "tf_keras", "onnx2tf",
        "convert ONNX to a tf_keras (Keras 2) .h5 model with onnx2tf (NCHW becomes NHWC)", cost=2.0,
        options=_ONNX2TF),
    Hop("savedmodel_from_keras", "keras", "savedmodel", "keras export",
        "export the Keras model as a SavedModel with Keras export()", cost=0.8,
        options=("dynamic_batch", "input_shapes")),
    Hop("tflite_from_savedmodel", "savedmodel", "tflite", "tf.lite.TFLiteConverter",
        "convert the SavedModel to TFLite with tf.lite.TFLiteConverter", options=("fp16",)),
    Hop("tflite_from_keras", "keras", "tflite", "tf.lite.TFLiteConverter",
        "convert the Keras model to TFLite with tf.lite.TFLiteConverter",
        options=("fp16", "dynamic_batch", "input_shapes")),
    Hop("torch_from_onnx", "onnx", "torch", "onnx2torch + torch.export",
        "rebuild the ONNX graph as PyTorch modules with onnx2torch and save it as a torch.export .pt2",
        cost=1.5, options=("dynamic_batch", "input_shapes")),
)


@dataclass
class Route:
    """An ordered list of hops from ``source_format`` to ``target``; empty when nothing is to do."""

    source: str                 # the path or format id given
    source_format: str          # a family of converters.formats
    target: str                 # one of TARGETS
    hops: list[Hop] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.hops]

    @property
    def options(self) -> list[str]:
        """The ConvertOptions fields some hop of this route reads (for a settings panel)."""
        seen: list[str] = []
        for i, h in enumerate(self.hops):
            last = i == len(self.hops) - 1
            # the unoptimised ONNX is only kept when ONNX is the final product
            seen += [o for o in h.options if o not in seen and (last or o != "onnx_optimize")]
        if len(self.hops) > 1:
            seen.append("keep_intermediates")
        return seen

    def describe(self) -> str:
        """Several lines: the chain of kinds, then one numbered line per hop."""
        chain = " -> ".join([self.source_format] + [_KIND_LABEL.get(h.dst, h.dst) for h in self.hops])
        lines = [chain]
        for i, h in enumerate(self.hops, 1):
            lines.append(f"  {i}. {h.name}: {h.description}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"source": self.source, "source_format": self.source_format, "target": self.target,
                "hops": [h.to_dict() for h in self.hops], "options": self.options}


_FAMILY_NAMES = {"onnx": "an ONNX", "tflite": "a TFLite", "savedmodel": "a TensorFlow SavedModel",
                 "keras": "a Keras", "keras.h5": "a Keras", "torch.export": "a PyTorch (.pt2)",
                 "torchscript": "a TorchScript", "torch.pickle": "a PyTorch"}
_KIND_LABEL = {"savedmodel": "tf (SavedModel)", "tf_keras": "keras (tf_keras .h5)", "torch": "torch (.pt2)"}


def normalize_target(to: str) -> str:
    """Map a target word to one of :data:`TARGETS` or raise :class:`NoRoute`."""
    t = (to or "").strip().lower()
    t = _TARGET_ALIASES.get(t, t)
    if t not in TARGETS:
        raise NoRoute(f"unknown target format '{to}'; choose one of {', '.join(TARGETS)}")
    return t


def source_kind(src: str) -> tuple[str, str]:
    """(format family, hop kind) of a path or a format id."""
    if src in _FAMILY_KIND:
        return src, _FAMILY_KIND[src]
    if src == "safetensors":
        raise NoRoute("safetensors files hold weights only; load them into the model's code and save a "
                      ".pt2 (torch.export) or TorchScript file, then convert that")
    if not os.path.exists(src):
        raise UnsupportedFormat(f"{src}: no such file or folder (and not a format id: "
                                f"{', '.join(_FAMILY_KIND)})")
    from ..formats.detect import detect  # content sniffing only: no framework import

    family = detect(src)
    return source_kind(family)


def target_kind(to: str) -> str:
    return _TARGET_KIND[normalize_target(to)]


def plan(src: str, to: str) -> Route:
    """The cheapest chain of hops (fewest hops, then lowest cost) from ``src`` to target ``to``.

    ``src``: a model path or a format family id. ``to``: one of :data:`TARGETS` (aliases such as
    ``savedmodel`` or ``pytorch`` are accepted). Raises :class:`NoRoute` with a one-line reason.
    """
    target = normalize_target(to)
    family, kind = source_kind(src)
    goal = _TARGET_KIND[target]
    route = Route(source=src, source_format=family, target=target)
    if kind == goal or (kind == "keras" and target == "keras"):
        raise NoRoute(f"{src}: is already {_FAMILY_NAMES.get(family, 'a ' + family)} model; pick another target "
                      f"than '{target}'")
    # Breadth-first over kinds; among routes of equal length keep the cheaper one.
    best: dict[str, tuple[int, float, list[Hop]]] = {kind: (0, 0.0, [])}
    queue = deque([kind])
    while queue:
        k = queue.popleft()
        n, c, hops = best[k]
        for h in HOPS:
            if h.src != k or h.dst == kind:
                continue
            cand = (n + 1, c + h.cost, hops + [h])
            old = best.get(h.dst)
            if old is None or (cand[0], cand[1]) < (old[0], old[1]):
                if old is None:
                    queue.append(h.dst)
                best[h.dst] = cand
    if goal not in best:
        raise NoRoute(f"{src}: no conversion from {family} to {target} is available")
    route.hops = best[goal][2]
    return route
