"""The correspondence map: which tensor of a converted model is which tensor of its source.

One home for the ``<model>.tbmap.json`` contract. Every hop writes one beside its output
(:func:`write_map`), a multi-hop route writes their composition (:meth:`TensorMap.compose`), and
``compare`` reads it (:func:`read_map`) to pair outputs, undo layout changes and capture inner tensors::

    {"format": "tensorbridge.correspondence", "version": 1,
     "hop": "savedmodel_from_onnx", "tool": "onnx2tf 1.29.24",
     "source": {"path": ..., "format": "onnx"}, "target": {"path": ..., "format": "savedmodel"},
     "inputs":  [{"source": "x", "target": "x", "layout": [0, 2, 3, 1]}],
     "outputs": [...],
     "tensors": [{"source": "relu", "target": "tf.nn.relu", "layout": null, ...}],
     "notes": ["what is not recorded and why"]}

``layout`` is the permutation ``p`` with ``target == source.transpose(p)`` (NCHW -> NHWC is
``[0, 2, 3, 1]``), or null when the layout did not change or is unknown (then ``"layout_known": false``).
Entries may carry more keys (``source_kind``, ``source_class``, ``target_node`` …); they are kept.

Reading is strict: a document of another format, another version, or entries without ``source`` and
``target`` strings is not guessed at; it is ignored with a warning that says why.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from .layouts import compose_perm, invert_perm

__all__ = ["FORMAT", "VERSION", "SUFFIX", "Entry", "TensorMap", "map_path", "write_map", "read_map",
           "MapError"]

FORMAT = "tensorbridge.correspondence"
VERSION = 1
SUFFIX = ".tbmap.json"
SECTIONS = ("inputs", "outputs", "tensors")


class MapError(ValueError):
    """A ``.tbmap.json`` that is not a version-1 correspondence map."""


def map_path(model_path: str) -> str:
    """Where the map of ``model_path`` lives: beside it, ``<model>.tbmap.json``."""
    return os.path.normpath(model_path) + SUFFIX


def _perm(v) -> tuple[int, ...] | None:
    if v is None:
        return None
    if not isinstance(v, (list, tuple)) or not all(isinstance(i, int) for i in v) or sorted(v) != list(range(len(v))):
        raise MapError(f"layout {v!r:.60} is not a permutation")
    return tuple(v)


@dataclass
class Entry:
    """One pair: ``target`` in the converted model is ``source`` in its source, transposed by ``layout``."""

    source: str
    target: str
    layout: tuple[int, ...] | None = None
    layout_known: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"source": self.source, "target": self.target,
                             "layout": list(self.layout) if self.layout is not None else None}
        if not self.layout_known:
            d["layout_known"] = False
        d.update(self.extra)
        return d

    @staticmethod
    def from_dict(d: Any) -> "Entry":
        if not isinstance(d, dict) or not isinstance(d.get("source"), str) or not isinstance(d.get("target"), str):
            raise MapError(f"entry {str(d)[:80]!r} has no source and target names")
        extra = {k: v for k, v in d.items() if k not in ("source", "target", "layout", "layout_known")}
        return Entry(d["source"], d["target"], _perm(d.get("layout")), bool(d.get("layout_known", True)), extra)


@dataclass
class TensorMap:
    """A whole map. Empty (falsy) when a model has none."""

    hop: str = ""
    tool: str = ""
    source: dict[str, Any] = field(default_factory=dict)   # {"path", "format"}
    target: dict[str, Any] = field(default_factory=dict)
    inputs: list[Entry] = field(default_factory=list)
    outputs: list[Entry] = field(default_factory=list)
    tensors: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    path: str | None = None                                # the file it was read from

    def __bool__(self) -> bool:
        return bool(self.inputs or self.outputs or self.tensors)

    # -- the document ------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {"format": FORMAT, "version": VERSION, "hop": self.hop, "tool": self.tool,
             "source": dict(self.source), "target": dict(self.target)}
        for key in SECTIONS:
            d[key] = [e.to_dict() for e in getattr(self, key)]
        d["notes"] = list(self.notes)
        d.update(self.extra)
        return d

    @staticmethod
    def from_dict(doc: Any, path: str | None = None) -> "TensorMap":
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise MapError("not a tensorbridge correspondence map")
        if doc.get("version") != VERSION:
            raise MapError(f"map version {doc.get('version')!r}; this Tensorbridge reads version {VERSION}")
        m = TensorMap(hop=str(doc.get("hop") or ""), tool=str(doc.get("tool") or ""),
                      source=dict(doc.get("source") or {}), target=dict(doc.get("target") or {}),
                      notes=[str(n) for n in doc.get("notes") or []], path=path)
        for key in SECTIONS:
            items = doc.get(key) or []
            if not isinstance(items, list):
                raise MapError(f"'{key}' is not a list")
            setattr(m, key, [Entry.from_dict(e) for e in items])
        m.extra = {k: v for k, v in doc.items()
                   if k not in ("format", "version", "hop", "tool", "source", "target", "notes") + SECTIONS}
        return m

    def write(self, path: str) -> str:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=1, default=_json_default)
        return path

    # -- what compare needs -------------------------------------------------------------------------------
    @property
    def pairs(self) -> dict[str, tuple[str, tuple[int, ...] | None]]:
        """source name -> (target name, layout), inputs and outputs first, then inner tensors."""
        out: dict[str, tuple[str, tuple[int, ...] | None]] = {}
        for key in SECTIONS:
            for e in getattr(self, key):
                out.setdefault(e.source, (e.target, e.layout))
        return out

    def tensor_pairs(self) -> list[tuple[str, str, tuple[int, ...] | None]]:
        """The inner tensors as (source, target, layout), in the map's (graph) order."""
        return [(e.source, e.target, e.layout) for e in self.tensors]

    def target_perms(self) -> dict[str, tuple[int, ...]]:
        """target name -> layout, for feeding source-layout data to the target."""
        return {t: p for _s, (t, p) in self.pairs.items() if p}

    # -- algebra ------------------------------------------------------------------------------------------
    def inverted(self) -> "TensorMap":
        """The map read the other way (target -> source)."""
        def inv(e: Entry) -> Entry:
            return Entry(e.target, e.source, invert_perm(e.layout), e.layout_known, dict(e.extra))

        return TensorMap(self.hop, self.tool, dict(self.target), dict(self.source),
                         [inv(e) for e in self.inputs], [inv(e) for e in self.outputs],
                         [inv(e) for e in self.tensors], list(self.notes), dict(self.extra), self.path)

    def renamed(self, source_aliases: dict[str, str] | None, target_aliases: dict[str, str] | None) -> "TensorMap":
        """The same map with names translated to what the runners call them."""
        sa, ta = source_aliases or {}, target_aliases or {}

        def ren(e: Entry) -> Entry:
            return Entry(sa.get(e.source, e.source), ta.get(e.target, e.target), e.layout, e.layout_known,
                         dict(e.extra))

        return TensorMap(self.hop, self.tool, dict(self.source), dict(self.target),
                         [ren(e) for e in self.inputs], [ren(e) for e in self.outputs],
                         [ren(e) for e in self.tensors], list(self.notes), dict(self.extra), self.path)

    def compose(self, then: "TensorMap") -> "TensorMap":
        """This map followed by ``then`` (this target == then's source), chained on the intermediate
        model's tensor names. A graph input or output of the middle model can be a layer's tensor of the
        next map, and the other way round, so each section looks in all of ``then``'s sections."""
        m = TensorMap(f"{self.hop}+{then.hop}" if self.hop and then.hop else self.hop or then.hop,
                      "; ".join(t for t in (self.tool, then.tool) if t), dict(self.source), dict(then.target),
                      notes=list(self.notes) + list(then.notes))
        for key in SECTIONS:
            others = [k for k in ("tensors", "outputs", "inputs") if k != key]
            by_src: dict[str, Entry] = {}
            for e in getattr(then, key) + [x for k in others for x in getattr(then, k)]:
                by_src.setdefault(e.source, e)
            res = []
            for e in getattr(self, key):
                f = by_src.get(e.target)
                if f is None:
                    continue
                known = e.layout_known and f.layout_known
                extra = {k: v for k, v in e.extra.items() if k in ("source_kind", "source_class")}
                extra["via"] = e.target
                res.append(Entry(e.source, f.target, compose_perm(e.layout, f.layout) if known else None, known,
                                 extra))
            setattr(m, key, res)
        return m


