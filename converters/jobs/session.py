"""What this process started, as a whole: every running job and warm spare (ended at once on a signal),
every job folder it made (removed at the end of a CLI run), and where job folders live."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any
from .limits import keep_failed_jobs, keep_jobs, sweep_stale, write_owner

if TYPE_CHECKING:
    from .pool import WorkerPool
    from .process import Job


def jobs_root() -> Path:
    """Folder that holds one sub-folder per job (``$TENSORBRIDGE_JOBS`` or a temp folder)."""
    root = Path(os.environ.get("TENSORBRIDGE_JOBS") or Path(tempfile.gettempdir()) / f"tensorbridge-jobs-{os.getuid()}")
    root.mkdir(parents=True, exist_ok=True)
    return root


class Stopped(KeyboardInterrupt):
    """The process was told to stop (SIGTERM, SIGHUP) while jobs ran; they have been ended.

    A KeyboardInterrupt, so code that cancels its jobs on Ctrl-C does the same for it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"


# ---- what this process started: for ending everything at once and removing its folders -------------
_live: "weakref.WeakSet[Job]" = weakref.WeakSet()        # jobs whose worker may still run


_pools: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()


_made: list[list] = []    # [folder, state] in creation order; state: "job" | "failed" | "owned" (caller's)


_made_lock = threading.Lock()


def _register_folder(folder: Path, state: str) -> list:
    entry = [Path(folder), state]
    with _made_lock:
        _made.append(entry)
    write_owner(folder)
    return entry


def own_folder(folder: str | os.PathLike) -> None:
    """Register a work folder a caller made under :func:`jobs_root` (e.g. a comparison's), so the end of
    a CLI run removes it with the job folders (unless kept), and a later sweep knows its owner."""
    _register_folder(Path(folder), "owned")


def _snapshot(ws) -> list:
    for _ in range(5):
        try:
            return list(ws)
        except RuntimeError:  # another thread changed it meanwhile
            continue
    return []


def kill_all() -> None:
    """End every running job's process group and every warm spare of this process, at once (SIGKILL).

    Takes no locks: safe in a signal handler."""
    for job in _snapshot(_live):
        job.cancelled = True
        proc = job.proc
        if proc is not None and proc.returncode is None:
            _killpg(proc.pid)
    for pool in _snapshot(_pools):
        for sp in list(pool._spares.values()):
            _killpg(sp.proc.pid)


def _killpg(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_since(mark: int) -> None:
    """Remove the folders registered since ``mark`` (their jobs ended), unless the user keeps them."""
    if keep_jobs():
        return
    with _made_lock:
        entries = _made[mark:]
    for entry in entries:
        folder, state = entry
        if state in ("failed", "owned") and keep_failed_jobs():
            continue
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def cli_run(keep_failed: bool = False):
    """Wrap one command-line run: stale job folders (dead owners, over a day old) are swept first;
    SIGTERM and SIGHUP end the running jobs and raise :class:`Stopped`, SIGINT ends them and raises
    KeyboardInterrupt; at the end every job folder of the run is removed, except those of failed jobs
    with ``keep_failed`` (``--debug``), or all with ``TENSORBRIDGE_KEEP_JOBS=1``."""
    from . import limits

    old_keep = limits._keep_failed
    limits.set_keep_failed(keep_failed or old_keep)
    with _made_lock:
        mark = len(_made)
    try:
        sweep_stale(jobs_root())
    except OSError:
        pass
    installed: dict[int, Any] = {}
    stopping: list[int] = []

    def on_signal(signum, frame):
        kill_all()
        if stopping:  # a second signal while unwinding: the jobs are ended again, the unwinding goes on
            return
        stopping.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Stopped(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            try:
                installed[sig] = signal.signal(sig, on_signal)
            except (ValueError, OSError):
                pass
    try:
        yield
    finally:
        try:
            with _made_lock:
                mine = tuple(str(e[0]) for e in _made[mark:])

            def of_run(folder) -> bool:
                return any(str(folder) == m or str(folder).startswith(m + os.sep) for m in mine)

            left = [j for j in _snapshot(_live) if of_run(j.job_dir)]
            for job in left:
                job.cancelled = True
                if job.proc is not None and job.proc.returncode is None:
                    _killpg(job.proc.pid)
            for pool in _snapshot(_pools):
                for sp in list(pool._spares.values()):
                    if of_run(sp.job_dir):
                        _killpg(sp.proc.pid)
            for job in left:
                job._done.wait(5)
            _remove_since(mark)
        finally:
            for sig, handler in installed.items():
                try:
                    signal.signal(sig, handler)
                except (ValueError, OSError):
                    pass
            limits.set_keep_failed(old_keep)
