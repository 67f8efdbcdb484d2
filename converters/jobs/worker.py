"""Worker process entry point: ``python -m converters.jobs.worker JOB_DIR EVENT_FD``.

Runs exactly one task and reports on the event FD. See :mod:`converters.jobs` for the protocol.

A worker never outlives the process that started it (``TENSORBRIDGE_PARENT_PID``), in three ways that
each end its whole process group (itself and every program a converter started):

* the lifeline: a ``/bin/sh`` helper in the group blocks reading a pipe whose other end only the parent
  holds; when the parent dies the read ends and the helper kills the group. It needs no Python, so it
  works while the worker's main thread holds the GIL in a long C call;
* the kernel sends the worker SIGHUP when its parent dies (``PR_SET_PDEATHSIG``). It sends it when the
  *thread* that spawned the worker ends, too, so the handler acts only once the parent process is gone;
* a watchdog thread polls ``os.getppid()``.
"""
from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import threading
import traceback
from ..errors import ErrorKind


class Context:
    """What a task gets besides its params: a place for files and a way to report progress."""

    def __init__(self, job_dir: str, fd: int):
        self.job_dir = job_dir
        self._out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def send(self, event: str, **data) -> None:
        self._out.write(json.dumps({"event": event, **data}, default=str) + "\n")
        self._out.flush()

    def progress(self, fraction: float | None = None, message: str = "") -> None:
        """Report progress: ``fraction`` in [0, 1] or None when unknown, and what is happening now."""
        self.send("progress", fraction=None if fraction is None else float(fraction), message=message)

    def log(self, message: str) -> None:
        self.send("log", message=message)

    def path(self, name: str) -> str:
        return os.path.join(self.job_dir, name)


def _be_the_oom_victim() -> None:
    # The window must outlive any worker: make this process the first the kernel kills when memory runs out.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


# ---- never outlive the parent ------------------------------------------------------------------------
_PR_SET_PDEATHSIG = 1
_parent_pid: int | None = None


def _parent_gone() -> bool:
    return _parent_pid is not None and os.getppid() != _parent_pid


def _end_group() -> None:
    """Kill every process this worker started, then the worker's own process group (itself included)."""
    try:
        import psutil  # children that started a session of their own have left the group
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
    except Exception:
        pass
    try:
        if os.getpgid(0) == os.getpid():  # started with start_new_session: the group is this job's own
            os.killpg(0, signal.SIGKILL)
    except OSError:
        pass
    os._exit(137)


def _on_parent_death_signal(signum, frame) -> None:
    if _parent_gone():
        _end_group()
    # else: only the parent's spawning thread ended; the kernel re-arms the signal for the next parent


def _watch_parent(interval: float) -> None:
    import time

    while True:
        if _parent_gone():
            _end_group()
        time.sleep(interval)


def _start_lifeline_helper() -> None:
    fd = os.environ.pop("TENSORBRIDGE_LIFELINE_FD", None)
    if not fd:
        return
    try:
        fd_n = int(fd)
        if os.path.exists("/bin/sh") and os.getpgid(0) == os.getpid():
            import subprocess

            # "kill 0": this process group; the helper is in it, so it ends with the rest
            subprocess.Popen(["/bin/sh", "-c", "read _ ; kill -KILL 0"], stdin=fd_n, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, close_fds=True)
        os.close(fd_n)
    except (ValueError, OSError):
        pass


def guard_parent(interval: float = 0.25) -> None:
    """Make this process (and its group) die with the process named by ``TENSORBRIDGE_PARENT_PID``."""
    global _parent_pid
    _start_lifeline_helper()
    try:
        _parent_pid = int(os.environ["TENSORBRIDGE_PARENT_PID"])
    except (KeyError, ValueError):
        _parent_pid = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            signal.signal(signal.SIGHUP, _on_parent_death_signal)
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGHUP), 0, 0, 0)
        except (OSError, AttributeError, ValueError):
            pass  # the watchdog below still covers it
    if _parent_gone():  # it died before the signal was armed
        _end_group()
    threading.Thread(target=_watch_parent, args=(interval,), daemon=True, name="parent-watchdog").start()


# ---- budgets --------------------------------------------------------------------------------------------
_OOM_TEXT = ("can't allocate memory", "cannot allocate memory", "out of memory", "oom when allocating",
             "std::bad_alloc")


def _out_of_memory(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, MemoryError):
            return True
        text = str(exc).lower()
        if any(t in text for t in _OOM_TEXT):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _apply_limits(limits: dict | None) -> None:
    memory = (limits or {}).get("memory")
    if memory:
        import resource

        try:
            _, hard = resource.getrlimit(resource.RLIMIT_DATA)
            soft = int(memory) if hard == resource.RLIM_INFINITY else min(int(memory), hard)
            resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
        except (ValueError, OSError):
            pass  # the parent's memory watchdog still ends the job


def main(argv: list[str]) -> int:
    job_dir, fd = argv[1], int(argv[2])
    guard_parent()
    ctx = Context(job_dir, fd)
    from ..logs import setup_worker_logging

    setup_worker_logging()
    _be_the_oom_victim()
    limits: dict | None = None
    if len(argv) > 4 and argv[3] == "--wait":
        # A warm spare: import the framework now, then wait until a job is handed over.
        for mod in filter(None, argv[4].split(",")):
            try:
                importlib.import_module(mod)
            except Exception as exc:  # the job itself will report a missing framework properly
                print(f"preloading {mod} failed: {exc}", file=sys.stderr)
        if sys.stdin.readline().strip() != "go":
            return 0
    try:
        with open(os.path.join(job_dir, "params.json")) as f:
            spec = json.load(f)
        limits = spec.get("limits")
        _apply_limits(limits)
        from .tasks import resolve

        fn = resolve(spec["task"])
        result = fn(spec.get("params") or {}, ctx)
        ctx.send("result", result=result if result is not None else {})
        return 0
    except BaseException as exc:  # SystemExit from libraries included: it must become an error event
        from ..errors import TensorbridgeError, one_line

        if not isinstance(exc, TensorbridgeError):
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        kind, message = type(exc).__name__, None
        if limits and limits.get("memory") and kind != ErrorKind.RESOURCE_LIMIT and _out_of_memory(exc):
            from .limits import memory_message

            kind = ErrorKind.RESOURCE_LIMIT
            message = memory_message(limits.get("file"), limits.get("memory"), limits.get("what") or "reading it")
        ctx.send("error", message=message or one_line(exc), kind=kind)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    code = main(sys.argv)
    # Skip interpreter teardown: TF/torch atexit handlers can hang or crash after the result is sent.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
