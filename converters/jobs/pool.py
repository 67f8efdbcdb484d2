"""Warm workers: one pre-started process per framework family, which a job takes over."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from ..errors import TensorbridgeError
from .process import Event, Job, _cut_lifeline, _spawn_worker
from .session import _pools, _register_folder, jobs_root


@dataclass
class _Spare:
    job_dir: Path
    proc: subprocess.Popen
    rfd: int
    family: str
    entry: list | None = None

    def discard(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        _cut_lifeline(self.proc)
        try:
            os.close(self.rfd)
        except OSError:
            pass
        shutil.rmtree(self.job_dir, ignore_errors=True)


# Modules each framework family preloads in a warm worker.
FAMILY_PRELOAD: dict[str, list[str]] = {
    "onnx": ["numpy", "onnx", "converters.formats.onnx_reader"],
    # torch.export.load and torch.onnx.export import dynamo and the serializer lazily (~2 s): do it ahead
    "torch": ["numpy", "onnx", "torch", "torch.export.pt2_archive._package", "torch._export.serde.serialize"],
    "tf": ["numpy", "onnx", "tensorflow", "keras"],
}


def family_of(path_or_format: str) -> str:
    """Which warm worker suits a model: 'torch', 'tf' or 'onnx' (by detected format, else extension)."""
    from ..formats.registry import FAMILY_OF

    fmt = path_or_format
    if os.path.exists(path_or_format):
        try:
            from ..formats.detect import detect
            fmt = detect(path_or_format)
        except TensorbridgeError:
            return "onnx"
    return FAMILY_OF.get(fmt, "onnx")


class WorkerPool:
    """Warm workers: one pre-started process per framework family, each used for exactly one job.

    Every job still gets a fresh process (crash isolation, cancel = end it); the pool only starts the
    next one ahead of time, with its framework imported, so a job does not wait for ``import torch``.
    """

    def __init__(self, families: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self.env = env
        self._spares: dict[str, _Spare] = {}
        self._lock = threading.Lock()
        self._closed = False
        _pools.add(self)
        for f in families:
            self.warm(f)

    def warm(self, family: str) -> None:
        """Make sure a spare worker for ``family`` exists (starts one in the background)."""
        with self._lock:
            if self._closed:
                return
            sp = self._spares.get(family)
            if sp is not None and sp.proc.poll() is None:
                return
            job_dir = Path(tempfile.mkdtemp(prefix=f"warm-{family}-", dir=jobs_root()))
            entry = _register_folder(job_dir, "job")
            proc, rfd = _spawn_worker(job_dir, self.env, FAMILY_PRELOAD.get(family, ["numpy"]))
            self._spares[family] = _Spare(job_dir, proc, rfd, family, entry)

    def start(self, task: str, params: dict[str, Any], *, family: str = "onnx",
              on_event: Callable[[Event], None] | None = None) -> Job:
        """Start ``task`` on the warm worker of ``family`` (or a fresh one) and warm the next."""
        with self._lock:
            spare = self._spares.pop(family, None)
        job = Job(task, params, on_event=on_event, env=self.env,
                  job_dir=spare.job_dir if spare is not None else None)
        job.start(spare)
        self.warm(family)
        return job

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spares, self._spares = list(self._spares.values()), {}
        for sp in spares:
            sp.discard()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
