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


def attach_task(params: dict, ctx) -> dict:
    """Load a weights-only checkpoint into the user's model class and export its graph.

    params: ``path``, ``spec``, ``kwargs``, ``input_shapes`` (+ optional ``input_dtypes``, ``trust``,
    ``save_to``); result as ``load`` gives (summary + ``model_json``)."""
    from ..formats.pytorch.attach import attach_architecture

    model = attach_architecture(params["path"], params["spec"], params.get("kwargs") or {},
                                params.get("input_shapes"), trust=bool(params.get("trust", False)),
                                input_dtypes=params.get("input_dtypes"), save_to=params.get("save_to"),
                                progress=ctx.progress)
    return model_result(model, ctx)
