"""Built-in tasks run inside worker processes."""
from __future__ import annotations

import json


def load_task(params: dict, ctx) -> dict:
    """Load a model file; write the whole neutral model as ``model.json``; return its summary.

    params: ``path`` (str), ``trust`` (bool, default False), ``options`` (dict for the reader).
    """
    from ..formats import load

    path = params["path"]
    ctx.progress(0.0, f"reading {path}")
    model = load(path, trust=bool(params.get("trust", False)), progress=ctx.progress,
                 **(params.get("options") or {}))
    return model_result(model, ctx)


def model_result(model, ctx) -> dict:
    """Write ``model`` as ``model.json`` in the job folder; return its summary plus ``model_json``."""
    ctx.progress(0.9, "writing graph")
    out = ctx.path("model.json")
    with open(out, "w") as f:
        json.dump(model.to_dict(), f, default=_jsonable)
    summary = model.summary()
    summary["model_json"] = out
    ctx.progress(1.0, "done")
    return summary


def _jsonable(obj):
    """What JSON cannot hold, as text: protobuf strings that are not UTF-8 arrive as bytes."""
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    return str(obj)
