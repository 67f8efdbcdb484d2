"""Finding a comparison's tensors in a view pack: the node that makes a value, for one layer or many.

Used by the Parity and Structural diff features to select a layer's node in the open model's graph;
re-exported by :mod:`app.panels.parity`.
"""
from __future__ import annotations

import os
import weakref

import numpy as np

__all__ = ["node_for_value", "nodes_for_layers", "value_producers"]


def node_for_value(pack, name: str) -> int:
    """Index of the node of view pack ``pack`` that produces the value ``name`` (or is named so); -1 when
    none does. Reads the pack's details file once, looking only at entries whose text holds the name."""
    if pack is None or not name or getattr(pack, "weights_only", False):
        return -1
    import json

    names = pack.names
    for cand in (name, name.replace(".", "_"), name.replace("/", ".")):
        if cand in names:
            hit = names.index(cand)
            if cand == name:
                return hit
            break
    else:
        hit = -1
    offs = getattr(pack, "_details_off", None)
    path = os.path.join(str(pack.dir), "details.jsonl")
    if offs is not None and len(offs) > 1 and os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
        needle = json.dumps(name).encode()
        start = 0
        while True:  # only entries that mention the name are parsed
            k = data.find(needle, start)
            if k < 0:
                break
            i = int(np.searchsorted(offs, k, side="right")) - 1
            if 0 <= i < pack.n_nodes:
                try:
                    d = json.loads(data[int(offs[i]):int(offs[i + 1])])
                except ValueError:
                    d = {}
                if any(o.get("name") == name for o in d.get("outputs") or []):
                    return i
                start = int(offs[i + 1])
            else:
                break
    return hit


_PRODUCERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def value_producers(pack) -> dict[str, int]:
    """{value name: index of the node that outputs it} over a whole view pack, from one read of its
    details file (cached per pack: a 50k-node pack takes a few tenths of a second once)."""
    import json
    import re

    try:
        hit = _PRODUCERS.get(pack)
    except TypeError:
        hit = None
    if hit is not None:
        return hit
    out: dict[str, int] = {}
    path = os.path.join(str(pack.dir), "details.jsonl")
    if pack.n_nodes and os.path.exists(path):
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        # line i is node i: {"index", "name", …, "outputs": [{"name": …, "dtype", "shape"}, …], "weights": …}
        name_re = re.compile(rb'"name": ("(?:[^"\\]|\\.)*")')
        start, end = b'"outputs": [', b'], "weights": '
        for i, line in enumerate(lines[:pack.n_nodes]):
            k = line.find(start)
            if k < 0:
                continue
            e = line.find(end, k)
            for q in name_re.findall(line, k, e if e >= 0 else len(line)):
                name = q[1:-1].decode("utf-8", "surrogatepass") if b"\\" not in q else json.loads(q)
                if name not in out:
                    out[name] = i
    try:
        _PRODUCERS[pack] = out
    except TypeError:
        pass
    return out


def nodes_for_layers(pack, node_names: list[str], value_names: list[str]) -> np.ndarray:
    """Index in view pack ``pack`` of each layer's node (-1 where the graph has none), for many layers at
    once: by node name first, then by the node that outputs the value (one read of the details file, only
    when some are left), then a node named like the value (as :func:`node_for_value`)."""
    n = len(value_names)
    out = np.full(n, -1, np.int64)
    if pack is None or getattr(pack, "weights_only", False) or not pack.n_nodes:
        return out
    by_name: dict[str, int] = {}
    for i, s in enumerate(pack.names):
        by_name.setdefault(s, i)
    left = []
    for k, nd in enumerate(node_names):
        i = by_name.get(nd) if nd else None
        if i is not None:
            out[k] = i
        else:
            left.append(k)
    if left:
        prod = value_producers(pack)
        for k in left:
            v = value_names[k]
            i = prod.get(v) if v else None
            if i is None and v:
                i = next((by_name[c] for c in (v, v.replace(".", "_"), v.replace("/", ".")) if c in by_name), None)
            if i is not None:
                out[k] = i
    return out
