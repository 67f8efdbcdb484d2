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


class OnnxRuntimeRunner(Runner):
    runtime = "onnxruntime"

    def _open_impl(self) -> None:
        import onnxruntime as ort

        self._providers = providers_for(self.device)
        self._ort = ort
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._opts = opts
        try:
            self.session = ort.InferenceSession(self.path, sess_options=opts, providers=self._providers)
        except Exception as exc:
            from ..errors import one_line
            raise RunnerError(f"{self.path}: onnxruntime cannot load this model ({one_line(exc)})") from exc
        self._capture_sessions: dict[tuple, object] = {}
        self._out_names = [o.name for o in self.session.get_outputs()]

    def _close_impl(self) -> None:
        self.session = None
        self._capture_sessions = {}

    def _input_specs_impl(self):
        return [_ort_spec(a) for a in self.session.get_inputs()]

    def _output_specs_impl(self):
        return [_ort_spec(a) for a in self.session.get_outputs()]

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

    def _infer_impl(self, feeds, capture):
        if capture:
            sess = self._capture_session(tuple(capture))
            names = [o.name for o in sess.get_outputs()]
        else:
            sess = self.session
            names = self._out_names
        values = sess.run(names, feeds)
        out = {n: np.asarray(v) for n, v in zip(names, values)}
        if capture:
            order = [s.name for s in self._output_specs_impl()] + [c for c in capture]
            out = {n: out[n] for n in order if n in out}
        return out
