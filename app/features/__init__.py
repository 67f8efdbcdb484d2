"""The window's features beyond opening files, each in a module: convert, parity, attach."""
from __future__ import annotations

from .attach import AttachFeature
from .convert import ConvertFeature
from .parity import ParityFeature

__all__ = ["AttachFeature", "ConvertFeature", "ParityFeature"]
