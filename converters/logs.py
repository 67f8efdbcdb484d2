"""Logging for both processes: the window (and the CLI) log to a file in the user's state folder; a
worker's log records go to its job log (``JOB_DIR/log.txt``, where its stdout and stderr already go).

``TENSORBRIDGE_LOG_LEVEL`` (DEBUG, INFO, WARNING …; default INFO) sets the level, ``TENSORBRIDGE_LOG_DIR``
the folder (default ``$XDG_STATE_HOME/tensorbridge`` or ``~/.local/state/tensorbridge``).
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys

__all__ = ["log_dir", "setup_file_logging", "setup_worker_logging"]

_FORMAT = "%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"


def log_dir() -> str:
    d = os.environ.get("TENSORBRIDGE_LOG_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"), "tensorbridge")
    return d


def _level() -> int:
    return getattr(logging, os.environ.get("TENSORBRIDGE_LOG_LEVEL", "INFO").upper(), logging.INFO)


def setup_file_logging(name: str = "window") -> str | None:
    """Log ``tensorbridge.*`` records to ``<log_dir>/<name>.log`` (rotated at 2 MB, 3 kept); returns the
    path, or None when the folder cannot be written (logging then stays off, silently)."""
    path = os.path.join(log_dir(), f"{name}.log")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2 << 20, backupCount=3, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger("tensorbridge")
    root.setLevel(_level())
    root.addHandler(handler)
    return path


def setup_worker_logging() -> None:
    """In a worker: ``tensorbridge.*`` records to stderr, which is the job's log file."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger("tensorbridge")
    root.setLevel(_level())
    root.addHandler(handler)
