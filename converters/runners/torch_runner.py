"""PyTorch runner: ExportedProgram (.pt2, checked and loaded by ``converters.safety.pt2``; plain
``torch.export.load`` only with trust), TorchScript (``torch.jit.load``) and,
only with trust, a pickled ``nn.Module`` (``torch.load(weights_only=False)``).

Devices: "cpu", "cuda:N", "mps" where torch has them. Input names: the ExportedProgram's user input
names (its forward's parameter names); TorchScript's forward argument names; otherwise ``input_0`` ….
Outputs are flattened (tuples -> ``output_0``, ``output_1``; dicts keep their keys).
Capture: module paths (``features.0``, ``head``) via forward hooks, for every kind of module; for an
ExportedProgram also FX node names (``conv2d_1``) of its graph.
"""
from __future__ import annotations

import inspect

import numpy as np

from ..errors import TensorbridgeError, TrustRequired
from .base import DeviceUnavailable, Runner, RunnerError, TensorSpec, dtype_name, flatten_outputs, to_numpy


def torch_device(device: str):
    import torch

    d = (device or "cpu").lower()
    if d == "cpu":
        return torch.device("cpu")
    if d.startswith("cuda") or d.startswith("gpu"):
        idx = int(d.split(":", 1)[1]) if ":" in d else 0
        if torch.version.cuda is None:
            raise DeviceUnavailable(f"the installed torch {torch.__version__} is a CPU-only build; install a "
                                    f"CUDA build of torch to run on '{device}', or pick device 'cpu'")
        if not torch.cuda.is_available():
            raise DeviceUnavailable(f"torch found no CUDA GPU for '{device}' (driver missing or no device); "
                                    f"pick device 'cpu'")
        if idx >= torch.cuda.device_count():
            raise DeviceUnavailable(f"torch sees {torch.cuda.device_count()} CUDA device(s); '{device}' does "
                                    f"not exist, pick cuda:0 … cuda:{torch.cuda.device_count() - 1}")
        return torch.device("cuda", idx)
    if d == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceUnavailable("torch has no MPS device here; pick device 'cpu'")
        return torch.device("mps")
    raise DeviceUnavailable(f"unknown torch device '{device}'; use cpu or cuda:N")


