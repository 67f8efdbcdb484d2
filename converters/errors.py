"""User-facing errors: one line that names the file and the problem and says what to do next."""
from __future__ import annotations


import re
from enum import StrEnum

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")


def plain(text: str) -> str:
    """``text`` without terminal escapes (colours libraries put in their messages) and control characters,
    on one line."""
    text = _ANSI.sub("", str(text))
    return " ".join("".join(c if c.isprintable() or c.isspace() else "?" for c in text).split())


class TensorbridgeError(Exception):
    """An error whose message is shown to the user as it is (one line, no traceback)."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(plain(message))

    @property
    def message(self) -> str:
        return self.args[0]


class UnsupportedFormat(TensorbridgeError):
    """The file is not a model format Tensorbridge reads."""


class CorruptFile(TensorbridgeError):
    """The file has the right kind but cannot be parsed (truncated, damaged, empty)."""


class TrustRequired(TensorbridgeError):
    """Opening the file would execute code stored in it; the user must say they trust it."""


class ResourceLimit(TensorbridgeError):
    """A job went past a budget (time, memory, declared sizes in a file); the message names the limit."""


class UnsupportedOp(TensorbridgeError):
    """A converter or runtime does not support an operation in the model."""


class JobCancelled(TensorbridgeError):
    """The user cancelled the job."""


class WorkerCrashed(TensorbridgeError):
    """The worker process died (signal, out of memory, exit inside a library)."""


def one_line(exc: BaseException) -> str:
    """A single-line description of any exception, for errors that are not TensorbridgeError."""
    if isinstance(exc, TensorbridgeError):
        return exc.message
    if isinstance(exc, SystemExit):
        return f"a library called sys.exit({exc.code}) while working; see the job log for its output"
    text = plain(str(exc))
    if len(text) > 400:
        text = text[:400] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def text_of(exc: BaseException | str, limit: int = 200) -> str:
    """An exception's own message (without its type name) on one line, without terminal escapes, cut at
    ``limit`` characters; "" when it has none. For a reason quoted inside a message of our own."""
    return plain(str(exc))[:limit]


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first non-blank line of an exception's message, plain and cut at ``limit`` characters; "" when
    it has none. For libraries that put a traceback, quoted code or advice after the reason itself."""
    line = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
    return plain(line)[:limit]


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception a library wrapped (``raise Wrapper(...) from cause``): what went wrong."""
    seen = set()
    while exc.__cause__ is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__
    return exc


class ErrorKind(StrEnum):
    """How a job ended when it did not give a result: the ``kind`` of an error event. A worker sends the
    class name of the :class:`TensorbridgeError` it raised; the caller adds the kinds only it can know
    (the worker died, the job was cancelled, a budget or a timeout stopped it). A ``StrEnum``, so the
    values compare equal to the strings on the wire."""

    TRUST_REQUIRED = "TrustRequired"
    CORRUPT_FILE = "CorruptFile"
    UNSUPPORTED_FORMAT = "UnsupportedFormat"
    UNSUPPORTED_OP = "UnsupportedOp"
    RESOURCE_LIMIT = "ResourceLimit"
    CANCELLED = "JobCancelled"
    WORKER_CRASHED = "WorkerCrashed"
    TIMEOUT = "Timeout"
    ERROR = "Error"
