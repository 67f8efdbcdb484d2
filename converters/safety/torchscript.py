"""What a TorchScript archive would run: read from its files, before ``torch.jit.load`` sees them.

A TorchScript archive is code: ``code/**/*.py`` holds the TorchScript source that ``torch.jit.load``
compiles, and its pickles (``data.pkl``, ``constants.pkl``, ``*.debug_pkl``) are unpickled by torch's C++
unpickler. Two things in it run at load time or run time with effects outside the model:

* ``__setstate__`` methods: ``torch.jit.load`` calls them while it unpickles ``data.pkl``, so opening the
  file runs them. Any archive that defines one is refused without trust (quantized modules do, for their
  packed weights: those need trust too).
* operators that reach the file system or the network: ``torch.from_file`` (creates or overwrites any
  writable file with ``shared=True``), ``torch.save``, ``debugprims.load_tensor``, collective ops
  (``c10d``, ``symm_mem``), and any operator or class from a namespace outside torch's own tensor
  libraries (a custom library could do anything). These are refused on every path, read or run.

TorchScript cannot name an operator without spelling it (it has no ``getattr`` on strings), so searching
the source text is a sound check; the search runs on the raw text (strings and comments included), which
can only refuse more, never less. Every pickle member is pre-scanned (:mod:`.pickles`), every member's
declared size checked (:mod:`.archives`).
"""
from __future__ import annotations

import re
import zipfile

from ..errors import CorruptFile, TrustRequired
from .archives import open_zip, read_member
from .pickles import scan_bytes

# Operator namespaces of torch's own tensor libraries (``ops.<ns>.<op>`` in TorchScript source).
SAFE_OP_NAMESPACES = frozenset({
    "aten", "prim", "prims", "quantized", "_quantized", "quantization", "mkldnn", "mkldnn_prepacked",
    "onednn", "mkl", "sparse", "profiler", "rngprims", "_native", "xnnpack", "vulkan_prepack",
})
# TorchBind classes that torch itself registers (``torch.classes.<ns>.<Class>``).
SAFE_CLASS_NAMESPACES = frozenset({"quantized", "xnnpack", "mkldnn", "vulkan", "metal"})
# aten operators with effects outside the tensors they are given.
UNSAFE_ATEN = {"from_file": "creates or overwrites files (torch.from_file)",
               "save": "writes files (torch.save)"}

MAX_CODE_BYTES = 256 * 1024 ** 2
MAX_PICKLE_BYTES = 2 * 1024 ** 3

_OPS_RE = re.compile(rb"\bops\s*\.\s*([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)")
_CLASSES_RE = re.compile(rb"\bclasses\s*\.\s*([A-Za-z_]\w*)")
_ATEN_RE = re.compile(rb"\b(?:torch|aten)\s*\.\s*(from_file|save)\b")
_SETSTATE_RE = re.compile(rb"__setstate__")
_CLASS_RE = re.compile(rb"^\s*class\s+([A-Za-z_]\w*)", re.M)


def _code_members(z: zipfile.ZipFile) -> list[str]:
    return [n for n in z.namelist() if "/code/" in f"/{n}" and n.endswith(".py")]


def scan_torchscript(path: str) -> dict:
    """What the archive's code and pickles contain: ``{"setstate": [...], "unsafe": [...]}``.

    Raises one-line errors for a damaged archive or a forged pickle. Reads no tensor data.
    """
    with open_zip(path, "TorchScript archive") as z:
        code_names = _code_members(z)
        if not code_names:
            raise CorruptFile(f"{path}: a TorchScript archive without code/; the file is damaged or not "
                              f"TorchScript")
        total = 0
        setstate: list[str] = []
        unsafe: list[str] = []
        for name in code_names:
            text = read_member(path, z, name, MAX_CODE_BYTES, "TorchScript archive")
            total += len(text)
            if total > MAX_CODE_BYTES:
                raise CorruptFile(f"{path}: holds more than {MAX_CODE_BYTES >> 20} MiB of TorchScript code; "
                                  f"refusing it")
            if _SETSTATE_RE.search(text):
                classes = [c.decode() for c in _CLASS_RE.findall(text)] or [name.rsplit("/", 1)[-1]]
                setstate.append(f"{name.split('/code/', 1)[-1]} ({', '.join(classes[:3])})")
            for ns, op in _OPS_RE.findall(text):
                if ns.decode() not in SAFE_OP_NAMESPACES:
                    unsafe.append(f"calls operator {ns.decode()}.{op.decode()} from outside torch's tensor "
                                  f"libraries")
                elif ns == b"aten" and op.decode() in UNSAFE_ATEN:
                    unsafe.append(UNSAFE_ATEN[op.decode()])
            for (ns,) in [(m,) for m in _CLASSES_RE.findall(text)]:
                if ns.decode() not in SAFE_CLASS_NAMESPACES:
                    unsafe.append(f"uses class torch.classes.{ns.decode()} from outside torch")
            for op in _ATEN_RE.findall(text):
                unsafe.append(UNSAFE_ATEN[op.decode()])
        for name in z.namelist():
            if name.endswith(".pkl") or name.endswith(".debug_pkl"):
                scan_bytes(read_member(path, z, name, MAX_PICKLE_BYTES, "TorchScript archive"), path=path,
                           what=f"pickle '{name.rsplit('/', 1)[-1]}'")
    return {"setstate": setstate, "unsafe": sorted(set(unsafe))}


def check_torchscript(path: str, *, trust: bool, action: str = "read") -> None:
    """Refuse (``TrustRequired``) a TorchScript archive whose loading or running would run file code.

    ``action`` is ``"read"`` (``torch.jit.load`` for its graph) or ``"run"`` (also its ``forward``:
    convert, compare, tracing). Both refuse operators with outside effects; loading also refuses scripted
    ``__setstate__`` methods, which ``torch.jit.load`` runs. With ``trust`` nothing is checked.
    """
    if trust:
        return
    found = scan_torchscript(path)
    if found["unsafe"]:
        raise TrustRequired(f"{path}: its TorchScript code {'; '.join(found['unsafe'][:3])}; open or run it "
                            f"only if you trust its source (--trust, or 'Trust and open' in the window)")
    if found["setstate"]:
        where = ", ".join(found["setstate"][:3])
        raise TrustRequired(f"{path}: loading this TorchScript archive runs TorchScript code stored in it "
                            f"(__setstate__ in {where}); open it only if you trust its source (--trust, or "
                            f"'Trust and open' in the window)")
