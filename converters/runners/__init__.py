"""One runner per runtime, with one interface (see :mod:`converters.runners.base`).

>>> with runner_for("model.onnx", device="cpu") as r:
...     out = r.infer({"x": x})                    # {"logits": array, ...}
...     specs = r.input_specs()                    # [TensorSpec(name, dtype, shape)]

``runner_for`` picks the runner from the file's content (converters.formats.detect). Frameworks are
imported when a runner opens, never when this package is imported. ``list_devices()`` says which devices
each installed runtime can use here and why the others are missing.
"""
from __future__ import annotations

import importlib

from ..errors import UnsupportedFormat
from ..formats.registry import RUNNERS as _REGISTRY_RUNNERS
from .base import DeviceUnavailable, InvalidFeeds, Runner, RunnerError, TensorSpec

__all__ = ["runner_for", "runtime_for", "list_devices", "Runner", "TensorSpec", "RunnerError", "InvalidFeeds",
           "DeviceUnavailable", "RUNNERS"]

# format family -> (runtime name, "module:class"), from the format registry
RUNNERS: dict[str, tuple[str, str]] = dict(_REGISTRY_RUNNERS)


def runtime_for(path: str) -> tuple[str, str]:
    """(format family, runtime name) for a model path; raises a one-line error for unrunnable files."""
    from ..formats.detect import detect

    family = detect(str(path))
    if family not in RUNNERS:
        raise UnsupportedFormat(f"{path}: a {family} file holds weights only, with no architecture to run; "
                                f"compare an exported model (.pt2, .onnx, .keras, SavedModel, .tflite)")
    return family, RUNNERS[family][0]


def runner_for(path: str, *, device: str = "cpu", trust: bool = False, **options) -> Runner:
    """A (not yet opened) runner for ``path`` on ``device``. Options: ``signature`` (SavedModel)."""
    family, _ = runtime_for(path)
    mod, cls = RUNNERS[family][1].split(":")
    return getattr(importlib.import_module(mod), cls)(str(path), device=device, trust=trust, family=family,
                                                      **options)


def list_devices(runtimes: list[str] | None = None) -> list[dict]:
    """Devices per runtime: ``[{runtime, device, available, reason, name}]``.

    Lists the devices that exist (available True) and, for accelerators that are missing, one entry with
    available False and the reason (no GPU found, CPU-only build installed, runtime not installed …).
    ``runtimes`` limits the listing (torch, tensorflow, tflite, onnxruntime); importing a framework to ask
    it costs seconds, so the window asks through a worker job.
    """
    from .devices import list_devices as _ld
    return _ld(runtimes)
