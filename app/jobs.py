"""Qt bridge over :mod:`converters.jobs`: a worker-process job whose events arrive as Qt signals.

The job's reader thread (a plain Python thread owned by :class:`converters.jobs.Job`) never touches
widgets: it emits an internal signal that is connected with a queued connection, so every public
signal below is delivered in the GUI thread.
"""
from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot

from converters.errors import ErrorKind
from converters.errors import TensorbridgeError
from converters.jobs import Event, Job

__all__ = ["QtJob", "JobRegistry", "window_folder"]

_ids = itertools.count(1)



def show_fraction(bar, fraction) -> None:
    """Show a job's progress on a QProgressBar: busy (no end) when the fraction is unknown."""
    if fraction is None:
        bar.setRange(0, 0)
    else:
        bar.setRange(0, 1000)
        bar.setValue(int(max(0.0, min(1.0, float(fraction))) * 1000))


class QtJob(QObject):
    """One task in a worker process, reported through signals in the GUI thread.

    Signals: ``progress(fraction: float | None, message: str)``, ``log(str)``, ``finished(dict)`` (the
    task's result), ``failed(message: str, kind: str)`` (kind is the worker's error class name, e.g.
    ``TrustRequired``, ``CorruptFile``, ``JobCancelled``, ``WorkerCrashed``), ``ended()`` after either.
    """

    progress = Signal(object, str)
    log = Signal(str)
    finished = Signal(dict)
    failed = Signal(str, str)
    ended = Signal()
    overview = Signal(str)  # the ``open`` task's early, structure-only view pack (folder path)
    _event = Signal(object)

    def __init__(self, task: str, params: dict[str, Any], *, title: str = "", parent: QObject | None = None):
        super().__init__(parent)
        self.id = next(_ids)
        self.task = task
        self.params = params
        self.title = title or task
        self.state = "pending"          # pending | running | done | failed | cancelled
        self.fraction: float | None = None
        self.message = ""
        self.result: dict | None = None
        self.error: str | None = None
        self.error_kind: str | None = None
        self.created = time.time()
        self.job: Job | None = None
        self._log_cache: str | None = None   # the log of a failed job, read before its folder goes
        self.kept = False                    # the user chose Keep: its folders outlive the window
        self.result_folder: str | None = None  # a folder the window made for the result (set by the registry)
        self._event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)

    # -- control -------------------------------------------------------------------------------------
    def start(self, pool=None, family: str | None = None) -> "QtJob":
        """Start the worker: a warm one from ``pool`` (a :class:`converters.jobs.WorkerPool`) for
        ``family`` when given, else a fresh process."""
        self.state = "running"
        # on_event runs in the reader thread: only emit, never touch state that widgets read.
        try:
            if pool is not None and family:
                self.job = pool.start(self.task, self.params, family=family, on_event=self._event.emit)
            else:
                self.job = Job(self.task, self.params, on_event=self._event.emit)
                self.job.start()
        except OSError as exc:  # could not even start a process (fd limit, missing interpreter)
            self._event.emit(Event("error", {"message": f"could not start a worker: {exc}", "kind": ErrorKind.WORKER_CRASHED}))
            self._event.emit(Event("end", {}))
        except TensorbridgeError as exc:  # a bad setting, e.g. TENSORBRIDGE_LOAD_MEMORY=lots
            self._event.emit(Event("error", {"message": exc.message, "kind": type(exc).__name__}))
            self._event.emit(Event("end", {}))
        return self

    def cancel(self) -> None:
        """End the worker (and its children). The job then fails with kind ``JobCancelled``."""
        if self.job is not None and self.state == "running":
            self.job.cancel()

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def log_path(self) -> str | None:
        if self.job is None or not self.job.log_path.exists():
            return None
        return str(self.job.log_path)

    @property
    def elapsed(self) -> float | None:
        return self.job.elapsed if self.job is not None else None

    def log_text(self, limit: int = 200_000) -> str:
        """The worker's captured stdout/stderr (the last ``limit`` characters)."""
        if self.job is None:
            return ""
        if self._log_cache is not None and not self.job.log_path.exists():
            return self._log_cache[-limit:]
        try:
            with open(self.job.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-limit:].decode("utf-8", "replace")

    # -- events (GUI thread) -------------------------------------------------------------------------
    @Slot(object)
    def _on_event(self, ev: Event) -> None:
        d = ev.data
        if ev.kind == "progress":
            self.fraction = d.get("fraction")
            self.message = d.get("message") or self.message
            self.progress.emit(self.fraction, self.message)
        elif ev.kind == "log":
            self.log.emit(str(d.get("message", "")))
        elif ev.kind == "overview" and d.get("pack_dir"):
            self.overview.emit(str(d["pack_dir"]))
        elif ev.kind == "result":
            self.result = d.get("result") or {}
        elif ev.kind == "error":
            self.error = d.get("message") or "the job failed"
            self.error_kind = d.get("kind") or "Error"
        elif ev.kind == "end":
            if self.error is not None:
                self.state = "cancelled" if self.error_kind == ErrorKind.CANCELLED else "failed"
                self.failed.emit(self.error, self.error_kind)
            elif self.result is not None:
                self.state = "done"
                self.fraction = 1.0
                self.finished.emit(self.result)
            else:  # cannot happen with the worker protocol; keep the window honest anyway
                self.state, self.error, self.error_kind = "failed", "the job ended without a result", ErrorKind.WORKER_CRASHED
                self.failed.emit(self.error, self.error_kind)
            self.ended.emit()
            self.release(finished=True)

    def release(self, finished: bool = False) -> None:
        """Remove the job folder once nothing reads it (its log is kept in memory for the log view): at
        the end of the job unless its result names a file in it; else when the registry closes."""
        job = self.job
        if job is None or not job.done or self.kept:
            return
        if finished and self.state == "done" and job.result_uses_folder():
            return  # a tab reads the view pack / model.json in there while it is open
        if self._log_cache is None:
            self._log_cache = self.log_text()
        job.cleanup()


