"""Which devices each runtime can use on this machine, and why the missing ones are missing."""
from __future__ import annotations

import importlib.util

ALL_RUNTIMES = ("torch", "tensorflow", "tflite", "onnxruntime")


def _entry(runtime, device, available, reason="", name=""):
    return {"runtime": runtime, "device": device, "available": bool(available), "reason": reason, "name": name}


def _installed(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def _torch() -> list[dict]:
    if not _installed("torch"):
        return [_entry("torch", "cpu", False, "torch is not installed")]
    import torch

    out = [_entry("torch", "cpu", True, name=f"torch {torch.__version__}")]
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        out.append(_entry("torch", "cuda:0", False,
                          f"CPU-only torch build installed ({torch.__version__}); install a CUDA build for GPUs"))
    elif not torch.cuda.is_available():
        out.append(_entry("torch", "cuda:0", False,
                          f"no CUDA GPU found (torch {torch.__version__} built for CUDA {torch.version.cuda}; "
                          f"driver missing or no device)"))
    else:
        for i in range(torch.cuda.device_count()):
            out.append(_entry("torch", f"cuda:{i}", True, name=torch.cuda.get_device_name(i)))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append(_entry("torch", "mps", True, name="Apple MPS"))
    return out


def _tensorflow() -> list[dict]:
    if not _installed("tensorflow"):
        return [_entry("tensorflow", "cpu", False, "tensorflow is not installed")]
    import tensorflow as tf

    out = [_entry("tensorflow", "cpu", True, name=f"tensorflow {tf.__version__}")]
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        for i, g in enumerate(gpus):
            out.append(_entry("tensorflow", f"gpu:{i}", True, name=g.name))
    elif not tf.test.is_built_with_cuda():
        out.append(_entry("tensorflow", "gpu:0", False,
                          f"TensorFlow {tf.__version__} is built without CUDA (tensorflow-cpu); install "
                          f"tensorflow[and-cuda] for GPUs"))
    else:
        out.append(_entry("tensorflow", "gpu:0", False, "no GPU found by TensorFlow (driver missing or no device)"))
    return out


def _tflite() -> list[dict]:
    if _installed("ai_edge_litert"):
        lib = "ai_edge_litert"
    elif _installed("tensorflow"):
        lib = "tensorflow.lite"
    else:
        return [_entry("tflite", "cpu", False, "neither ai_edge_litert nor tensorflow is installed")]
    return [_entry("tflite", "cpu", True, name=f"{lib} interpreter (XNNPACK)"),
            _entry("tflite", "gpu:0", False, "the desktop TFLite interpreter has no GPU delegate here; "
                                             "GPU delegates run on Android/iOS")]


def _onnxruntime() -> list[dict]:
    if not _installed("onnxruntime"):
        return [_entry("onnxruntime", "cpu", False, "onnxruntime is not installed")]
    import onnxruntime as ort

    provs = ort.get_available_providers()
    out = []
    for p in provs:
        if p == "CPUExecutionProvider":
            out.append(_entry("onnxruntime", "cpu", True, name=f"onnxruntime {ort.__version__} {p}"))
        elif p == "AzureExecutionProvider":
            continue  # a remote-endpoint provider, not a device of this machine
        elif p == "CUDAExecutionProvider":
            out.append(_entry("onnxruntime", "cuda:0", True, name=p))
        else:
            out.append(_entry("onnxruntime", p, True, name=p))
    if "CUDAExecutionProvider" not in provs:
        out.append(_entry("onnxruntime", "cuda:0", False,
                          f"onnxruntime {ort.__version__} is built without CUDA (providers: {', '.join(provs)}); "
                          f"install onnxruntime-gpu for NVIDIA GPUs"))
    return out


_PROBES = {"torch": _torch, "tensorflow": _tensorflow, "tflite": _tflite, "onnxruntime": _onnxruntime}


def list_devices(runtimes=None) -> list[dict]:
    out: list[dict] = []
    for rt in runtimes or ALL_RUNTIMES:
        if rt not in _PROBES:
            raise ValueError(f"unknown runtime '{rt}'; known: {', '.join(ALL_RUNTIMES)}")
        try:
            out.extend(_PROBES[rt]())
        except Exception as exc:  # a broken install must not hide the other runtimes
            from ..errors import one_line
            out.append(_entry(rt, "cpu", False, f"{rt} failed to start: {one_line(exc)}"))
    return out
