"""One job in one worker process: spawning it (its own process group, its environment, the lifeline),
reading its events, its budgets, cancelling it, and what its end means."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator
from ..errors import ErrorKind
from ..errors import JobCancelled, TensorbridgeError
from .limits import Limits, keep_jobs, limits_for
from .session import _killpg, _live, _register_folder, jobs_root

if TYPE_CHECKING:
    from .pool import _Spare


_PKG_ROOT = str(Path(__file__).resolve().parents[2])


class JobFailed(TensorbridgeError):
    """A job ended with an error; ``kind`` is the error class name from the worker."""

    def __init__(self, message: str, kind: str = "Error", log_path: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.log_path = log_path


@dataclass
class Event:
    kind: str
    data: dict = field(default_factory=dict)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except (ValueError, AttributeError):
        return f"signal {-code}"


class Job:
    """One task in one worker process.

    >>> job = Job("load", {"path": "model.onnx"}); job.start()
    >>> for ev in job.events(): print(ev)      # progress / log until result or error
    >>> job.result                             # dict, or job.error (one line)

    ``on_event`` (optional) is called from a reader thread for every event; ``events()`` yields them in
    the caller's thread instead. Use one of the two.

    ``limits``: the job's budget (:class:`converters.jobs.limits.Limits`); by default the load limits
    for tasks that open a user's file (:data:`converters.jobs.limits.LOAD_TASKS`), none for the others.
    A job past its budget is ended and fails with kind ``ResourceLimit``.
    """

    def __init__(self, task: str, params: dict[str, Any], *, job_dir: str | os.PathLike | None = None,
                 on_event: Callable[[Event], None] | None = None, env: dict[str, str] | None = None,
                 limits: Limits | None = None):
        self.task = task
        self.params = params
        self.limits = limits if limits is not None else limits_for(task, params)
        self._entry: list | None = None
        if job_dir:
            self.job_dir = Path(job_dir)
        else:
            self.job_dir = Path(tempfile.mkdtemp(prefix=f"{task.rpartition(':')[2]}-", dir=jobs_root()))
            self._entry = _register_folder(self.job_dir, "job")
        self.job_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.job_dir / "log.txt"
        self.on_event = on_event
        self.env = env
        self.result: dict | None = None
        self.error: str | None = None
        self.error_kind: str | None = None
        self.progress: float | None = None
        self.message = ""
        self.proc: subprocess.Popen | None = None
        self.cancelled = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._done = threading.Event()
        self._reader: threading.Thread | None = None
        self._limit_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def _spec(self) -> str:
        spec: dict[str, Any] = {"task": self.task, "params": self.params}
        if self.limits:
            spec["limits"] = self.limits.to_dict()
        return json.dumps(spec)

    def start(self, spare: "_Spare | None" = None) -> "Job":
        """Start the worker; with ``spare``, hand the task to that pre-started (warm) worker instead."""
        if spare is not None and spare.proc.poll() is None:
            self.job_dir, self.log_path = spare.job_dir, spare.job_dir / "log.txt"
            self._entry = spare.entry
            (self.job_dir / "params.json").write_text(self._spec())
            self.proc, rfd = spare.proc, spare.rfd
            try:
                spare.proc.stdin.write(b"go\n")
                spare.proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass  # it died while waiting: the reader reports that as a crash
        else:
            if spare is not None:
                spare.discard()
                if self.job_dir == spare.job_dir:  # that folder went with the dead spare
                    self.job_dir = Path(tempfile.mkdtemp(prefix=f"{self.task.rpartition(':')[2]}-", dir=jobs_root()))
                    self.log_path = self.job_dir / "log.txt"
                    self._entry = _register_folder(self.job_dir, "job")
            (self.job_dir / "params.json").write_text(self._spec())
            self.proc, rfd = _spawn_worker(self.job_dir, self.env)
        self.started_at = time.monotonic()
        _live.add(self)
        self._reader = threading.Thread(target=self._read, args=(rfd,), daemon=True,
                                        name=f"job-{self.task}-reader")
        self._reader.start()
        if self.limits:
            threading.Thread(target=self._watch, daemon=True, name=f"job-{self.task}-budget").start()
        return self

    def _watch(self) -> None:
        """Enforce the budget from outside: wall-clock time, and the memory of the whole process group."""
        lim, proc = self.limits, self.proc
        if proc is None:
            return
        interval = 0.2
        while not self._done.wait(interval):
            if lim.timeout is not None and time.monotonic() - (self.started_at or 0) > lim.timeout:
                self._stop_for(lim.time_message())
                return
            if lim.memory is not None and _group_memory(proc.pid) > lim.memory:
                self._stop_for(lim.memory_message())
                return

    def _stop_for(self, message: str) -> None:
        self._limit_error = message
        if self.proc is not None and self.proc.returncode is None:
            _killpg(self.proc.pid)

    def _read(self, rfd: int) -> None:
        got_final = False
        with os.fdopen(rfd, "rb") as pipe:
            for raw in pipe:
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                kind = msg.pop("event", "log")
                if kind == "result":
                    self.result = msg.get("result") or {}
                    got_final = True
                elif kind == "error":
                    self.error = msg.get("message") or "the job failed"
                    self.error_kind = msg.get("kind") or "Error"
                    got_final = True
                elif kind == "progress":
                    self.progress = msg.get("fraction")
                    self.message = msg.get("message") or self.message
                self._emit(Event(kind, msg))
        rc = self.proc.wait() if self.proc else None
        _cut_lifeline(self.proc)
        self.ended_at = time.monotonic()
        if self._limit_error and not got_final:
            self.error, self.error_kind = self._limit_error, ErrorKind.RESOURCE_LIMIT
            self._emit(Event("error", {"message": self.error, "kind": self.error_kind}))
        elif self.cancelled and not got_final:
            self.error, self.error_kind = "cancelled", ErrorKind.CANCELLED
            self._emit(Event("error", {"message": self.error, "kind": self.error_kind}))
        elif not got_final:
            self.error_kind = ErrorKind.WORKER_CRASHED
            if rc is not None and rc < 0:
                sig = _signal_name(rc)
                hint = " (likely out of memory)" if rc == -signal.SIGKILL else ""
                self.error = f"the worker process died from {sig}{hint} while running '{self.task}'"
            else:
                self.error = f"the worker process exited with code {rc} without a result while running '{self.task}'"
            tail = self.log_tail(1)
            if self.limits.memory and rc is not None and rc in (-signal.SIGABRT, -signal.SIGKILL) \
                    and any(t in self.log_tail(5).lower() for t in ("bad_alloc", "out of memory", "allocate memory")):
                self.error_kind, self.error = ErrorKind.RESOURCE_LIMIT, self.limits.memory_message()
            elif tail:
                self.error += f"; last log line: {tail.strip()[:200]}"
            self._emit(Event("error", {"message": self.error, "kind": self.error_kind}))
        if self.error is not None and self._entry is not None:
            self._entry[1] = "failed"
        _live.discard(self)
        self._done.set()
        self._emit(Event("end", {"returncode": rc}))

    def _emit(self, ev: Event) -> None:
        with self._cond:
            self._events.append(ev)
            self._cond.notify_all()
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:  # a listener's bug must not kill the reader thread
                import traceback
                traceback.print_exc()

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Yield events as they arrive, ending after the final 'end' event."""
        i = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                while i >= len(self._events):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return
                    self._cond.wait(remaining if remaining is not None else 0.5)
                ev = self._events[i]
            i += 1
            yield ev
            if ev.kind == "end":
                return

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def ok(self) -> bool:
        return self.done and self.error is None and self.result is not None

    def wait(self, timeout: float | None = None) -> dict:
        """Block until the job ends; return its result or raise :class:`JobFailed`."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job '{self.task}' still running after {timeout} s")
        if self.error is not None:
            if self.error_kind == ErrorKind.CANCELLED:
                raise JobCancelled(self.error)
            raise JobFailed(self.error, self.error_kind or "Error", str(self.log_path))
        return self.result or {}

    def cancel(self, grace: float = 2.0) -> None:
        """End the worker and every process it started. Safe to call at any time, more than once."""
        self.cancelled = True
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        t = threading.Thread(target=self._kill_later, args=(proc, grace), daemon=True)
        t.start()

    @staticmethod
    def _kill_later(proc: subprocess.Popen, grace: float) -> None:
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 16384))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> bool:
        """Remove the job folder once the job has ended and the caller is done with the files its result
        names; kept with ``TENSORBRIDGE_KEEP_JOBS=1``. Returns whether the folder is gone."""
        if not self.done or keep_jobs():
            return False
        shutil.rmtree(self.job_dir, ignore_errors=True)
        return not self.job_dir.exists()

    def result_uses_folder(self) -> bool:
        """Whether the result (or an event) names a file in the job folder, which a caller may still read."""
        root = str(self.job_dir)

        def names(v) -> bool:
            if isinstance(v, str):
                return v.startswith(root)
            if isinstance(v, dict):
                return any(names(x) for x in v.values())
            if isinstance(v, (list, tuple)):
                return any(names(x) for x in v)
            return False

        return names(self.result) or any(names(ev.data) for ev in self._events if ev.kind not in ("log", "progress"))

    @property
    def elapsed(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.ended_at or time.monotonic()) - self.started_at


def _group_memory(pid: int) -> int:
    """Anonymous resident memory (bytes) of a worker and every process it started (file-backed pages,
    such as a memory-mapped model, are not counted: the kernel can drop them)."""
    try:
        import psutil

        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except Exception:
        return 0
    total = 0
    for p in procs:
        try:
            mi = p.memory_info()
            total += max(0, mi.rss - getattr(mi, "shared", 0))
        except Exception:
            pass
    return total


def _worker_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    env["TENSORBRIDGE_PARENT_PID"] = str(os.getpid())  # the worker dies with this process
    # the worker runs in its job folder: where the user works is where their own modules live
    env.setdefault("TENSORBRIDGE_CALLER_CWD", os.getcwd())
    env["PYTHONPATH"] = _PKG_ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Tools that converters run as programs (onnxsim) live beside this interpreter.
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def _spawn_worker(job_dir: Path, env: dict[str, str] | None = None,
                  preload: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    """A fresh interpreter (spawned, never forked) in its own process group; returns (process, event fd).

    With ``preload`` the worker imports those modules, then waits for "go" on stdin before reading its
    params: a warm spare that a later job can take over without paying the import cost.
    """
    rfd, wfd = os.pipe()
    # The lifeline: this process holds its write end and never writes. When this process ends, however
    # it ends, the kernel closes it, and a tiny helper the worker starts in its group (blocked reading
    # the other end, no Python, no GIL) ends the whole group; the job's end closes it the same way.
    life_r, life_w = os.pipe()
    if getattr(sys, "frozen", False):  # a bundled app ships the worker as its own executable
        cmd = [os.path.join(os.path.dirname(sys.executable), "tensorbridge-worker"), str(job_dir), str(wfd)]
    else:
        cmd = [sys.executable, "-m", "converters.jobs.worker", str(job_dir), str(wfd)]
    if preload is not None:
        cmd += ["--wait", ",".join(preload)]
    log = open(job_dir / "log.txt", "ab")
    worker_env = _worker_env(env)
    worker_env["TENSORBRIDGE_LIFELINE_FD"] = str(life_r)
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE if preload is not None else subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, pass_fds=(wfd, life_r), start_new_session=True, env=worker_env,
            cwd=str(job_dir), close_fds=True)
    except BaseException:
        os.close(life_w)
        raise
    finally:
        os.close(wfd)
        os.close(life_r)
        log.close()
    proc._tb_lifeline = life_w  # type: ignore[attr-defined]
    return proc, rfd


def _cut_lifeline(proc: subprocess.Popen | None) -> None:
    """Close the worker's lifeline: its helper then ends whatever is left of the worker's group."""
    fd = getattr(proc, "_tb_lifeline", None)
    if fd is not None:
        proc._tb_lifeline = None  # type: ignore[attr-defined]
        try:
            os.close(fd)
        except OSError:
            pass
