"""What a model tab holds once its file is open: the summary, per-node details and the weights list.

Two sources give the same interface: the compact view pack written by the worker task ``open``
(:class:`converters.viewpack.ViewPack`, details read on demand) and the ``model.json`` that ``load``
and ``attach_architecture`` write (shown when an attached architecture left no ``.pt2`` to reopen).
"""
from __future__ import annotations

import json
from typing import Any

__all__ = ["ModelDoc"]


class ModelDoc:
    """An opened model. ``summary`` is :meth:`converters.graph.Model.summary` (+ task extras)."""

    def __init__(self, path: str, trust: bool, result: dict[str, Any]):
        self.path = path
        self.trust = trust
        self.summary: dict[str, Any] = dict(result)
        self.pack = None
        self._nodes: list[dict] | None = None
        self._values: dict[str, dict] = {}
        self._inits: dict[str, dict] = {}
        self.weights: list[dict] | None = None
        if result.get("pack_dir"):
            from converters.viewpack import ViewPack

            self.pack = ViewPack.load(result["pack_dir"])
            self.summary = dict(getattr(self.pack, "summary", None) or result)
            for k in ("pack_dir", "weights_only"):
                if k in result:
                    self.summary.setdefault(k, result[k])
            if self.weights_only:
                self.weights = self._pack_weights()
        elif result.get("model_json"):
            with open(result["model_json"]) as f:
                d = json.load(f)
            g = d.get("graph") or {}
            self._nodes = g.get("nodes") or []
            self._values = {v["name"]: v for v in g.get("values", [])}
            self._inits = {t["name"]: t for t in g.get("initializers", [])}
            for t in self._inits.values():
                self._values.setdefault(t["name"], t)
            if d.get("weights") is not None:
                self.weights = list(d["weights"])

    # -- facts -----------------------------------------------------------------------------------------
    @property
    def format(self) -> str:
        return str(self.summary.get("format", "?"))

    @property
    def weights_only(self) -> bool:
        if "weights_only" in self.summary:
            return bool(self.summary["weights_only"])
        return "weight_count" in self.summary and "node_count" not in self.summary

    @property
    def node_count(self) -> int:
        if self._nodes is not None:
            return len(self._nodes)
        if self.pack is not None:
            return int(self.pack.n_nodes)
        return int(self.summary.get("node_count") or 0)

    def _pack_weights(self) -> list[dict]:
        pack = self.pack
        for attr in ("weights", "weight_entries"):
            w = getattr(pack, attr, None)
            if callable(w):
                w = w()
            if w is not None:
                return [dict(x) if isinstance(x, dict) else {"name": x[0], "dtype": x[1], "shape": x[2]}
                        for x in w]
        return list(self.summary.get("weights") or [])

    # -- nodes -----------------------------------------------------------------------------------------
    def node_label(self, i: int) -> tuple[str, str]:
        """(op_type, name) of node ``i`` (cheap for the JSON source; reads details for a pack)."""
        if self._nodes is not None:
            n = self._nodes[i]
            return n.get("op_type", "?"), n.get("name", "")
        assert self.pack is not None, "a model with neither nodes nor a view pack has no node labels"
        return self.pack.op_type(i), self.pack.name(i)

    def details(self, i: int) -> dict[str, Any]:
        """``{op_type, name, scope, attrs, inputs, outputs, weights}`` of node ``i``; values as
        ``{name, dtype, shape}``."""
        if self.pack is not None:
            return self.pack.details(i)
        assert self._nodes is not None, "a model with neither nodes nor a view pack has no node details"
        n = self._nodes[i]

        def val(name: str) -> dict:
            v = self._values.get(name) or {"name": name}
            return {"name": name, "dtype": v.get("dtype"), "shape": v.get("shape")}

        ins = [x for x in n.get("inputs", []) if x]
        return {
            "op_type": n.get("op_type"), "name": n.get("name"), "scope": n.get("scope", ""),
            "domain": n.get("domain", ""), "attrs": n.get("attrs", {}),
            "inputs": [val(x) for x in ins if x not in self._inits],
            "outputs": [val(x) for x in n.get("outputs", []) if x],
            "weights": [val(x) for x in ins if x in self._inits],
        }

    def find(self, text: str) -> list[int]:
        """Indices of nodes whose name or op type contains ``text`` (case-insensitive)."""
        if self.pack is not None:
            return list(self.pack.find(text))
        t = text.lower()
        if self._nodes is None:
            return []
        return [i for i, n in enumerate(self._nodes)
                if t in (n.get("name") or "").lower() or t in (n.get("op_type") or "").lower()]