class TorchRunner(Runner):
    runtime = "torch"

    def _open_impl(self) -> None:
        import torch

        from ..formats.detect import detect

        self._torch = torch
        self._dev = torch_device(self.device)
        family = self.options.get("family") or detect(self.path)
        self.family = family
        self._ep = None
        self._names_cache = None
        self._in_specs: list[TensorSpec] = []
        self._out_names: list[str] | None = None
        self._kw_names: list[str] = []
        try:
            if family == "torch.export":
                from ..safety.pt2 import keyword_inputs, load_pt2_safely
                ep = load_pt2_safely(self.path, trust=self.trust)
                self._ep = ep
                self.module = ep.module()
                self._in_specs = self._ep_input_specs(ep)
                self._kw_names = keyword_inputs(ep)
            elif family == "torchscript":
                from ..safety.torchscript import check_torchscript
                check_torchscript(self.path, trust=self.trust, action="run")
                self.module = torch.jit.load(self.path, map_location="cpu")
                self._in_specs = self._script_input_specs(self.module)
            elif family == "torch.pickle":
                if not self.trust:
                    raise TrustRequired(f"{self.path}: running a pickled torch module executes code stored in "
                                        f"the file; pass trust (--trust) if you trust its source")
                from ..formats.pytorch.user_code import add_user_folders_to_path
                add_user_folders_to_path(self.path)  # the user's own modules: beside the file, or where they work
                obj = torch.load(self.path, map_location="cpu", weights_only=False)
                if not isinstance(obj, torch.nn.Module):
                    raise RunnerError(f"{self.path}: holds a {type(obj).__name__}, not a runnable module (a "
                                      f"state_dict has no architecture); export the model with torch.export")
                self.module = obj
                self._in_specs = self._signature_specs(obj.forward)
            else:
                raise RunnerError(f"{self.path}: a {family} file cannot be run by torch; use a .pt2 "
                                  f"(torch.export), a TorchScript file or a pickled module")
        except TensorbridgeError:
            raise
        except Exception as exc:
            from ..errors import one_line
            raise RunnerError(f"{self.path}: torch cannot load this model ({one_line(exc)})") from exc
        if hasattr(self.module, "eval") and family != "torch.export":
            self.module.eval()
        try:
            self.module.to(self._dev)
        except Exception as exc:
            if self._dev.type != "cpu":
                from ..errors import one_line
                raise DeviceUnavailable(f"{self.path}: cannot move the model to {self.device} ({one_line(exc)})")

    def _close_impl(self) -> None:
        self.module = None
        self._ep = None
        if self._dev.type == "cuda":
            self._torch.cuda.empty_cache()

    # -- specs -------------------------------------------------------------------------------------
    @staticmethod
    def _ep_input_specs(ep) -> list[TensorSpec]:
        from torch.export.graph_signature import InputKind

        user = [s for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
        nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
        specs = []
        for s in user:
            name = getattr(s.arg, "name", None)
            node = nodes.get(name)
            val = node.meta.get("val") if node is not None else None
            shape = dtype = None
            if val is not None and hasattr(val, "shape"):
                shape = tuple(int(d) if _is_static(d) else _sym_name(d) for d in val.shape)
                dtype = dtype_name(val.dtype)
            specs.append(TensorSpec(name, dtype, shape))
        return specs

    @staticmethod
    def _script_input_specs(mod) -> list[TensorSpec]:
        try:
            args = mod.forward.schema.arguments[1:]
            return [TensorSpec(a.name, None, None) for a in args]
        except Exception:
            return [TensorSpec("input_0", None, None)]

    @staticmethod
    def _signature_specs(fn) -> list[TensorSpec]:
        try:
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
            return [TensorSpec(p.name, None, None) for p in params]
        except (TypeError, ValueError):
            return [TensorSpec("input_0", None, None)]

    def _input_specs_impl(self):
        return list(self._in_specs)

    def _output_specs_impl(self):
        if self._out_names is None and self._ep is not None:
            self._out_names, self._out_meta = self._ep_output_specs(self._ep)
        if self._out_names is None:
            return [TensorSpec("output_0")] if not getattr(self, "_seen_out", None) else list(self._seen_out)
        return [TensorSpec(n, *m) for n, m in zip(self._out_names, self._out_meta)]

    @staticmethod
    def _ep_output_specs(ep):
        import torch.utils._pytree as pytree

        out_node = next(n for n in ep.graph.nodes if n.op == "output")
        from torch.export.graph_signature import OutputKind
        kinds = [s.kind for s in ep.graph_signature.output_specs]
        vals = [a for a, k in zip(out_node.args[0], kinds) if k == OutputKind.USER_OUTPUT]
        meta = []
        for v in vals:
            val = v.meta.get("val") if hasattr(v, "meta") else None
            if val is not None and hasattr(val, "shape"):
                meta.append((dtype_name(val.dtype),
                             tuple(int(d) if _is_static(d) else _sym_name(d) for d in val.shape)))
            else:
                meta.append((None, None))
        # names follow the structure the module returns (tuple -> output_i, dict -> keys)
        try:
            spec = ep.call_spec.out_spec
            tree = pytree.tree_unflatten(list(range(len(vals))), spec)
            flat = flatten_outputs(tree)
            names = [None] * len(vals)
            for name, idx in flat.items():
                names[idx] = name
            if any(n is None for n in names):
                raise ValueError
        except Exception:
            names = [f"output_{i}" for i in range(len(vals))] if len(vals) > 1 else ["output"]
        return names, meta

    # -- run ---------------------------------------------------------------------------------------
    def _infer_impl(self, feeds, capture, captured=None):
        torch = self._torch
        args = [torch.from_numpy(np.ascontiguousarray(feeds[s.name])) for s in self._in_specs]
        if self._dev.type != "cpu":
            args = [a.to(self._dev) for a in args]
        hooks = []
        captured = {} if captured is None else captured
        fx_names: dict[str, str] = {}
        if capture:
            if self.family == "torchscript":
                raise RunnerError(f"{self.path}: capturing intermediates of TorchScript is not supported (it "
                                  f"has no hooks); export the model with torch.export (.pt2) to capture")
            if hasattr(self.module, "graph") and self._ep is not None:
                fx_names = self._resolve_fx(capture)
            else:
                mods = dict(self.module.named_modules())
                for name in capture:
                    m = mods.get(name)
                    if m is None or not name:
                        raise RunnerError(f"{self.path}: no module named {name!r} to capture; pick a module "
                                          f"path such as {next(iter(n for n in mods if n), 'features.0')!r}")
                    hooks.append(m.register_forward_hook(
                        lambda _m, _i, o, _n=name: captured.__setitem__(_n, o)))
        try:
            with torch.inference_mode():
                if fx_names:
                    out = self._run_fx(args, fx_names, captured)
                elif self._kw_names:  # exported with keyword inputs (T5: input_ids=, decoder_input_ids=)
                    npos = len(args) - len(self._kw_names)
                    out = self.module(*args[:npos], **dict(zip(self._kw_names, args[npos:])))
                else:
                    out = self.module(*args)
        finally:
            for h in hooks:
                h.remove()
        flat = flatten_outputs(out)
        names = self._names_cache if self._ep is not None else None
        if self._ep is not None and names is None:
            names = self._names_cache = [s.name for s in self._output_specs_impl()]
        if names is None or len(names) != len(flat):
            names = list(flat)
            self._seen_out = [TensorSpec(n, dtype_name(getattr(v, "dtype", None)), tuple(v.shape))
                              for n, v in flat.items()]
        result = {n: to_numpy(v) for n, v in zip(names, flat.values())}
        for name in capture or []:
            if name in captured:
                v = captured[name]
                if not hasattr(v, "shape"):
                    sub = flatten_outputs(v, prefix=name)
                    for k, t in sub.items():
                        result[k] = to_numpy(t)
                else:
                    result[name] = to_numpy(v)
        return result

    def _fx_index(self) -> dict[str, str]:
        """name -> FX node: every node under its own name, and every module path (``conv2``,
        ``features.0``, and dynamo's ``L['self'].conv2`` spelling) -> the last node that module produced."""
        idx = getattr(self, "_fx_index_cache", None)
        if idx is not None:
            return idx
        idx = {}
        for n in self.module.graph.nodes:
            if n.op != "call_function":
                continue
            stack = n.meta.get("nn_module_stack") or {}
            for v in stack.values():
                path = str(v[0]) if isinstance(v, tuple) else str(v)
                idx[path] = n.name  # later nodes overwrite: the module's last node
                if path.startswith("L[") and "." in path:
                    idx[path.split(".", 1)[1]] = n.name
        for n in self.module.graph.nodes:
            idx[n.name] = n.name
        self._fx_index_cache = idx
        return idx

    def _resolve_fx(self, capture: list[str], strict: bool = True) -> dict[str, str]:
        """requested name -> FX node name: a node name as is, or a module path (``conv2``,
        ``features.0``) -> the last node that module produced (its output)."""
        idx = self._fx_index()
        out = {}
        for want in capture:
            node = idx.get(want)
            if node is None:
                if strict:
                    raise RunnerError(f"{self.path}: no module or graph node named {want!r} to capture")
                continue
            out[want] = node
        return out

    def capturable(self, names: list[str]) -> list[str]:
        self._require_open()
        if self.family == "torchscript":
            return []
        if hasattr(self.module, "graph") and self._ep is not None:
            return list(self._resolve_fx(names, strict=False))
        mods = dict(self.module.named_modules())
        return [n for n in names if n and n in mods]

    def _capture_stream_impl(self, feeds, names, sink, budget_bytes):
        # hooks and the FX interpreter hand each tensor over as it is made; nothing is kept here
        return self._infer_impl(feeds, self.capturable(names), captured=_Sink(sink))

    def _run_fx(self, args, names: dict[str, str], captured):
        import torch.fx

        by_node: dict[str, list[str]] = {}
        for want, node in names.items():
            by_node.setdefault(node, []).append(want)

        class Grab(torch.fx.Interpreter):
            def run_node(self, n):
                r = super().run_node(n)
                for want in by_node.get(n.name, ()):
                    captured[want] = r
                return r

        return Grab(self.module).run(*args)


class _Sink(dict):
    """A dict that hands what is put in it to ``sink`` (as numpy arrays) instead of keeping it."""

    def __init__(self, sink):
        super().__init__()
        self._sink = sink

    def __setitem__(self, key, value):
        # copies: a module's output may be changed in place after its hook (ReLU(inplace=True)), and the
        # sink may keep the array a while (it is written to disk on a thread of its own)
        if hasattr(value, "shape"):
            self._sink(key, np.array(to_numpy(value), copy=True))
        else:
            for k, t in flatten_outputs(value, prefix=key).items():
                if hasattr(t, "shape"):
                    self._sink(k, np.array(to_numpy(t), copy=True))


def _is_static(d) -> bool:
    # never int() a SymInt here: that would specialise the symbol to its example value
    return isinstance(d, int) and type(d).__name__ != "SymInt"


def _sym_name(d) -> str | None:
    node = getattr(d, "node", None)
    s = str(getattr(node, "expr", d))
    return s if s else None
