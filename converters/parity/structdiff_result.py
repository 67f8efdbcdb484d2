"""The result of a structural diff (:mod:`converters.parity.structdiff`): :class:`StructDiff`, its
entries (:class:`DiffEntry`) and their changes (:class:`Change`), with their summary lines and JSON
(``to_dict`` / ``from_dict``: what the ``struct_diff`` task sends and ``tensorbridge diff --json`` writes).
Re-exported by :mod:`converters.parity.structdiff`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Change", "DiffEntry", "StructDiff", "STATUSES"]

STATUSES = ("changed", "added", "removed", "same")


@dataclass
class Change:
    """One difference of a paired node: ``kind`` is ``op``, ``attr``, ``shape``, ``inputs``, ``weights``,
    ``weight_shape``, ``weight_dtype`` or ``weight_count``; ``what`` names the attribute, output or weight;
    ``a`` / ``b`` the two values as text; for ``weights`` the largest absolute and relative change when the
    arrays were read (None when only their fingerprints were compared)."""

    kind: str
    what: str
    a: str
    b: str
    max_abs: float | None = None
    max_rel: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "what": self.what, "a": self.a, "b": self.b}
        if self.max_abs is not None:
            d["max_abs"] = self.max_abs
        if self.max_rel is not None:
            d["max_rel"] = self.max_rel
        return d

    def text(self) -> str:
        if self.kind == "op":
            return f"op {self.a} → {self.b}"
        if self.kind == "weights":
            if self.max_abs is None:
                return f"weights changed: {self.what} (fingerprint)"
            return f"weights changed: {self.what} (max |Δ| {self.max_abs:.3g}, relative {self.max_rel:.3g})"
        if self.kind == "weight_shape":
            return f"weight shape changed: {self.what} {self.a} → {self.b}"
        if self.kind == "weight_dtype":
            return f"weight dtype changed: {self.what} {self.a} → {self.b}"
        if self.kind == "weight_count":
            return f"stored inputs {self.a} → {self.b}"
        if self.kind == "shape":
            return f"output {self.what} shape {self.a} → {self.b}"
        if self.kind == "inputs":
            return f"input {self.what} from {self.a} → {self.b}"
        return f"{self.what} {self.a} → {self.b}"


@dataclass
class DiffEntry:
    """One node (or, for weights-only files, one weight): its status (``changed``, ``added``, ``removed``,
    ``same``), its name, op, index and first output in A and in B ('' / -1 on the side that lacks it), how
    it was paired (``method``) and what changed."""

    status: str
    a: str = ""
    b: str = ""
    op_a: str = ""
    op_b: str = ""
    index_a: int = -1
    index_b: int = -1
    value_a: str = ""
    value_b: str = ""
    method: str = ""
    kind: str = "node"
    changes: list[Change] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.a or self.b or self.value_a or self.value_b

    @property
    def op(self) -> str:
        if self.op_a and self.op_b and self.op_a != self.op_b:
            return f"{self.op_a} → {self.op_b}"
        return self.op_a or self.op_b

    def summary(self) -> str:
        """What changed, in one line."""
        if self.status == "added":
            return f"added in B ({self.op_b})" if self.op_b else "added in B"
        if self.status == "removed":
            return f"removed from A ({self.op_a})" if self.op_a else "removed from A"
        if self.status == "same":
            return "unchanged"
        return "; ".join(c.text() for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "kind": self.kind, "a": self.a, "b": self.b, "op_a": self.op_a,
                "op_b": self.op_b, "index_a": self.index_a, "index_b": self.index_b, "value_a": self.value_a,
                "value_b": self.value_b, "method": self.method, "changes": [c.to_dict() for c in self.changes],
                "summary": self.summary()}


@dataclass
class StructDiff:
    """Every node of both models as a :class:`DiffEntry` (A's order, added nodes where B has them)."""

    a: str = ""
    b: str = ""
    format_a: str = ""
    format_b: str = ""
    entries: list[DiffEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def of(self, status: str) -> list[DiffEntry]:
        return [e for e in self.entries if e.status == status]

    @property
    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for e in self.entries:
            out[e.status] += 1
        return out

    @property
    def methods(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.entries:
            if e.method:
                out[e.method] = out.get(e.method, 0) + 1
        return out

    @property
    def identical(self) -> bool:
        return all(e.status == "same" for e in self.entries)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "StructDiff":
        entries = []
        for e in d.get("entries") or []:
            e = {k: v for k, v in e.items() if k != "summary"}
            e["changes"] = [Change(**c) for c in e.get("changes") or []]
            entries.append(DiffEntry(**e))
        return StructDiff(d.get("a", ""), d.get("b", ""), d.get("format_a", ""), d.get("format_b", ""), entries,
                          list(d.get("notes") or []))

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "format_a": self.format_a, "format_b": self.format_b,
                "identical": self.identical, "counts": self.counts, "methods": self.methods,
                "entries": [e.to_dict() for e in self.entries], "notes": list(self.notes)}

    def summary_lines(self, *, all: bool = False) -> list[str]:
        """The changed, added and removed entries one line each (every entry with ``all``), then counts."""
        c = self.counts
        lines = [f"A: {self.a} ({self.format_a})", f"B: {self.b} ({self.format_b})"]
        marks = {"changed": "~", "added": "+", "removed": "-", "same": "="}
        for e in self.entries:
            if e.status == "same" and not all:
                continue
            names = e.a if e.status != "added" else e.b
            if e.status == "changed" and e.b and e.b != e.a:
                names = f"{e.a} ↔ {e.b}"
            pairing = f"  [{e.method}]" if e.method else ""
            lines.append(f"{marks[e.status]} {names or e.name}  {e.op}: {e.summary()}{pairing}")
        what = "weights" if self.entries and self.entries[0].kind == "weight" else "nodes"
        lines.append(f"{c['changed']} changed, {c['added']} added, {c['removed']} removed, {c['same']} unchanged "
                     f"{what}" + ("; identical" if self.identical else ""))
        lines += [f"note: {n}" for n in self.notes]
        return lines
