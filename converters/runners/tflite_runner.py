"""TFLite runner: ``ai_edge_litert`` Interpreter, falling back to ``tf.lite.Interpreter``.

Inputs and outputs are the interpreter's tensor names (a signature's keyword names when the model has
exactly one signature, as converters from Keras/SavedModel write: ``x``, ``logits``). Dynamic dims
(``shape_signature`` -1) are resized to the fed shape. Device: "cpu" only (the desktop interpreter runs
XNNPACK on the CPU). Capture: any tensor name of the flatbuffer. A per-layer run (``capture_stream``) adds
the wanted tensors to a copy of the model's outputs, in groups of a bounded size, one run per group (the
interpreter reuses the memory of every tensor that is not an output); ``infer(capture=…)`` opens the model
with ``experimental_preserve_all_tensors`` instead, which keeps every tensor.
"""
from __future__ import annotations

import numpy as np

from .base import DeviceUnavailable, Runner, RunnerError, TensorSpec, dtype_name


def interpreter_class():
    """(Interpreter class, library name): ai_edge_litert when installed, else tf.lite."""
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai_edge_litert"
    except ImportError:
        import tensorflow as tf
        return tf.lite.Interpreter, "tensorflow.lite"


class TFLiteRunner(Runner):
    runtime = "tflite"

    def _open_impl(self) -> None:
        if (self.device or "cpu").lower() != "cpu":
            raise DeviceUnavailable(f"the TFLite interpreter runs on the CPU only here; '{self.device}' cannot be "
                                    f"used, pick device 'cpu'")
        Interpreter, self.library = interpreter_class()
        self._Interpreter = Interpreter
        self._interp = self._make(preserve=False)
        self._capture_interp = None
        self._sig_in: dict[str, str] = {}
        self._sig_out: dict[str, str] = {}
        try:
            sigs = self._interp.get_signature_list()
        except Exception:
            sigs = {}
        if len(sigs) == 1:
            key = next(iter(sigs))
            runner = self._interp.get_signature_runner(key)
            details_in = runner.get_input_details()
            details_out = runner.get_output_details()
            self._sig_in = {k: v["name"] for k, v in details_in.items()}
            self._sig_out = {k: v["name"] for k, v in details_out.items()}
        self._tensor_in = {d["name"]: d for d in self._interp.get_input_details()}
        self._tensor_out = {d["name"]: d for d in self._interp.get_output_details()}
        self._plans: dict[int, tuple] = {}

    def _make(self, preserve: bool, content: bytes | None = None):
        import warnings
        try:
            with warnings.catch_warnings():
                # preserving all tensors is exactly what capture asks for; the library warns about it
                warnings.simplefilter("ignore", UserWarning)
                if content is not None:
                    it = self._Interpreter(model_content=content)
                else:
                    it = self._Interpreter(model_path=self.path, experimental_preserve_all_tensors=preserve)
            it.allocate_tensors()
            return it
        except Exception as exc:
            from ..errors import one_line
            if "Select TensorFlow op" in str(exc):
                from ..formats.tflite_reader import custom_op_names

                flex = sorted({n[4:] for n in custom_op_names(self.path) if n.startswith("Flex")})
                raise RunnerError(f"{self.path}: needs TensorFlow Select ops ({', '.join(flex[:5])}), which the "
                                  f"TFLite interpreters installed here cannot run; run it where a TFLite runtime "
                                  f"with the Flex delegate is available") from exc
            raise RunnerError(f"{self.path}: the TFLite interpreter cannot load this model ({one_line(exc)})") from exc

    def aliases(self) -> dict[str, str]:
        out = {}
        for key, tname in list(self._sig_in.items()) + list(self._sig_out.items()):
            out[tname] = key
            out[tname.split(":")[0]] = key
        return out

    def _close_impl(self) -> None:
        self._interp = None
        self._capture_interp = None
        self._plans = {}

    # -- capture in groups: the wanted tensors made outputs of a copy of the model -------------------------
    def capturable(self, names: list[str]) -> list[str]:
        known = {d["name"] for d in self._interp.get_tensor_details()}
        return [n for n in names if n in known]

    def _with_outputs(self, indices: list[int]) -> bytes:
        """The flatbuffer with tensors ``indices`` added to its main subgraph's outputs."""
        import flatbuffers

        from ..formats.tflite_reader import _schema

        schema = _schema()
        with open(self.path, "rb") as f:
            m = schema.ModelT.InitFromPackedBuf(bytearray(f.read()), 0)
        sg = m.subgraphs[0]
        have = list(sg.outputs) if sg.outputs is not None else []
        sg.outputs = have + [i for i in indices if i not in have]
        b = flatbuffers.Builder(1 << 20)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def _capture_stream_impl(self, feeds, names, sink, budget_bytes):
        details = {d["name"]: d for d in self._interp.get_tensor_details()}
        names = [n for n in self.capturable(names)]
        groups: list[list[str]] = [[]]
        acc = 0
        for n in names:
            d = details[n]
            size = int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize if len(d["shape"]) else 8
            if groups[-1] and acc + size > budget_bytes:
                groups.append([])
                acc = 0
            groups[-1].append(n)
            acc += size
        out: dict[str, np.ndarray] = {}
        for group in groups:
            if not group:
                continue
            try:
                it = self._make(False, content=self._with_outputs([details[n]["index"] for n in group]))
            except Exception:  # a flatbuffer this schema cannot round-trip: every tensor kept, all at once
                return super()._capture_stream_impl(feeds, names, sink, budget_bytes)
            outs = self._run(it, feeds)
            for n in group:
                sink(n, it.get_tensor(details[n]["index"]))  # get_tensor copies
            out = {name: it.get_tensor(index) for name, index in outs}
            self._plans.pop(id(it), None)
            del it
        return out if names else self._infer_impl(feeds, None)

    @staticmethod
    def _spec(name: str, d: dict) -> TensorSpec:
        sig = d.get("shape_signature")
        shape = d["shape"] if sig is None or len(sig) == 0 and len(d["shape"]) else sig
        shape = tuple(int(x) if int(x) >= 0 else None for x in shape)
        return TensorSpec(name, dtype_name(d["dtype"]), shape)

    def _input_specs_impl(self):
        if self._sig_in:
            inv = {v: k for k, v in self._sig_in.items()}
            return [self._spec(inv.get(n, n), d) for n, d in self._tensor_in.items()]
        return [self._spec(n, d) for n, d in self._tensor_in.items()]

    def _output_specs_impl(self):
        if self._sig_out:
            by_tensor = {v: k for k, v in self._sig_out.items()}
            # keep the signature's key order (the order the model author named them)
            return [self._spec(k, self._tensor_out[v]) for k, v in self._sig_out.items() if v in self._tensor_out] \
                if all(v in self._tensor_out for v in self._sig_out.values()) else \
                [self._spec(by_tensor.get(n, n), d) for n, d in self._tensor_out.items()]
        return [self._spec(n, d) for n, d in self._tensor_out.items()]

    def _io_plan(self, it):
        """(inputs [(feed name, tensor index, shape)], outputs [(name, tensor index)]) of one interpreter;
        tensor indices do not change when inputs are resized, so this is worked out once."""
        plan = self._plans.get(id(it))
        if plan is None:
            din = {d["name"]: d for d in it.get_input_details()}
            dout = {d["name"]: d for d in it.get_output_details()}
            ins = [[s.name, din[self._sig_in.get(s.name, s.name)]["index"],
                    tuple(din[self._sig_in.get(s.name, s.name)]["shape"])] for s in self._input_specs_impl()]
            outs = [(s.name, dout[self._sig_out.get(s.name, s.name)]["index"]) for s in self._output_specs_impl()]
            plan = self._plans[id(it)] = (ins, outs)
        return plan

    def _run(self, it, feeds) -> list[tuple[str, int]]:
        """Feed interpreter ``it`` (resizing inputs whose shape changed) and invoke it; its outputs' plan."""
        ins, outs = self._io_plan(it)
        resized = False
        for entry in ins:
            a = feeds[entry[0]]
            if entry[2] != a.shape:
                it.resize_tensor_input(entry[1], list(a.shape), strict=False)
                entry[2] = a.shape
                resized = True
        if resized:
            it.allocate_tensors()
        for name, index, _shape in ins:
            it.set_tensor(index, np.ascontiguousarray(feeds[name]))
        it.invoke()
        return outs

    def _infer_impl(self, feeds, capture):
        if capture and self._capture_interp is None:
            self._capture_interp = self._make(preserve=True)
        it = self._capture_interp if capture else self._interp
        outs = self._run(it, feeds)
        result = {name: it.get_tensor(index) for name, index in outs}  # get_tensor copies
        if capture:
            all_t = {d["name"]: d["index"] for d in it.get_tensor_details()}
            for name in capture:
                if name not in all_t:
                    raise RunnerError(f"{self.path}: no tensor named '{name}' to capture")
                try:
                    result[name] = np.array(it.get_tensor(all_t[name]))
                except ValueError as exc:
                    raise RunnerError(f"{self.path}: tensor '{name}' holds no data after the run ({exc})") from None
        return result
