"""A pre-scan of pickle opcodes, run before any unpickler (ours, torch's, TorchScript's C++ one) sees them.

Unpicklers trust the numbers in the stream: a ``LONG_BINPUT`` memo index of 10**9 makes CPython's and
TorchScript's unpicklers size their memo table for it (gigabytes, from a 9-byte file). The scan walks the
opcodes with :mod:`pickletools` (which builds nothing and calls nothing) and refuses:

* memo indices far beyond the number of objects built so far (an honest pickler numbers them in order),
* more opcodes than a model file needs (:data:`MAX_OPS`),
* lengths that run past the end of the data (a truncated or forged stream), frames included (an
  unpickler reads a frame whole, sized by its declared length).

It reads through a window that never asks the file for more than it holds, so a forged length cannot
make the scan itself allocate.
"""
from __future__ import annotations

import io
import os
import pickletools
from typing import IO, Any, cast

from ..errors import CorruptFile, ResourceLimit, text_of

MAX_OPS = 50_000_000
# How far a memo index may run ahead of the opcodes seen so far (an honest pickler: never).
MEMO_SLACK = 1024

_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GETS = {"GET", "BINGET", "LONG_BINGET"}


class _Window(io.RawIOBase):
    """A read-only view of ``f`` from its current position that never reads past ``end``."""

    def __init__(self, f, end: int):
        self._f, self._end = f, end

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        left = self._end - self._f.tell()
        if left <= 0:
            return b""
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def readline(self, limit: int | None = -1) -> bytes:
        left = self._end - self._f.tell()
        if left <= 0:
            return b""
        return self._f.readline(left if limit is None or limit < 0 else min(limit, left))

    def tell(self) -> int:
        return self._f.tell()


def scan_stream(f, *, path: str, what: str = "pickle", end: int | None = None) -> int:
    """Scan one pickle from ``f``'s position (stops after its STOP); returns the number of opcodes.

    ``f`` is left just after the pickle, so consecutive pickles (legacy torch.save) scan in turn.
    """
    if end is None:
        pos = f.tell()
        f.seek(0, os.SEEK_END)
        end = f.tell()
        f.seek(pos)
    window = _Window(f, end)
    ops = 0
    memo_high = -1
    arg: Any  # its type depends on the opcode: an int for FRAME and the memo opcodes
    try:
        # genops only calls read, readline and tell, which the window has; its stub asks for IO[bytes]
        for op, arg, _pos in pickletools.genops(cast(IO[bytes], window)):
            ops += 1
            name = op.name
            if name == "FRAME" and int(arg) > end - window.tell():
                # unpicklers read a frame whole, sized by its declared length: a forged one allocates that
                raise CorruptFile(f"{path}: the {what} declares a frame of {int(arg):,} bytes but only "
                                  f"{end - window.tell():,} remain; the file is forged or truncated")
            if name in _PUTS:
                idx = int(arg)
                if idx < 0 or idx > ops + MEMO_SLACK:
                    raise ResourceLimit(f"{path}: the {what} asks for memo slot {idx:,} after {ops:,} "
                                        f"opcodes, which would make any unpickler allocate for it; the "
                                        f"file is forged or damaged")
                memo_high = max(memo_high, idx)
            elif name == "MEMOIZE":
                memo_high += 1
            elif name in _GETS:
                if int(arg) > memo_high:
                    raise CorruptFile(f"{path}: the {what} refers to an object it never stored "
                                      f"(memo {int(arg):,}); the file is damaged")
            if ops > MAX_OPS:
                raise ResourceLimit(f"{path}: the {what} holds more than {MAX_OPS:,} opcodes; refusing it "
                                    f"(no model file needs that many)")
            if name == "STOP":
                return ops
    except (ValueError, EOFError, OverflowError, UnicodeDecodeError, IndexError, TypeError) as exc:
        text = text_of(exc, 160)
        raise CorruptFile(f"{path}: the {what} is damaged or truncated ({text}); re-save or re-download "
                          f"it") from None
    raise CorruptFile(f"{path}: the {what} ends before its STOP opcode; the file is truncated")


def scan_bytes(data: bytes, *, path: str, what: str = "pickle") -> int:
    """:func:`scan_stream` over bytes already in memory."""
    return scan_stream(io.BytesIO(data), path=path, what=what, end=len(data))


def scan_file(path: str, what: str = "pickle") -> int:
    """Scan the first pickle of a file."""
    with open(path, "rb") as f:
        return scan_stream(f, path=path, what=what)