def _json_default(o):
    try:
        import numpy as np
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)


def write_map(output: str, *, hop: str, tool: str, source: str, source_format: str, target_format: str,
              inputs: list[dict] | None = None, outputs: list[dict] | None = None,
              tensors: list[dict] | None = None, notes: Iterable[str] = (), **extra: Any) -> str:
    """Write the map of one hop beside ``output``; return its path. Entries are dicts in the document's
    form; one without ``source`` and ``target`` names or with a layout that is not a permutation is left
    out (and counted in the notes), so that a converter's odd tensor never fails a conversion."""
    notes = list(notes)
    dropped = 0

    def entries(items):
        nonlocal dropped
        out = []
        for e in items or []:
            try:
                out.append(Entry.from_dict(e))
            except MapError:
                dropped += 1
        return out

    m = TensorMap(hop, tool, {"path": os.path.abspath(source), "format": source_format},
                  {"path": os.path.abspath(output), "format": target_format},
                  entries(inputs), entries(outputs), entries(tensors), notes, dict(extra))
    if dropped:
        m.notes.append(f"{dropped} pair(s) the converter reported without both names (or with a bad layout) "
                       f"are left out")
    return m.write(map_path(output))


def read_map(model_path: str, warnings: list[str] | None = None) -> TensorMap:
    """The map beside ``model_path``; an empty map when there is none, or (with a warning) when it is not
    a version-1 correspondence map."""
    path = map_path(model_path)
    if not os.path.isfile(path):
        return TensorMap()
    try:
        with open(path) as f:
            return TensorMap.from_dict(json.load(f), path)
    except (OSError, ValueError) as exc:  # MapError is a ValueError, as is bad JSON
        if warnings is not None:
            warnings.append(f"{path}: converter map ignored ({exc})")
        return TensorMap()