def window_folder(params: dict[str, Any]) -> str | None:
    """The result folder the window made for a job under the jobs root (a comparison's ``save_dir``), or
    None: a folder the user chose (``--save-dir``, a Save to… field) is the user's and is never removed."""
    d = params.get("save_dir")
    if not isinstance(d, str) or not d:
        return None
    from converters.jobs import jobs_root

    p = os.path.realpath(d)
    return p if os.path.dirname(p) == os.path.realpath(jobs_root()) else None


class JobRegistry(QObject):
    """Every job the window started, for the jobs panel. ``added(QtJob)`` when one starts.

    With warm workers on (:meth:`use_warm_workers`), each job takes a pre-started worker of its model's
    framework family (torch / tf / onnx) and the next one is started in the background, so the second
    job of a family does not pay the framework's import time. Every job still has a process of its own.

    Folders: a job's own folder goes when it ends (or, when its result names files in it, when the
    registry closes). A result folder the window made for a job (:func:`window_folder`: a comparison's
    arrays, per-layer tensors and report) is removed when the job fails or is cancelled, when a later job
    of the same task replaces the result it holds, when its view calls :meth:`release`, and at
    :meth:`close` (at the latest when the application quits); never while a running job reads it, and
    never once the user chose :meth:`keep`. ``folderRemoved(path)`` after each removal.
    """

    added = Signal(object)
    folderRemoved = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.jobs: list[QtJob] = []
        self.pool = None
        self._folders: dict[str, QtJob] = {}    # window-made result folder -> the job that writes it
        self._shown: dict[str, str] = {}        # task -> the folder of its latest result (what a view shows)
        self._kept: set[str] = set()
        self._waiting: set[str] = set()         # released while a running job still read them
        self.closed = False
        import threading

        from converters.jobs import jobs_root
        from converters.jobs.limits import sweep_stale

        # folders that windows or runs which died left behind, over a day old
        threading.Thread(target=lambda: sweep_stale(jobs_root()), daemon=True, name="sweep-jobs").start()
        from PySide6.QtCore import QCoreApplication

        app = QCoreApplication.instance()
        if app is not None:  # a window closed some other way than its close event still cleans up
            app.aboutToQuit.connect(self.close)

    def use_warm_workers(self, families: tuple[str, ...] = ("onnx",)) -> None:
        """Start warm workers for ``families`` now (in the background) and keep one per family used."""
        from converters.jobs import WorkerPool

        if self.pool is None:
            self.pool = WorkerPool()
        for f in families:
            self.pool.warm(f)

    def _family(self, params: dict[str, Any]) -> str | None:
        if self.pool is None:
            return None
        src = params.get("path") or params.get("src")
        if not isinstance(src, str):
            return None
        from converters.jobs import family_of

        try:
            return family_of(src)
        except Exception:  # detection problems are reported by the job itself
            return None

    def run(self, task: str, params: dict[str, Any], *, title: str = "") -> QtJob:
        """Create, register and start a job."""
        job = QtJob(task, params, title=title, parent=self)
        folder = window_folder(params)
        if folder is not None:
            from converters.jobs.limits import write_owner

            job.result_folder = folder
            self._folders[folder] = job
            if os.path.isdir(folder):
                write_owner(Path(folder))  # a window that dies leaves it to the next window's sweep
            old = self._shown.pop(task, None)
            if old is not None and old != folder:
                self.release(old)  # its view shows this job's result from now on
            self._shown[task] = folder
        self.jobs.append(job)
        self.added.emit(job)
        job.ended.connect(lambda j=job: self._job_ended(j))
        job.start(self.pool, self._family(params))
        return job

    def _job_ended(self, job: QtJob) -> None:
        folder = job.result_folder
        if folder is not None and job.state != "done":
            if self._shown.get(job.task) == folder:
                del self._shown[job.task]
            self.release(folder)   # a failed or cancelled comparison: nothing shows its files
        for f in list(self._waiting):
            self.release(f)

    # -- result folders ------------------------------------------------------------------------------
    def folder_of(self, job: QtJob) -> str | None:
        """Where ``job``'s files are: its result folder when the window made one, else its job folder."""
        if job.result_folder is not None:
            return job.result_folder
        return str(job.job.job_dir) if job.job is not None else None

    def keep(self, job_or_folder: "QtJob | str") -> str | None:
        """The user chose Keep: the job's folders (or that folder) are never removed by the window.
        Returns the folder the user will find the files in."""
        if isinstance(job_or_folder, QtJob):
            job = job_or_folder
            job.kept = True
            folder = self.folder_of(job)
            if job.result_folder is not None:
                self._kept.add(job.result_folder)
            return folder
        folder = os.path.realpath(job_or_folder)
        self._kept.add(folder)
        owner = self._folders.get(folder)
        if owner is not None:
            owner.kept = True
        return folder

    def is_kept(self, folder: str) -> bool:
        return os.path.realpath(folder) in self._kept

    def release(self, folder: str, *, force: bool = False) -> bool:
        """The view that showed ``folder`` is done with it: remove it now, or once no running job reads it
        (a layer's tensors, a reduction reusing the comparison; ``force``: now, the jobs are ended). A
        kept folder, one the window did not make, and every folder under ``TENSORBRIDGE_KEEP_JOBS=1``
        stay. Returns whether it is gone."""
        from converters.jobs.limits import keep_jobs

        folder = os.path.realpath(folder)
        if folder in self._kept or folder not in self._folders or keep_jobs():
            return not os.path.exists(folder)
        if not force and any(_reads(j, folder) for j in self.jobs if _alive(j)):
            self._waiting.add(folder)
            return False
        self._waiting.discard(folder)
        shutil.rmtree(folder, ignore_errors=True)
        gone = not os.path.exists(folder)
        if gone:
            del self._folders[folder]
            for t, f in list(self._shown.items()):
                if f == folder:
                    del self._shown[t]
            self.folderRemoved.emit(folder)
        return gone

    def close(self) -> None:
        """Cancel running jobs, end the warm workers and remove every job folder and every result folder
        the window made, except those the user kept. Safe to call more than once."""
        running = [j for j in self.running() if j.job is not None]
        self.cancel_all()
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        for j in running:
            j.job._done.wait(3)
        for j in self.jobs:
            j.release()
        for f in list(self._folders):
            self.release(f, force=True)  # the workers were ended above
        self.closed = True

    def running(self) -> list[QtJob]:
        return [j for j in self.jobs if j.running]

    def cancel_all(self) -> None:
        for j in self.running():
            j.cancel()


def _alive(job: QtJob) -> bool:
    """Whether ``job``'s worker may still read or write files (its process has not ended)."""
    if job.job is None:
        return job.state in ("pending", "running")
    return not job.job.done


def _reads(job: QtJob, folder: str) -> bool:
    """Whether a job's params name ``folder`` or a file in it (other than as its own result)."""
    if job.result_folder == folder:
        return True
    for v in job.params.values():
        if isinstance(v, str) and v and (os.path.realpath(v) + os.sep).startswith(folder + os.sep):
            return True
    return False
