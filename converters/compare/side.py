"""Worker task ``compare_side``: side B of a per-layer comparison, comparing each tensor with A's as B's
runtime produces it.

Side A runs first and writes its paired tensors to disk (:func:`converters.runners.tasks.run_model_task`
with ``capture_dir``); B starts at the same time, opens its model and prepares its inputs, waits for A's
index of files, then runs once: each tensor B makes is compared at once with A's file for it (memory-mapped)
and dropped, and written to disk only when it fails (the engine may judge it again with A's rounding
allowance, or show it). A faithful conversion thus writes one side's tensors, not two, and reads each
once, while it is still in the page cache.

params: those of ``run_model`` (with ``capture``, ``capture_dir``), plus ``against`` (path of A's index
JSON, written by A's ``capture_index_out``), ``pairs`` [[A name, B name, perm or None], …], ``tolerance``
(a Tolerance dict), ``overrides`` {name: Tolerance dict}, ``wait_s``.
result: that of ``run_model``, plus ``layer_diffs`` [OutputDiff dicts] and ``compare_warnings``.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np

from .diff import OutputDiff
from .tolerances import Tolerance


class InlineCompare:
    """The consumer ``run_model`` hands B's tensors to (see :func:`converters.runners.tasks._streamed`)."""

    def __init__(self, params: dict):
        self.index_path = params["against"]
        self.wait_s = float(params.get("wait_s") or 0)
        self.tol = Tolerance.from_dict(params["tolerance"]) if params.get("tolerance") else Tolerance()
        self.overrides = {k: Tolerance.from_dict(v) for k, v in (params.get("overrides") or {}).items()}
        self.by_b: dict[str, list[tuple]] = {}
        for c in params.get("pairs") or []:
            perm = tuple(c[2]) if len(c) > 2 and c[2] else None
            self.by_b.setdefault(c[1], []).append((c[0], c[1], perm))
        self.files_a: dict[str, str] = {}
        self.diffs: list[OutputDiff] = []
        self.warnings: list[str] = []

    def start(self, ctx) -> None:
        """Wait for A's files: B runs only once A has finished (each side then has every core)."""
        deadline = time.monotonic() + self.wait_s
        if not os.path.exists(self.index_path):
            ctx.progress(None, "waiting for side A's tensors")
        while not os.path.exists(self.index_path):
            if time.monotonic() > deadline:
                raise TimeoutError(f"side A's tensors did not appear within {self.wait_s:g} s")
            time.sleep(0.05)
        with open(self.index_path) as f:
            self.files_a = json.load(f)

    def __call__(self, name: str, value) -> bool:
        """Compare B's tensor ``name`` with A's for every pair it is in; True: keep it (it failed)."""
        from .engine import compare_outputs

        failed = False
        for a, b, perm in self.by_b.get(name, ()):
            f = self.files_a.get(a)
            if f is None:
                continue
            xa = np.load(f, mmap_mode="r")
            ds = compare_outputs({a: xa}, {b: np.asarray(value)}, tolerance=self.tol, overrides=self.overrides,
                                 warnings=self.warnings, names_a=[a], names_b=[b], pairs=[(a, b, perm)],
                                 only_given=True, detail=False)
            del xa
            self.diffs.extend(ds)
            failed = failed or any(not d.passed for d in ds)
        return failed


def compare_side_task(params: dict, ctx) -> dict:
    from ..runners.tasks import run_model_task

    consumer = InlineCompare(params)
    result = run_model_task(params, ctx, consume=consumer)
    result["layer_diffs"] = [d.to_dict() for d in consumer.diffs]
    result["compare_warnings"] = list(dict.fromkeys(consumer.warnings))
    return result
