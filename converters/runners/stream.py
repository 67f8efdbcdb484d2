"""Tensors from one worker to another through a named pipe, as a runtime produces them.

A per-layer comparison runs both models at once: side A sends each captured tensor to side B, which
compares it with its own and drops it (see converters.compare.side). Through a pipe, a tensor costs two
copies in memory; written to a file it would also cost page-cache insertion and write-back, which took
more CPU time than the model's own run (5.4 GiB of a conv stack's layers).

A frame is ``<u32 header length><JSON header {name, dtype, shape}><raw C-order bytes>``; the end of the
stream is the end of the pipe. The sender never blocks its runtime for more than ``depth`` tensors: a
thread of its own writes, and when the reader goes away (it finished, or failed) the rest is dropped.
"""
from __future__ import annotations

import json
import os
import queue
import struct
import threading

import numpy as np

__all__ = ["Sender", "read_frame", "make_pipe"]

_HEAD = struct.Struct("<I")
PIPE_BYTES = 1 << 20  # the pipe's buffer (Linux: F_SETPIPE_SZ), fewer wake-ups per 64 MiB tensor


def make_pipe(path: str) -> bool:
    """Create the named pipe ``path``; False where the system has none (then tensors go through files)."""
    if not hasattr(os, "mkfifo"):
        return False
    try:
        os.mkfifo(path, 0o600)
        return True
    except OSError:
        return False


def _grow(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)
    except (OSError, ImportError):
        pass


class Sender:
    """Writes ``(name, array)`` frames to the pipe at ``path`` on a thread of its own."""

    def __init__(self, path: str, depth: int = 2):
        self.path = path
        self.sent = 0
        self.closed_by_reader = False
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="send", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        f = None
        try:
            f = open(self.path, "wb", buffering=0)  # blocks until the reader opens its end
            _grow(f.fileno())
            while True:
                item = self._q.get()
                if item is None:
                    return
                if self.closed_by_reader:
                    continue
                name, value = item
                a = np.ascontiguousarray(value)
                head = json.dumps({"name": name, "dtype": a.dtype.str, "shape": list(a.shape)}).encode()
                try:
                    f.write(_HEAD.pack(len(head)) + head)
                    view = memoryview(a.reshape(-1).view(np.uint8)) if a.size else memoryview(b"")
                    while view.nbytes:
                        n = f.write(view)
                        view = view[n:]
                    self.sent += 1
                except BrokenPipeError:  # the reader has all it wanted (or is gone): drop the rest
                    self.closed_by_reader = True
                del item, value, a
        except BaseException as exc:
            self._error = exc
            while True:  # keep the producer from blocking on a full queue
                if self._q.get() is None:
                    return
        finally:
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    def put(self, name: str, value) -> None:
        self._q.put((name, value))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def read_frame(f) -> tuple[str, np.ndarray] | None:
    """The next ``(name, array)`` from the binary file object ``f``; None at the end of the stream."""
    raw = _read_exact(f, _HEAD.size)
    if raw is None:
        return None
    (n,) = _HEAD.unpack(raw)
    head = _read_exact(f, n)
    if head is None:
        return None
    h = json.loads(head)
    a = np.empty(h["shape"], dtype=np.dtype(h["dtype"]))
    if a.size:
        view = memoryview(a.reshape(-1).view(np.uint8))
        while view.nbytes:
            got = f.readinto(view)
            if not got:
                return None
            view = view[got:]
    return h["name"], a


def _read_exact(f, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
