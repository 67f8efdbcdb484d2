"""What a TorchScript archive would run: checked from its files, without ``torch.jit.load``."""
from __future__ import annotations

from ..errors import TrustRequired


def check_torchscript(path: str, *, trust: bool, action: str = "read") -> None:
    """Refuse (``TrustRequired``) a TorchScript archive whose loading or running would run file code.

    ``action`` is ``"read"`` (``torch.jit.load`` for its graph: scripted ``__setstate__`` runs then) or
    ``"run"`` (also its ``forward``: convert, compare, tracing). With ``trust`` nothing is refused.
    """
    if trust:
        return
    if action == "run":
        raise TrustRequired(f"{path}: running a TorchScript model runs the TorchScript code stored in the "
                            f"file; run it only if you trust its source (--trust)")
