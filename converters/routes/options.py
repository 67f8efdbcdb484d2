"""Conversion options shared by every hop (each hop reads the ones that apply to it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import TensorbridgeError


class BadOption(TensorbridgeError):
    """A conversion option has a value that cannot be used."""


@dataclass
class ConvertOptions:
    """What the user can choose for a conversion. Defaults give a plain fp32 conversion.

    opset:          ONNX opset for hops that write ONNX (None: the exporter's default).
    dynamic_batch:  make dim 0 of every input dynamic where the converter allows it.
    input_shapes:   {input name: [dims]} for models that do not record shapes (TorchScript, pickled
                    modules) or to fix dynamic dims; a single entry applies to the only input whatever its name.
    input_names / output_names: rename the graph inputs / outputs of ONNX written by a hop.
    keep_nchw:      onnx2tf keeps NCHW (channels-first) layout for the inputs: True for all inputs, or a
                    list of ONNX input names. Default False: onnx2tf makes image inputs NHWC.
    fp16:           TFLite output with float16 weights (float32 compute on CPU).
    simplify:       let onnx2tf run onnxsim first (about 7 s more per conversion here; off by default).
    onnx_optimize:  run the ONNX optimizer after torch export. None: on. False keeps one ONNX node group
                    per torch module (BatchNorm not folded) but only when ONNX is the final target, since
                    onnx2tf and onnx2torch cannot read the unoptimised graph.
    trust:          allow running code stored in the source (pickled torch modules, Keras Lambda layers).
    all_outputs:    keep every file onnx2tf writes in one run (SavedModel, tf_keras .h5, fp32 and fp16
                    TFLite) beside the requested one.
    keep_intermediates: keep the files of intermediate hops (for example the ONNX of torch -> tflite).
    """

    opset: int | None = None
    dynamic_batch: bool = False
    input_shapes: dict[str, list[int]] | None = None
    input_names: list[str] | None = None
    output_names: list[str] | None = None
    keep_nchw: bool | list[str] = False
    fp16: bool = False
    simplify: bool = False
    onnx_optimize: bool | None = None
    trust: bool = False
    all_outputs: bool = False
    keep_intermediates: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict | None) -> "ConvertOptions":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k in d if k not in known)
        if unknown:
            raise BadOption(f"unknown conversion option(s): {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(known - {'extra'}))}")
        opts = cls(**d)
        opts.validate()
        return opts

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.opset is not None and not (7 <= int(self.opset) <= 25):
            raise BadOption(f"opset {self.opset} is out of range; use an ONNX opset between 7 and 25")
        for name, shape in (self.input_shapes or {}).items():
            if not shape or any((not isinstance(d, int)) or d < 0 for d in shape):
                raise BadOption(f"input shape for '{name}' must be a list of non-negative integers, "
                                f"got {shape!r}")

    def check_input_names(self, names: list[str], src: str) -> None:
        """Refuse ``input_shapes`` / ``keep_nchw`` entries that name no input of the model."""
        shapes = self.input_shapes or {}
        if len(shapes) == 1 and len(names) == 1:
            return  # a single shape applies to the only input whatever its name
        unknown = [k for k in shapes if k not in names and not (k.isdigit() and int(k) < len(names))]
        if isinstance(self.keep_nchw, list):
            unknown += [k for k in self.keep_nchw if k not in names]
        if unknown:
            verb = "is not an input" if len(unknown) == 1 else "are not inputs"
            raise BadOption(f"{src}: {', '.join(repr(u) for u in unknown)} {verb} of the model; "
                            f"its inputs are {', '.join(names) or 'none'}")

    def shape_for(self, name: str, index: int, count: int) -> list[int] | None:
        """The user-given shape of input ``name`` (position ``index`` of ``count`` inputs)."""
        shapes = self.input_shapes or {}
        if name in shapes:
            return list(shapes[name])
        if count == 1 and len(shapes) == 1:
            return list(next(iter(shapes.values())))
        key = str(index)
        return list(shapes[key]) if key in shapes else None


def parse_shape_arg(text: str) -> tuple[str, list[int]]:
    """``"input:1,3,224,224"`` -> ("input", [1, 3, 224, 224]); ``"1,3,224,224"`` -> ("", [...])."""
    name, sep, dims = text.rpartition(":")
    try:
        shape = [int(x) for x in dims.replace("x", ",").split(",") if x.strip()]
    except ValueError:
        raise BadOption(f"cannot read input shape '{text}'; write NAME:1,3,224,224") from None
    if not shape:
        raise BadOption(f"cannot read input shape '{text}'; write NAME:1,3,224,224")
    return name if sep else "", shape
