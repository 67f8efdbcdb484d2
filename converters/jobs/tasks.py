"""The tasks a worker can run: name -> "module:function". A task is ``fn(params: dict, ctx) -> dict``.

``ctx`` is :class:`converters.jobs.worker.Context` (``progress``, ``log``, ``path`` for files in the job
folder). Results must be JSON-serialisable; big data goes to files in the job folder.
A task name that contains ':' is taken as "module:function" itself (used by tests and plug-ins).
"""
from __future__ import annotations

import importlib

TASKS: dict[str, str] = {
    "load": "converters.jobs.builtin:load_task",
    "convert": "converters.routes.run:convert_task",
    "attach_architecture": "converters.jobs.builtin:attach_task",
    "run_model": "converters.runners.tasks:run_model_task",
    "devices": "converters.runners.tasks:devices_task",
    "run_nodes": "converters.runners.tasks:run_nodes_task",
    "compare_side": "converters.compare.side:compare_side_task",
    "compare": "converters.compare.engine:compare_task",
    "plan_layers": "converters.parity.plan:plan_task",
    "struct_diff": "converters.parity.structdiff:struct_diff_task",
    "reduce_cut": "converters.parity.tasks:reduce_cut_task",
    "reduce_slice": "converters.parity.tasks:reduce_slice_task",
    "reduce": "converters.parity.reduce_task:reduce_task",
    "layer_tensors": "converters.compare.layer_tensors:layer_tensors_task",
    "open": "converters.jobs.view_tasks:open_task",
    "tensor": "converters.jobs.view_tasks:tensor_task",
}


def resolve(name: str):
    spec = TASKS.get(name) or (name if ":" in name else None)
    if spec is None:
        raise KeyError(f"unknown task '{name}'; known tasks: {', '.join(sorted(TASKS))}")
    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)
