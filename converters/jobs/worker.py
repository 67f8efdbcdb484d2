"""Worker process entry point: ``python -m converters.jobs.worker JOB_DIR EVENT_FD``.

Runs exactly one task and reports on the event FD. See :mod:`converters.jobs` for the protocol.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


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


def main(argv: list[str]) -> int:
    job_dir, fd = argv[1], int(argv[2])
    ctx = Context(job_dir, fd)
    _be_the_oom_victim()
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
        kind = type(exc).__name__
        ctx.send("error", message=one_line(exc), kind=kind)
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
