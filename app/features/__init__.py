"""The window's features beyond opening files, each in a module: convert, parity, structural diff, attach, find,
context menus."""
from __future__ import annotations

from .attach import AttachFeature
from .context_menus import ContextMenuFeature
from .convert import ConvertFeature
from .find import FindFeature
from .parity import ParityFeature
from .struct_diff import StructDiffFeature

__all__ = ["AttachFeature", "ContextMenuFeature", "ConvertFeature", "FindFeature", "ParityFeature", "StructDiffFeature"]
