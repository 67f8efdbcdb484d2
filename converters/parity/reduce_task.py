"""Worker task ``reduce``: :func:`converters.parity.reduce.reduce_failure` run as one job, for the window.

The reduction starts its own jobs (a per-layer ``compare``, ``run_model``, ``reduce_cut`` …); running it
in a worker lets the window follow its progress and cancel it, which ends this worker and, through their
lifelines, every job it started.

params: ``a``, ``b`` (absolute paths), ``out`` (the repro folder; default ``<B>.repro`` beside B, never
replacing an existing one), and the tolerance and inputs of the comparison to reproduce: ``preset``,
``atol``, ``rtol``, ``noise_factor``, ``seed``, ``inputs`` (.npz/.npy files), ``trust``; ``max_checks``,
``max_steps``, ``timeout`` (seconds per job); ``layer`` (the pair to reduce: A's tensor name or the layer
index; default the first divergence) and ``result_dir`` (a kept per-layer result folder of the same A and
B, reused instead of comparing again). result: :meth:`ReduceResult.to_dict` (``differ``,
``out_dir``, ``files`` {model: repro.onnx, inputs, expected, actual, readme, check, json}, ``nodes``,
``ops``, ``nodes_before``, ``nodes_after``, ``max_abs`` …).
"""
from __future__ import annotations

import os

from ..errors import TensorbridgeError


def reduce_task(params: dict, ctx) -> dict:
    from .reduce import ReduceOptions, reduce_failure

    for key in ("a", "b"):
        if not os.path.isabs(str(params.get(key, ""))):
            raise TensorbridgeError(f"reduce: '{params.get(key)}' is a relative path; pass absolute paths to the task")
    o = ReduceOptions(preset=params.get("preset"), atol=params.get("atol"), rtol=params.get("rtol"),
                      noise_factor=params.get("noise_factor"), seed=int(params.get("seed") or 0),
                      inputs=[os.path.abspath(f) for f in params.get("inputs") or []], trust=bool(params.get("trust")),
                      out=params.get("out"), max_checks=int(params.get("max_checks") or 200),
                      max_steps=int(params.get("max_steps") or 8), timeout=params.get("timeout"),
                      layer=params.get("layer"), result_dir=params.get("result_dir") or None)
    res = reduce_failure(params["a"], params["b"], o, progress=ctx.progress)
    ctx.progress(1.0, "done")
    return res.to_dict()
