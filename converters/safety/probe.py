"""Run a C library's first look at a file in a forked child, so that a damaged file that makes it loop
or crash costs a bounded time and a one-line error instead of a stuck or dead worker.

libhdf5 can loop forever inside one attribute read of a mutated ``.h5`` (no Python code runs, so no
signal handler or thread can stop it). :func:`probe` forks, runs the same reading code in the child,
and waits at most ``timeout`` seconds; only when the child finished cleanly does the caller read the
file itself. The cost is one extra metadata pass (milliseconds for real files).
"""
from __future__ import annotations

import os
import signal
import time
from typing import Callable

from ..errors import CorruptFile

DEFAULT_TIMEOUT = float(os.environ.get("TENSORBRIDGE_PROBE_TIMEOUT", "15"))


def probe(fn: Callable[[], object], *, path: str, what: str, timeout: float | None = None) -> None:
    """Run ``fn()`` in a forked child; raise :class:`CorruptFile` when it hangs past ``timeout`` or dies.

    Exceptions inside the child are not reported here: the caller runs the same code next and reports
    them itself, as it would without the probe.
    """
    if not hasattr(os, "fork"):
        return
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    pid = os.fork()
    if pid == 0:  # the child: read, then leave without running any cleanup of the parent's
        import faulthandler

        faulthandler.disable()  # a crash here is reported by the parent, in one line
        code = 0
        try:
            fn()
        except BaseException:
            code = 3
        os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise CorruptFile(f"{path}: reading its {what} did not finish within {timeout:g} s (the file's "
                              f"structure is damaged and the library reading it is stuck); re-save or "
                              f"re-download it (TENSORBRIDGE_PROBE_TIMEOUT sets the limit)")
        time.sleep(0.01)
    if os.WIFSIGNALED(status):
        raise CorruptFile(f"{path}: reading its {what} crashed the reading library "
                          f"({signal.Signals(os.WTERMSIG(status)).name}); the file is damaged")
