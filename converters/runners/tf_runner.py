"""TensorFlow runner: SavedModel signatures, Keras 3 ``.keras``/``.h5``, and tf_keras (Keras 2) ``.h5`` /
``.keras`` files such as onnx2tf writes.

SavedModel: the signature is picked by name (option ``signature``, default ``serving_default``, else the
only one); inputs and outputs are the signature's keyword names. Keras: inputs are the model's input
names; outputs are the output names (dict keys for dict outputs, else the output layer names).
Devices: "cpu", "gpu:N" (also accepted: "cuda:N"). Capture: for Keras models, layer names, whose outputs
are fetched through a second model built on the same graph; for a SavedModel, tensor names of the
signature's graph as TensorFlow freezes it for running (functions inlined, variables as constants: the
names tf2onnx gives the ONNX it writes), also with the outer call levels the reader shows
(``StatefulPartitionedCall_1/…``), fetched through a pruned copy of that graph.
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import CorruptFile, TrustRequired
from .base import DeviceUnavailable, Runner, RunnerError, TensorSpec, dtype_name, to_numpy


def tf_device(device: str) -> str:
    import tensorflow as tf

    d = (device or "cpu").lower()
    if d == "cpu":
        return "/CPU:0"
    if d.startswith("gpu") or d.startswith("cuda"):
        idx = int(d.split(":", 1)[1]) if ":" in d else 0
        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            why = ("the installed TensorFlow is built without CUDA" if not tf.test.is_built_with_cuda()
                   else "TensorFlow found no GPU")
            raise DeviceUnavailable(f"{why}, so '{device}' cannot be used; pick device 'cpu'")
        if idx >= len(gpus):
            raise DeviceUnavailable(f"TensorFlow sees {len(gpus)} GPU(s); '{device}' does not exist")
        return f"/GPU:{idx}"
    raise DeviceUnavailable(f"unknown TensorFlow device '{device}'; use cpu or gpu:N")


def _tf_spec(name, ts) -> TensorSpec:
    shape = None
    if ts.shape.rank is not None:
        shape = tuple(d if d is not None else None for d in ts.shape.as_list())
    return TensorSpec(name, dtype_name(ts.dtype.name), shape)



class _NumpyValue:
    """Reads a serialised numpy value (``{"class_name": "__numpy__", "config": {"value", "dtype"}}``) as
    an array: data only, nothing is imported or called."""

    @staticmethod
    def from_config(config: dict):
        return np.asarray(config.get("value"), dtype=config.get("dtype") or None)

class TFRunner(Runner):
    runtime = "tensorflow"

    def _open_impl(self) -> None:
        import tensorflow as tf

        from ..formats.detect import detect

        self._tf = tf
        self._dev = tf_device(self.device)
        self.family = self.options.get("family") or detect(self.path)
        self.keras_model = None
        self._fn = None
        try:
            with tf.device(self._dev):
                if self.family == "savedmodel":
                    self._open_savedmodel(tf)
                elif self.family in ("keras", "keras.h5"):
                    self._open_keras()
                else:
                    raise RunnerError(f"{self.path}: a {self.family} file cannot be run by TensorFlow; use a "
                                      f"SavedModel folder, .keras or .h5")
        except (RunnerError, TrustRequired, CorruptFile):
            raise
        except Exception as exc:
            from ..errors import one_line
            raise RunnerError(f"{self.path}: TensorFlow cannot load this model ({one_line(exc)})") from exc

    def _open_savedmodel(self, tf) -> None:
        path = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
        from ..safety.savedmodel import check_savedmodel
        check_savedmodel(path, trust=self.trust)  # loading runs its initializers; running, its signatures
        self._loaded = tf.saved_model.load(path)
        sigs = dict(self._loaded.signatures)
        if not sigs:
            raise RunnerError(f"{path}: the SavedModel has no signatures to run; re-export it with a "
                              f"serving signature (model.export(path) in Keras)")
        want = self.options.get("signature")
        if want is None:
            want = "serving_default" if "serving_default" in sigs else (next(iter(sigs)) if len(sigs) == 1 else None)
            if want is None:
                raise RunnerError(f"{path}: several signatures ({', '.join(sigs)}) and no serving_default; "
                                  f"pick one with --signature")
        if want not in sigs:
            raise RunnerError(f"{path}: no signature '{want}'; the SavedModel has {', '.join(sigs)}")
        self.signature = want
        self._fn = sigs[want]
        _args, kwargs = self._fn.structured_input_signature
        self._in = [_tf_spec(k, v) for k, v in sorted(kwargs.items())]
        outs = self._fn.structured_outputs
        self._out = [_tf_spec(k, v) for k, v in outs.items()]

    def _open_keras(self) -> None:
        safe = not self.trust
        err = None
        model = None
        from ..formats.keras.files import h5_layer_classes, safe_mode_refusal

        classes = h5_layer_classes(self.path) if not self.path.endswith(".keras") else set()
        # TFOpLambda / SlicingOpLambda are tf_keras layers that name a TensorFlow op (onnx2tf writes them);
        # they hold no Python code, unlike a Lambda layer. Keras 3 cannot rebuild them: tf_keras loads them.
        tf_keras_only = bool(classes & {"TFOpLambda", "SlicingOpLambda"}) and "Lambda" not in classes
        try:
            if tf_keras_only:
                raise ValueError("a tf_keras model (TFOpLambda layers)")
            import keras
            model = keras.models.load_model(self.path, compile=False, safe_mode=safe)
        except Exception as exc:  # a tf_keras (Keras 2) file, e.g. written by onnx2tf
            err = exc
            what = safe_mode_refusal(exc) if safe and not tf_keras_only else None
            if what:
                raise TrustRequired(f"{self.path}: this Keras model holds {what}, which runs when it is "
                                    f"loaded; pass trust (--trust) to run it if you trust its source") from exc
        if model is None:
            try:
                import tf_keras
                # onnx2tf stores LayerNormalization's Constant initializers as {"class_name": "__numpy__"},
                # which tf_keras cannot read back; the value is data (weights follow from the file)
                objs = {"__numpy__": _NumpyValue}
                model = tf_keras.models.load_model(self.path, compile=False, safe_mode=safe, custom_objects=objs) \
                    if self.path.endswith(".keras") else \
                    tf_keras.models.load_model(self.path, compile=False, custom_objects=objs)
            except Exception as exc2:
                from ..errors import one_line
                raise RunnerError(f"{self.path}: neither Keras 3 ({one_line(err)}) nor tf_keras "
                                  f"({one_line(exc2)}) can load it") from exc2
        self.keras_model = model
        self._in = []
        for t in model.inputs:
            name = getattr(t, "name", None) or "input"
            name = name.split(":")[0]
            self._in.append(TensorSpec(name, dtype_name(getattr(t.dtype, "name", t.dtype)),
                                       tuple(t.shape) if t.shape is not None else None))
        outs = model.outputs
        names = self._keras_output_names(model)
        self._out = [TensorSpec(n, dtype_name(getattr(t.dtype, "name", t.dtype)),
                                tuple(t.shape) if t.shape is not None else None) for n, t in zip(names, outs)]

    @staticmethod
    def _keras_output_names(model) -> list[str]:
        struct = getattr(model, "_outputs_struct", None)
        if struct is None:
            struct = getattr(model, "output", None)
        if isinstance(struct, dict):
            # model.outputs is the dict flattened the framework's way (sorted keys); name them alike
            try:
                if type(model).__module__.startswith("tf_keras"):
                    import tensorflow as tf
                    return [str(k) for k in tf.nest.flatten({k: k for k in struct})]
                import keras
                return [str(k) for k in keras.tree.flatten({k: k for k in struct})]
            except Exception:
                return sorted(str(k) for k in struct)
        names = getattr(model, "output_names", None)
        if names and len(names) == len(model.outputs):
            return list(names)
        out = []
        for t in model.outputs:
            hist = getattr(t, "_keras_history", None)
            op = getattr(hist, "operation", None) or getattr(hist, "layer", None) if hist else None
            out.append(getattr(op, "name", None) or t.name.split("/")[0].split(":")[0])
        return out

    def _close_impl(self) -> None:
        self.keras_model = None
        self._fn = None
        self._loaded = None
        self._traced_fns = {}

    def _input_specs_impl(self):
        return list(self._in)

    def _output_specs_impl(self):
        return list(self._out)

    def _infer_impl(self, feeds, capture):
        tf = self._tf
        with tf.device(self._dev):
            if self._fn is not None:
                if capture:
                    return self._savedmodel_capture(feeds, list(capture))
                res = self._fn(**{k: tf.constant(v) for k, v in feeds.items()})
                return {s.name: to_numpy(res[s.name]) for s in self._out}
            model = self.keras_model
            args = [feeds[s.name] for s in self._in]
            if capture:
                model = self._capture_model(tuple(capture))
            struct = getattr(self.keras_model, "_inputs_struct", None)
            if capture:
                x = list(args)  # the capture model is built on the input list
            elif isinstance(struct, dict):
                x = {s.name: feeds[s.name] for s in self._in}
            elif isinstance(struct, (list, tuple)):
                x = list(args)
            else:
                x = args if len(args) > 1 else args[0]
            if capture:  # traced like the plain call: eager and graph Keras differ in the last bits, and a
                res = self._graph_call(x, model)  # captured run must give the same outputs as a plain one
            else:
                res = self._graph_call(x)
        if isinstance(res, dict):
            flat = [res[k] for k in ([s.name for s in self._out] if not capture else res.keys())]
            if not capture:
                return {s.name: to_numpy(v) for s, v in zip(self._out, flat)}
            return {k: to_numpy(v) for k, v in res.items()}
        if not isinstance(res, (list, tuple)):
            res = [res]
        names = [s.name for s in self._out] + (list(capture) if capture else [])
        return {n: to_numpy(v) for n, v in zip(names, res)}

    # -- SavedModel capture: the frozen graph, pruned to what is asked ------------------------------------
    def _frozen(self):
        fz = getattr(self, "_frozen_cache", None)
        if fz is None:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2_as_graph

            func, gdef = convert_variables_to_constants_v2_as_graph(self._fn)
            tf = self._tf

            def imports():
                tf.compat.v1.import_graph_def(gdef, name="")

            wrapped = tf.compat.v1.wrap_function(imports, [])
            ops = {n.name for n in gdef.node}
            # the signature's keyword inputs, in their flattened (sorted) order, are the frozen inputs
            ins = dict(zip(sorted(k for k in (self._fn.structured_input_signature[1] or {})),
                           [t.name for t in func.inputs]))
            outs = dict(zip(sorted(self._fn.structured_outputs), [t.name for t in func.outputs]))
            fz = self._frozen_cache = (wrapped, ops, ins, outs, {})
        return fz

    def _sm_tensor(self, name: str) -> str | None:
        """The frozen graph's tensor for ``name`` (``op:index``), looking through the outer call levels."""
        _, ops, _, outs, _ = self._frozen()
        if name in outs:  # a signature output, by its key
            return outs[name]
        op, _, idx = name.rpartition(":")
        if not op or not idx.isdigit():
            op, idx = name, "0"
        rest = op
        for _ in range(3):
            if rest in ops:
                return f"{rest}:{idx}"
            cut = rest.find("/")
            if cut < 0:
                return None
            rest = rest[cut + 1:]
        return None

    def _savedmodel_capture(self, feeds, names: list[str]) -> dict[str, np.ndarray]:
        wrapped, _, ins, outs, cache = self._frozen()
        where = {n: self._sm_tensor(n) for n in names}
        lacking = [n for n, t in where.items() if t is None]
        if lacking:
            raise RunnerError(f"{self.path}: no tensor named '{lacking[0]}' in the SavedModel's graph to capture")
        fetch = [outs[s.name] for s in self._out] + [where[n] for n in names]
        unique = list(dict.fromkeys(fetch))
        key = tuple(unique)
        fn = cache.get(key)
        if fn is None:
            g = wrapped.graph
            if len(cache) > 8:  # one pruned graph per group of names asked together
                cache.clear()
            fn = cache[key] = wrapped.prune([g.get_tensor_by_name(ins[s.name]) for s in self._in],
                                            [g.get_tensor_by_name(t) for t in unique])
        res = dict(zip(unique, fn(*[self._tf.constant(feeds[s.name]) for s in self._in])))
        keys = [s.name for s in self._out] + names
        return {k: to_numpy(res[t]) for k, t in zip(keys, fetch)}

    def _tensor_dims(self, name: str) -> list | None:
        try:
            if self._fn is not None:
                shape = self._frozen()[0].graph.get_tensor_by_name(self._sm_tensor(name)).shape
                return shape.as_list() if shape.rank is not None else None
            out = self.keras_model.get_layer(name).output
            return list(getattr(out, "shape", None) or []) or None
        except Exception:  # a layer with several outputs, or none known: sized as unknown
            return None

    def _capture_stream_impl(self, feeds, names, sink, budget_bytes):
        """Tensors in groups of about ``budget_bytes`` (by their static sizes, the batch taken from the
        feeds), one run each (a pruned graph for a SavedModel, a model on the same layers for Keras):
        memory stays near one group, at the cost of a run per group."""
        names = self.capturable(names)
        batch = max([int(np.asarray(v).shape[0]) for v in feeds.values() if np.asarray(v).ndim] or [1])
        groups: list[list[str]] = [[]]
        acc = 0
        for n in names:
            dims = self._tensor_dims(n)
            size = 1 << 20 if dims is None else int(np.prod([d if d is not None else batch for d in dims])) * 4
            if groups[-1] and acc + size > budget_bytes:
                groups.append([])
                acc = 0
            groups[-1].append(n)
            acc += size
        out: dict[str, np.ndarray] = {}
        model_names = [s.name for s in self._out]
        for group in groups:
            if not group:
                continue
            got = self._infer_impl(feeds, group)
            for n in group:
                if n in got:
                    sink(n, got[n])
            out = {k: got[k] for k in model_names if k in got}
            del got
        return out if names else self._infer_impl(feeds, None)

    def capturable(self, names: list[str]) -> list[str]:
        if self._fn is not None:
            return [n for n in names if self._sm_tensor(n) is not None]
        ok = []
        for n in names:  # a layer of the model with one output (a shared layer's output is ambiguous)
            try:
                self.keras_model.get_layer(n).output
                ok.append(n)
            except (ValueError, AttributeError, RuntimeError):
                continue
        return ok

    def _graph_call(self, x, model=None):
        # a traced graph, as served models run: eager Keras calls cost milliseconds of Python per run,
        # which would make any timing against another runtime meaningless
        model = model if model is not None else self.keras_model
        traced = self.__dict__.setdefault("_traced_fns", {})
        fn = traced.get(id(model))
        if fn is None:
            traced[id(model)] = fn = self._tf.function(lambda inp: model(inp, training=False), reduce_retracing=True)
        if fn is not False:
            try:
                return fn(x)
            except Exception as exc:  # a model that cannot be traced still runs eagerly
                traced[id(model)] = False
                self.warnings.append(f"running eagerly: the Keras model cannot be traced ({type(exc).__name__})")
        return model(x, training=False)

    def _capture_model(self, names: tuple):
        cache = getattr(self, "_capture_cache", {})
        self._capture_cache = cache
        if names in cache:
            return cache[names]
        model = self.keras_model
        extra = []
        for n in names:
            try:
                extra.append(model.get_layer(n).output)
            except ValueError:
                raise RunnerError(f"{self.path}: no layer named '{n}' to capture; layers are "
                                  f"{', '.join(l.name for l in model.layers[:8])} …") from None
        outs = list(model.outputs) + extra
        mod = type(model).__module__
        if mod.startswith("tf_keras"):
            import tf_keras as K
        else:
            import keras as K
        sub = K.Model(model.inputs, outs)
        cache[names] = sub
        return sub
