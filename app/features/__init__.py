"""The window's features beyond opening files, each in a module: convert, parity, structural diff, attach, find."""
from __future__ import annotations

from .attach import AttachFeature
from .convert import ConvertFeature
from .find import FindFeature
from .parity import ParityFeature
from .struct_diff import StructDiffFeature

__all__ = ["AttachFeature", "ConvertFeature", "FindFeature", "ParityFeature", "StructDiffFeature"]
