"""Jobs: long work (load, convert, run, compare, lay out) in a worker process.

A job is a fresh Python process (never a fork of the caller) in its own process group, started with
``python -m converters.jobs.worker JOB_DIR FD``. It reads ``params.json`` from its job folder, runs one
task from :data:`converters.jobs.tasks.TASKS`, and writes JSON-lines events to the pipe FD:

    {"event": "progress", "fraction": 0.4, "message": "parsing"}      fraction may be null
    {"event": "log", "message": "..."}
    {"event": "result", "result": {...}}                              exactly one of result / error
    {"event": "error", "message": "one line", "kind": "CorruptFile"}

Everything the task or its libraries print goes to ``JOB_DIR/log.txt`` (stdout and stderr), never to the
event channel. Big results are files in the job folder named by the result. Cancel ends the whole
process group (converters start children of their own). A worker that dies without a result — a signal,
out of memory, ``os._exit`` in a library — becomes an error for the caller, never a crash of the caller.

Lifetime: a worker dies with the process that started it (see :mod:`converters.jobs.worker`). Jobs
that open a user's file run under a time and memory budget (:mod:`converters.jobs.limits`); a job past
it is ended and fails with kind ``ResourceLimit``. Job folders are removed once the caller is done with
the result (:meth:`Job.cleanup`; :func:`run_job` removes the folder of a job that failed); a CLI run
wraps itself in :func:`cli_run`, which ends its jobs on SIGTERM/SIGINT/SIGHUP and removes every job
folder of the run at the end.
"""
from __future__ import annotations

import os
from typing import Any, Callable

from ..errors import ErrorKind
from .limits import Limits, keep_failed_jobs
from .pool import FAMILY_PRELOAD, WorkerPool, family_of
from .process import Event, Job, JobFailed
from .session import Stopped, cli_run, jobs_root, kill_all, own_folder

__all__ = ["Job", "JobFailed", "Event", "Limits", "Stopped", "WorkerPool", "FAMILY_PRELOAD", "cli_run", "family_of",
           "kill_all", "own_folder", "run_job", "jobs_root"]


def run_job(task: str, params: dict[str, Any], *, on_event: Callable[[Event], None] | None = None,
            timeout: float | None = None, job_dir: str | os.PathLike | None = None,
            limits: Limits | None = None) -> tuple[dict, Job]:
    """Run a task to completion in a worker; return (result, job). Ctrl-C cancels the worker.

    The caller calls ``job.cleanup()`` once it is done with the files the result names. A job that
    fails, is cancelled or crashes has its folder removed here, unless failed jobs are kept
    (``--debug``, ``TENSORBRIDGE_KEEP_JOBS=1``); the error's ``log_path`` is then None."""
    job = Job(task, params, on_event=on_event, job_dir=job_dir, limits=limits).start()
    try:
        try:
            result = job.wait(timeout)
        except TimeoutError:
            job.cancel(grace=0.5)
            job._done.wait(5)
            raise JobFailed(f"'{task}' did not finish within {timeout:g} s and was stopped", ErrorKind.TIMEOUT,
                            str(job.log_path)) from None
    except BaseException as exc:  # KeyboardInterrupt / Stopped included: nothing may keep running
        if not job.done:
            job.cancel(grace=0.5)
            job._done.wait(5)
        if job.done and not keep_failed_jobs() and job.cleanup() and isinstance(exc, JobFailed):
            exc.log_path = None
        raise
    return result, job
