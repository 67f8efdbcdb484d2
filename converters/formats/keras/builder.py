"""The graph builder: one node per layer call, nested models expanded in place, weights attached by layer path."""
from __future__ import annotations


from ...graph import Graph, Node, Tensor, Value
from .config import (_LAMBDA_CLASSES, _attrs, _calls_of, _classify, _dtype_name, _expected_group_names,
                     _io_specs, _join, _norm_shape, _str_list, _var_names)
from .files import _datasets, _ds_dtype, _h5_loader, _h5py, _sorted_keys
from .shapes import _import_keras, _keras_shape, _rule_shape


class _Builder:
    """Turns a Keras model config into a neutral Graph; remembers what it needs for weights and shapes."""

    def __init__(self, path: str, trust: bool, warnings: list[str]):
        self.path, self.trust, self.warnings = path, trust, warnings
        self.graph = Graph()
        self.layer_nodes: dict[str, list[Node]] = {}   # layer path (scope/name) -> its call nodes
        self.layer_cfgs: dict[str, dict] = {}          # layer path -> layer config
        self.model_paths: dict[str, dict] = {}         # nested model path ('' = root) -> its config
        self.call_info: dict[str, dict] = {}           # node name -> call record (for shape inference)
        self.untrusted_layers: list[str] = []
        self.subclassed = False  # no layer graph in the config: one node per weight-holding sub-layer

    # -- graph -----------------------------------------------------------------------------------------
    def build(self, config: dict) -> None:
        cls = config.get("class_name")
        inner = config.get("config") or {}
        self.graph.name = inner.get("name", "") if isinstance(inner, dict) else ""
        if cls == "Sequential" or (isinstance(inner, dict) and "layers" in inner and cls not in ("Functional", "Model")
                                   and "input_layers" not in inner):
            outs = self._expand_sequential(config, "", None)
        elif isinstance(inner, dict) and "layers" in inner:
            outs = self._expand_functional(config, "", None)
        else:
            self.model_paths[""] = config
            self.subclassed = True
            self.warnings.append(
                f"the model is a subclassed '{cls}' whose call() is Python code; its layers and weights are "
                f"shown without connections")
            outs = []
        self.graph.outputs = [o for o in outs if o]
        if self.untrusted_layers:
            shown = ", ".join(self.untrusted_layers[:5]) + (" …" if len(self.untrusted_layers) > 5 else "")
            lambdas = [p for p in self.untrusted_layers if _classify(self.layer_cfgs.get(p, {}))[0]]
            what = ("Lambda layers (Python bytecode stored in the file)" if len(lambdas) == len(self.untrusted_layers)
                    else "custom classes (code from Python packages)" if not lambdas
                    else "Lambda layers or custom classes")
            if self.trust:
                self.warnings.append(
                    f"{len(self.untrusted_layers)} layer(s) are {what} ({shown}); the file is trusted, so "
                    f"Keras may run that code to infer the shapes the file does not record")
            else:
                self.warnings.append(
                    f"{len(self.untrusted_layers)} layer(s) are {what} ({shown}); they were not run, so "
                    f"shapes the file does not record stay unknown; open the file with trust to let Keras "
                    f"deserialise and call them (that runs the code)")

    def _value(self, name: str, shape=None, dtype=None) -> str:
        v = self.graph.values.get(name)
        if v is None:
            v = self.graph.values[name] = Value(name)
        if shape is not None and v.shape is None:
            v.shape = shape
        if dtype and v.dtype is None:
            v.dtype = _dtype_name(dtype)
        return name

    def _add_input(self, layer: dict, scope: str) -> str:
        cfg = layer.get("config") or {}
        name = _join(scope, cfg.get("name") or layer.get("name") or "input")
        shape = _norm_shape(cfg.get("batch_shape") or cfg.get("batch_input_shape"))
        if shape is None and cfg.get("shape") is not None:
            shape = (None, *(_norm_shape(cfg["shape"]) or ()))
        self._value(name, shape, cfg.get("dtype") or "float32")
        self.graph.inputs.append(name)
        return name

    def _register_layer(self, layer: dict, lpath: str) -> None:
        self.layer_cfgs[lpath] = layer
        lam, custom = _classify(layer)
        if lam or custom:
            self.untrusted_layers.append(lpath)

    def _add_call(self, layer: dict, scope: str, k: int, inputs: list[str], n_out: int, call: dict | None) -> list[str]:
        lname = (layer.get("config") or {}).get("name") or layer.get("name") or layer.get("class_name", "layer")
        lpath = _join(scope, lname)
        node_name = lpath + (f"#{k}" if k else "")
        outs = [node_name + (f":{t}" if t else "") for t in range(max(1, n_out))]
        for o in outs:
            self._value(o)
        node = Node(node_name, str(layer.get("class_name", "Layer")), list(inputs), outs, _attrs(layer), scope)
        if layer.get("class_name") in _LAMBDA_CLASSES or _classify(layer) != (False, False):
            node.attrs["untrusted"] = True
        self.graph.nodes.append(node)
        self.layer_nodes.setdefault(lpath, []).append(node)
        if lpath not in self.layer_cfgs:
            self._register_layer(layer, lpath)
        self.call_info[node_name] = {"layer": layer, "call": call}
        return outs

    def _expand_functional(self, config: dict, scope: str, given_inputs: list[str] | None) -> list[str]:
        inner = config.get("config") or {}
        self.model_paths[scope] = config
        layers = [l for l in inner.get("layers", []) if isinstance(l, dict)]
        by_name = {(l.get("name") or (l.get("config") or {}).get("name")): l for l in layers}
        input_specs = _io_specs(inner.get("input_layers"))
        output_specs = _io_specs(inner.get("output_layers"))
        # how many outputs each (layer, call) has: the largest tensor index anyone refers to
        n_out: dict[tuple[str, int], int] = {}
        calls: dict[str, list[dict]] = {}
        for l in layers:
            lname = l.get("name") or (l.get("config") or {}).get("name")
            calls[lname] = _calls_of(l)
            for c in calls[lname]:
                for (src, k, t, _s, _d) in c["refs"]:
                    n_out[(src, k)] = max(n_out.get((src, k), 1), t + 1)
        # Keras 2 configs count a nested model's own first call (on its InputLayer) in node indices
        # (tf_keras `_should_skip_first_node`); Keras 3 configs do not.
        legacy = any(c["fmt"] == 2 for cs in calls.values() for c in cs)
        skip = {}
        if legacy:
            for l in layers:
                sub = (l.get("config") or {}).get("layers")
                if isinstance(sub, list) and sub and isinstance(sub[0], dict) and \
                        sub[0].get("class_name") == "InputLayer":
                    skip[l.get("name") or (l.get("config") or {}).get("name")] = 1
        if skip:
            for cs in calls.values():
                for c in cs:
                    c["refs"] = [(src, k - skip.get(src, 0), t, sh, dt) for (src, k, t, sh, dt) in c["refs"]]
            output_specs = [(src, k - skip.get(src, 0), t) for (src, k, t) in output_specs]
            n_out = {}
            for cs in calls.values():
                for c in cs:
                    for (src, k, t, _s, _d) in c["refs"]:
                        n_out[(src, k)] = max(n_out.get((src, k), 1), t + 1)
        for (src, k, t) in output_specs:
            n_out[(src, k)] = max(n_out.get((src, k), 1), t + 1)

        produced: dict[tuple[str, int, int], str] = {}
        given = list(given_inputs or [])
        for i, (lname, k, t) in enumerate(input_specs):
            layer = by_name.get(lname)
            if given_inputs is not None and i < len(given):
                produced[(lname, k, t)] = given[i]
            elif layer is not None:
                produced[(lname, k, t)] = self._add_input(layer, scope) if not scope else \
                    self._value(_join(scope, lname))
        # input layers not listed in input_layers (rare) still become inputs
        for l in layers:
            lname = l.get("name") or (l.get("config") or {}).get("name")
            if l.get("class_name") == "InputLayer" and (lname, 0, 0) not in produced:
                produced[(lname, 0, 0)] = self._add_input(l, scope)

        pending = [(l, k, c) for l in layers if l.get("class_name") != "InputLayer"
                   for k, c in enumerate(calls[l.get("name") or (l.get("config") or {}).get("name")])]
        while pending:
            progressed = False
            rest = []
            for (l, k, c) in pending:
                if not all((src, kk, t) in produced for (src, kk, t, _s, _d) in c["refs"]):
                    rest.append((l, k, c))
                    continue
                progressed = True
                ins = []
                for (src, kk, t, shp, dt) in c["refs"]:
                    v = produced[(src, kk, t)]
                    self._value(v, shp, dt)
                    ins.append(v)
                lname = l.get("name") or (l.get("config") or {}).get("name")
                outs = self._call_layer(l, scope, k, ins, n_out.get((lname, k), 1), c)
                for t, o in enumerate(outs):
                    produced[(lname, k, t)] = o
            if not progressed:  # a reference to a layer that is not in the config: show what we have
                self.warnings.append(f"{len(rest)} layer call(s) in '{scope or self.graph.name}' refer to "
                                     f"tensors the config does not define; they are left out")
                break
            pending = rest
        return [produced.get(spec, "") for spec in output_specs]

    def _call_layer(self, layer: dict, scope: str, k: int, ins: list[str], n_out: int, call: dict) -> list[str]:
        cls = layer.get("class_name")
        inner = layer.get("config") or {}
        if isinstance(inner, dict) and isinstance(inner.get("layers"), list):  # a nested model
            lname = inner.get("name") or layer.get("name")
            sub_scope = _join(scope, lname) + (f"#{k}" if k else "")
            if cls == "Sequential" or "input_layers" not in inner:
                return self._expand_sequential(layer, sub_scope, ins[:1])
            return self._expand_functional(layer, sub_scope, ins)
        return self._add_call(layer, scope, k, ins, n_out, call)

    def _expand_sequential(self, config: dict, scope: str, given_inputs: list[str] | None) -> list[str]:
        inner = config.get("config") or {}
        self.model_paths[scope] = config
        layers = [l for l in inner.get("layers", []) if isinstance(l, dict)]
        prev: str | None = given_inputs[0] if given_inputs else None
        if layers and layers[0].get("class_name") == "InputLayer":
            first, layers = layers[0], layers[1:]
            if prev is None:
                prev = self._add_input(first, scope)
        if prev is None:
            shape = _norm_shape(inner.get("build_input_shape"))
            if shape is None and layers:
                c0 = layers[0].get("config") or {}
                shape = _norm_shape(c0.get("batch_input_shape") or c0.get("batch_shape")) or _norm_shape(
                    (layers[0].get("build_config") or {}).get("input_shape"))
            name = _join(scope, "input")
            self._value(name, shape, "float32")
            self.graph.inputs.append(name)
            prev = name
        for l in layers:
            shp = _norm_shape((l.get("build_config") or {}).get("input_shape"))
            if shp is not None:
                self._value(prev, shp)
            outs = self._call_layer(l, scope, 0, [prev], 1, {"refs": [], "fmt": 2, "args": None, "kwargs": {}})
            prev = outs[0] if outs else prev
        return [prev]

    # -- weights ---------------------------------------------------------------------------------------
    def _attach(self, lpath: str, var: str, ds, opener, ds_path: str) -> None:
        name = _join(lpath, var)
        base, i = name, 1
        while name in self.graph.initializers:
            name = f"{base}_{i}"
            i += 1
        shape = tuple(int(d) for d in ds.shape)
        dtype = _ds_dtype(ds)
        self.graph.initializers[name] = Tensor(name, dtype, shape, _h5_loader(opener, ds_path))
        self.graph.values[name] = Value(name, dtype, shape)
        nodes = self.layer_nodes.get(lpath)
        if not nodes and self.subclassed:
            node = Node(lpath, "Layer", [], [], {}, lpath.rsplit("/", 1)[0] if "/" in lpath else "")
            self.graph.nodes.append(node)
            nodes = self.layer_nodes[lpath] = [node]
        if nodes:
            for n in nodes:  # a shared layer: every call reads the same weights
                n.inputs.append(name)

    def attach_keras3_weights(self, h5, opener) -> None:
        """Keras 3 ``model.weights.h5``: groups named by attribute path, ``vars`` groups carry the layer name."""
        self._attach_k3_model(h5, "", opener)
        if self.subclassed:  # sub-layers of a subclassed model are stored under their attribute names
            h5py = _h5py()
            for gname in _sorted_keys(h5):
                g = h5[gname]
                if gname in ("layers", "vars", "optimizer") or not isinstance(g, h5py.Group):
                    continue
                lname = g["vars"].attrs.get("name") if "vars" in g else None
                lname = (lname.decode() if isinstance(lname, bytes) else str(lname)) if lname else gname
                for rel, ds in _datasets(g):
                    self._attach(lname, rel.replace("vars/", ""), ds, opener, ds.name)

    def _attach_k3_model(self, group, mpath: str, opener) -> None:
        h5py = _h5py()
        if "vars" in group:
            for key in _sorted_keys(group["vars"]):
                ds = group["vars"][key]
                if isinstance(ds, h5py.Dataset):
                    self._attach(mpath or self.graph.name or "model", key, ds, opener, ds.name)
        if "layers" not in group:
            return
        expected = _expected_group_names(self.model_paths.get(mpath) or {})
        for gname in group["layers"]:
            g = group["layers"][gname]
            if not isinstance(g, h5py.Group):
                continue
            lname = None
            if "vars" in g:
                lname = g["vars"].attrs.get("name")
                if isinstance(lname, bytes):
                    lname = lname.decode()
            # files without the name attribute (tf_keras .keras): groups are named after the layer class
            lname = str(lname) if lname else expected.get(gname, gname)
            lpath = _join(mpath, lname)
            if lpath in self.model_paths:
                self._attach_k3_model(g, lpath, opener)
                continue
            cls = (self.layer_cfgs.get(lpath) or {}).get("class_name")
            cfg = (self.layer_cfgs.get(lpath) or {}).get("config") or {}
            own = [g["vars"][k] for k in _sorted_keys(g["vars"])] if "vars" in g else []
            names = _var_names(cls, cfg, len(own))
            for var, ds in zip(names, own):
                if isinstance(ds, h5py.Dataset):
                    self._attach(lpath, var, ds, opener, ds.name)
            # sub-layers held as attributes (e.g. attention projections, RNN cells): keep their paths
            for sub in g:
                if sub == "vars" or not isinstance(g[sub], h5py.Group):
                    continue
                for rel, ds in _datasets(g[sub]):
                    self._attach(lpath, f"{sub}/{rel.replace('vars/', '')}", ds, opener, ds.name)

    def attach_legacy_weights(self, group, prefix: str, opener) -> None:
        """Legacy HDF5 ``model_weights``: one group per top-level layer, ``weight_names`` lists its datasets."""
        h5py = _h5py()
        names = _str_list(group.attrs.get("layer_names")) or [k for k in group if isinstance(group[k], h5py.Group)]
        for lname in names:
            if lname not in group:
                continue
            g = group[lname]
            wnames = _str_list(g.attrs.get("weight_names"))
            if not wnames:
                wnames = [rel for rel, _ds in _datasets(g)]
            for wn in wnames:
                if wn not in g:
                    continue
                ds = g[wn]
                if not isinstance(ds, h5py.Dataset):
                    continue
                lpath, var = self._legacy_owner(lname, wn)
                self._attach(lpath, var, ds, opener, ds.name)

    def _legacy_owner(self, top: str, wname: str) -> tuple[str, str]:
        parts = wname.split(":")[0].split("/")
        var = parts[-1]
        cands = [p for p in self.layer_cfgs if p == top or p.startswith(top + "/")]
        if top in self.layer_cfgs or not cands:
            return top, var
        # nested model: find the inner layer whose path ends with the most of the weight's own path
        best, score = None, -1
        for c in cands:
            cp = c.split("/")
            s = 0
            for a, b in zip(reversed(cp), reversed(parts[:-1])):
                if a != b:
                    break
                s += 1
            if s > score:
                best, score = c, s
        if best is None or score == 0:
            return top, "/".join(parts)
        return best, var

    # -- shapes ----------------------------------------------------------------------------------------
    def infer_shapes(self) -> None:
        todo = [n for n in self.graph.nodes if any(self.graph.value(o).shape is None for o in n.outputs)]
        if not todo:
            return
        keras_failed = 0
        keras_mod = None
        for n in self.graph.nodes:
            outs = [self.graph.value(o) for o in n.outputs]
            if all(v.shape is not None for v in outs):
                continue
            info = self.call_info.get(n.name) or {}
            layer = info.get("layer") or {}
            data_ins = [self.graph.value(i) for i in n.inputs if i not in self.graph.initializers]
            if any(v.shape is None for v in data_ins):
                continue
            rule = _rule_shape(layer, [v.shape for v in data_ins])
            shapes = None if rule is None else [(r, None) for r in rule]  # [(shape, dtype or None)]
            if shapes is None:
                untrusted = n.attrs.get("untrusted", False)
                if untrusted and not self.trust:
                    continue
                if keras_mod is None:
                    keras_mod = _import_keras()
                    if keras_mod is False:
                        self.warnings.append("Keras is not installed here, so some output shapes are unknown")
                if keras_mod is False:
                    continue
                shapes = _keras_shape(keras_mod, layer, info.get("call") or {}, data_ins, self.trust)
                if shapes is None:
                    keras_failed += 1
                    continue
            in_dtype = next((v.dtype for v in data_ins if v.dtype), None)
            out_dtype = _dtype_name((layer.get("config") or {}).get("dtype"))
            for v, (sh, dt) in zip(outs, shapes):
                if v.shape is None:
                    v.shape = sh
                if v.dtype is None:
                    v.dtype = dt or out_dtype or in_dtype
        if keras_failed:
            self.warnings.append(f"the output shapes of {keras_failed} layer(s) could not be inferred")
