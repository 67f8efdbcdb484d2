"""Worker tasks behind the window's graph view: ``open`` (model -> ViewPack) and ``tensor`` (weight stats)."""
from __future__ import annotations

import time

from ..errors import TensorbridgeError


def open_task(params: dict, ctx) -> dict:
    """Load a model and write its ViewPack into the job folder.

    params: ``path`` (str), ``trust`` (bool, default False), ``options`` (dict for the reader; the key
    ``overview_budget`` (int, default 1000) is taken by the pack instead).
    Result: ``Model.summary()`` plus ``pack_dir`` (str), ``weights_only`` (bool) and ``timings``
    (seconds since the task started: ``overview``, ``loaded``, ``packed``).

    For big ONNX graphs (files over ``QUICK_BYTES`` with over ``QUICK_NODES`` nodes, or
    ``options["quick_overview"]=True``) an ``overview`` event comes first:
    ``{"event": "overview", "pack_dir": ..., "seconds": ...}``, a pack made from the
    graph's structure alone (names, op types, edges, scopes: no shape inference, no attributes), so the
    window can draw while the full read goes on. The final pack has the same nodes and groups.
    ``options["quick_overview"]=False`` turns it off.
    """
    from ..formats import load
    from ..viewpack import build_pack

    t0 = time.perf_counter()
    path = params["path"]
    options = dict(params.get("options") or {})
    budget = int(options.pop("overview_budget", 1000))
    quick = options.pop("quick_overview", None)
    ctx.progress(0.0, f"reading {path}")
    timings: dict[str, float] = {}
    if quick is not False:
        first = _quick_pack(path, ctx, budget, force=bool(quick))
        if first is not None:
            timings["overview"] = time.perf_counter() - t0
            ctx.send("overview", pack_dir=first, seconds=timings["overview"])
    model = load(path, trust=bool(params.get("trust", False)),
                 progress=lambda f=None, m="": ctx.progress(None if f is None else 0.5 * f, m), **options)
    t_load = time.perf_counter() - t0
    pack = build_pack(model, ctx.path("view"), progress=ctx.progress, overview_budget=budget)
    result = dict(pack.summary)
    timings.update(loaded=t_load, packed=time.perf_counter() - t0)
    result.update(pack_dir=str(pack.dir), weights_only=pack.weights_only, timings=timings)
    ctx.progress(1.0, "done")
    return result


def tensor_task(params: dict, ctx) -> dict:
    """Statistics and a histogram of one stored weight.

    params: ``path``, ``trust`` (default False), ``name`` (weight name as shown by the inspector),
    ``bins`` (int, default 64). Result: ``name``, ``dtype``, ``shape``, ``stats`` (see
    :func:`converters.graph.tensor_stats`) and ``histogram`` ``{counts: [bins], edges: [bins + 1]}`` over
    the finite values (empty lists when there are none). The model is read again here; a warm worker
    holding the open model would answer at once.
    """
    import numpy as np

    from ..formats import load
    from ..graph import tensor_stats

    path, name = params["path"], params["name"]
    bins = int(params.get("bins", 64))
    ctx.progress(None, f"reading {path}")
    model = load(path, trust=bool(params.get("trust", False)))
    tensor = None
    if model.graph is not None:
        tensor = model.graph.initializers.get(name)
        if tensor is None:
            for sub in list(model.signatures.values()) + list(model.functions.values()):
                tensor = sub.initializers.get(name)
                if tensor is not None:
                    break
    if tensor is None and model.weights:
        tensor = next((w.tensor for w in model.weights if w.name == name), None)
    if tensor is None:
        raise TensorbridgeError(f"{path}: has no stored weight named {name!r}; pick a weight shown in the "
                                f"inspector")
    try:
        arr = np.asarray(tensor.numpy())
    except Exception as exc:
        raise TensorbridgeError(f"{path}: the data of weight {name!r} cannot be read ({exc}); "
                                f"check that external data files are beside the model") from None
    stats = tensor_stats(arr)
    counts: list = []
    edges: list = []
    if arr.size and arr.dtype.kind in "fiub":
        a = arr.astype(np.float64, copy=False).ravel()
        a = a[np.isfinite(a)]
        if a.size:
            c, e = np.histogram(a, bins=bins)
            counts, edges = c.tolist(), e.tolist()
    return {"name": name, "dtype": str(arr.dtype), "shape": list(arr.shape), "stats": stats,
            "histogram": {"counts": counts, "edges": edges}}


QUICK_BYTES = 1 << 20     # ONNX files above this are parsed once up front for a structure-only first pack
QUICK_NODES = 2000        # ... which is made when the graph has more nodes than this


def _quick_pack(path: str, ctx, budget: int, force: bool = False) -> str | None:
    """A structure-only pack of an ONNX file, or None when not worth it (small, not ONNX, unreadable)."""
    import os

    from ..formats import detect
    from ..graph import Graph, Model, Node
    from ..viewpack import build_pack

    try:
        if detect(path) != "onnx" or (not force and os.path.getsize(path) < QUICK_BYTES):
            return None
        import onnx

        from ..formats.onnx_reader import _node_scope

        mp = onnx.load_model(path, load_external_data=False)
    except Exception:       # the full read below reports the problem properly
        return None
    gp = mp.graph
    if not force and len(gp.node) <= QUICK_NODES:
        return None
    g = Graph(name=gp.name, inputs=[v.name for v in gp.input], outputs=[v.name for v in gp.output])
    g.nodes = [Node(n.name or f"{n.op_type}_{i}", n.op_type, list(n.input), list(n.output), {},
                    _node_scope(n, len(n.metadata_props) > 0), n.domain)
               for i, n in enumerate(gp.node)]
    del mp
    model = Model(format="onnx", path=os.path.abspath(path), graph=g)
    pack = build_pack(model, ctx.path("view0"), overview_budget=budget, details=False)
    return str(pack.dir)
