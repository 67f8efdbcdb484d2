"""Budgets of jobs that open a user's file, whether to keep job folders, and the sweep of stale ones.

A job that reads a user's file ("load", "open", "tensor", "attach_architecture") gets a wall-clock
limit and a memory limit by default, so a tiny hostile file can neither hang nor exhaust the machine:

* ``TENSORBRIDGE_LOAD_TIMEOUT`` — seconds (default 300); ``0``/``off`` for none.
* ``TENSORBRIDGE_LOAD_MEMORY``  — bytes with a unit, e.g. ``6G``, ``512M`` (default: the smaller of
  8 GiB and half of the physical memory); ``0``/``off`` for none.

The worker enforces memory with ``RLIMIT_DATA`` (an allocation past it fails with MemoryError, which the
worker reports as :class:`converters.errors.ResourceLimit`), and the parent samples the anonymous memory
of the worker's whole process group (converters start programs of their own) and ends the group when it
goes past the limit or the time runs out.

Job folders are removed after each job unless ``TENSORBRIDGE_KEEP_JOBS=1`` (or the CLI's ``--debug``,
which keeps the folders of failed jobs so their logs can be read).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import TensorbridgeError

__all__ = ["Limits", "LOAD_TASKS", "limits_for", "load_timeout", "load_memory", "parse_size", "fmt_size",
           "keep_jobs", "keep_failed_jobs", "set_keep_failed", "write_owner", "sweep_stale"]

# Tasks that open a user's file, and the param that names it.
LOAD_TASKS: dict[str, str] = {"load": "path", "open": "path", "tensor": "path", "attach_architecture": "path"}

DEFAULT_LOAD_TIMEOUT = 300.0
GiB = 1 << 30
_OFF = ("", "0", "off", "none", "no", "unlimited")


@dataclass(frozen=True)
class Limits:
    """A job's budget: ``timeout`` seconds and ``memory`` bytes (None: no limit); ``file`` is what the
    job reads (named in the error), ``what`` the activity ("reading it")."""

    timeout: float | None = None
    memory: int | None = None
    file: str | None = None
    what: str = "reading it"

    def __bool__(self) -> bool:
        return self.timeout is not None or self.memory is not None

    def to_dict(self) -> dict:
        return {"timeout": self.timeout, "memory": self.memory, "file": self.file, "what": self.what}

    def time_message(self) -> str:
        return (f"{self.file or 'the job'}: {self.what} took longer than {self.timeout:g} s (the load time limit); "
                f"if the file is genuine, raise it with TENSORBRIDGE_LOAD_TIMEOUT (seconds, 0 for none)")

    def memory_message(self) -> str:
        return memory_message(self.file, self.memory, self.what)


def memory_message(file: str | None, memory: int | None, what: str = "reading it") -> str:
    return (f"{file or 'the job'}: {what} needed more than {fmt_size(memory or 0)} of memory (the load memory "
            f"limit); if the file is genuine, raise it with TENSORBRIDGE_LOAD_MEMORY (e.g. 16G, 0 for none)")


def parse_size(text: str) -> int:
    """``6G``, ``6GiB``, ``512M``, ``1.5g``, ``123456`` -> bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(text), re.IGNORECASE)
    if not m:
        raise ValueError(text)
    return int(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


def fmt_size(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def load_timeout() -> float | None:
    text = os.environ.get("TENSORBRIDGE_LOAD_TIMEOUT")
    if text is None:
        return DEFAULT_LOAD_TIMEOUT
    if text.strip().lower() in _OFF:
        return None
    try:
        value = float(text)
    except ValueError:
        raise TensorbridgeError(f"TENSORBRIDGE_LOAD_TIMEOUT={text!r}: give a number of seconds, e.g. 600 "
                                f"(0 for no limit)") from None
    return value if value > 0 else None


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 16 * GiB


def default_load_memory() -> int:
    return min(8 * GiB, _physical_memory() // 2)


def load_memory() -> int | None:
    text = os.environ.get("TENSORBRIDGE_LOAD_MEMORY")
    if text is None:
        return default_load_memory()
    if text.strip().lower() in _OFF:
        return None
    try:
        value = parse_size(text)
    except ValueError:
        raise TensorbridgeError(f"TENSORBRIDGE_LOAD_MEMORY={text!r}: give a size such as 6G or 512M "
                                f"(0 for no limit)") from None
    return value or None


def limits_for(task: str, params: dict) -> Limits:
    """The default budget of ``task``: the load limits for tasks that open a user's file, else none."""
    key = LOAD_TASKS.get(task)
    if key is None:
        return Limits()
    file = params.get(key)
    return Limits(timeout=load_timeout(), memory=load_memory(), file=str(file) if file else None)


# ---- keeping job folders ---------------------------------------------------------------------------
_keep_failed = False


def keep_jobs() -> bool:
    """Whether the user asked to keep every job folder (``TENSORBRIDGE_KEEP_JOBS=1``)."""
    return os.environ.get("TENSORBRIDGE_KEEP_JOBS", "").strip().lower() not in _OFF


def keep_failed_jobs() -> bool:
    """Whether folders of failed jobs are kept (their logs are wanted: ``--debug``, or keep_jobs())."""
    return _keep_failed or keep_jobs()


def set_keep_failed(on: bool) -> None:
    global _keep_failed
    _keep_failed = bool(on)


# ---- stale folders ---------------------------------------------------------------------------------
OWNER_FILE = ".owner.json"


def _process_start(pid: int) -> float | None:
    try:
        import psutil
        return psutil.Process(pid).create_time()
    except Exception:
        return None


_me: tuple[int, float | None] | None = None


def write_owner(folder: Path) -> None:
    """Record which process owns a job folder, so a later sweep can tell whether that process is gone."""
    global _me
    if _me is None or _me[0] != os.getpid():
        _me = (os.getpid(), _process_start(os.getpid()))
    try:
        (Path(folder) / OWNER_FILE).write_text(json.dumps({"pid": _me[0], "started": _me[1]}))
    except OSError:
        pass


def _owner_alive(folder: Path) -> bool | None:
    try:
        d = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
    started = _process_start(int(d.get("pid", -1)))
    if started is None:
        return False
    return d.get("started") is None or abs(started - float(d["started"])) < 1.0


def sweep_stale(root: Path, max_age: float = 86400.0, unowned_age: float = 7 * 86400.0) -> int:
    """Remove job folders under ``root`` whose owning process is gone and that are older than
    ``max_age`` seconds (folders with no owner record: older than ``unowned_age``). Returns how many."""
    now = time.time()
    removed = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for e in entries:
        try:
            if not e.is_dir(follow_symlinks=False):
                continue
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age < max_age:
            continue
        alive = _owner_alive(Path(e.path))
        if alive or (alive is None and age < unowned_age):
            continue
        shutil.rmtree(e.path, ignore_errors=True)
        removed += 1
    return removed
