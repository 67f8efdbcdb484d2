"""Format detection and loading: one reader module per format family, picked by content.

``detect(path)`` looks at magic bytes and archive layout (the extension only breaks ties);
``load(path, trust=False)`` returns a :class:`converters.graph.Model`. Reader modules import their
framework lazily, so detecting a format costs nothing but a few bytes of I/O.
"""
from __future__ import annotations

import importlib
import os
from typing import Any

from ..errors import CorruptFile, TensorbridgeError, UnsupportedFormat
from ..graph import Model
from .detect import FAMILIES, detect
from .registry import READERS as _REGISTRY_READERS

__all__ = ["detect", "load", "FAMILIES", "READERS"]

# family -> "module:function" with signature (path, *, trust: bool, progress, **options) -> Model
READERS: dict[str, str] = dict(_REGISTRY_READERS)


def _noop_progress(fraction: float | None = None, message: str = "") -> None:
    pass


def load(path: str | os.PathLike, *, trust: bool = False, progress=None, **options: Any) -> Model:
    """Open any supported model file or SavedModel folder.

    ``trust=True`` allows executing code stored in the file (pickled modules, Keras Lambda layers);
    without it such files are read as data only or refused with a message saying what trust would do.
    Raises :class:`TensorbridgeError` subclasses with one-line messages.
    """
    path = os.fspath(path)
    family = detect(path)
    mod_name, fn_name = READERS[family].split(":")
    try:
        reader = getattr(importlib.import_module(mod_name), fn_name)
    except ImportError as exc:  # a missing framework
        raise UnsupportedFormat(f"{path}: reading {family} files needs {exc.name or exc}; "
                                f"install it (see README) and try again") from exc
    try:
        model = reader(path, trust=trust, progress=progress or _noop_progress, **options)
    except TensorbridgeError:
        raise
    except MemoryError as exc:
        raise CorruptFile(f"{path}: ran out of memory while reading it") from exc
    except Exception as exc:
        from ..errors import one_line
        raise CorruptFile(f"{path}: cannot read this {family} file ({one_line(exc)}); "
                          f"it may be damaged or truncated") from exc
    return model
