"""Helpers every hop shares: offline guards, staging, default output names.

The correspondence map each hop writes beside its output is :mod:`converters.tbmap`.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Iterator

from ..tbmap import map_path


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Make any HTTP(S) request of a library fail at once instead of reaching the network."""
    keys = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")
    saved = {k: os.environ.get(k) for k in keys}
    for k in keys[:4]:
        os.environ[k] = "http://127.0.0.1:9"  # discard port: connection refused immediately
    for k in keys[4:]:
        os.environ.pop(k, None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def working_dir(path: str) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def tool_version(dist: str) -> str:
    try:
        from importlib.metadata import version
        return f"{dist} {version(dist)}"
    except Exception:
        return dist


# ---- where outputs go ------------------------------------------------------------------------------
TARGET_SUFFIX = {"onnx": ".onnx", "tf": ".tf", "keras": ".tf_keras.h5", "tflite": ".tflite", "torch": ".pt2"}


def _stem(src: str) -> str:
    base = os.path.basename(os.path.normpath(src))
    for ext in (".tf_keras.h5", ".weights.h5", ".pt2", ".onnx", ".tflite", ".keras", ".h5", ".hdf5",
                ".pt", ".pth", ".ckpt", ".tf"):
        if base.lower().endswith(ext) and len(base) > len(ext):
            return base[: -len(ext)]
    if base == "saved_model.pb":
        return os.path.basename(os.path.dirname(os.path.abspath(src))) or "model"
    return os.path.splitext(base)[0] or base


def default_output(src: str, target: str, *, fp16: bool = False, companions: tuple[str, ...] = ()) -> str:
    """A path beside ``src`` that does not exist yet: model.tf, model_1.tf, model_2.tf, …

    ``companions``: other targets written beside it under the same stem (``tflite_fp16`` for
    ``<stem>_fp16.tflite``); the stem is chosen so that none of them exists either.
    """
    folder = os.path.dirname(os.path.abspath(os.path.normpath(src)))
    if os.path.basename(src) == "saved_model.pb":
        folder = os.path.dirname(folder)
    stem = _stem(src)
    suffix = TARGET_SUFFIX[target]
    if target == "tflite" and fp16:
        suffix = "_fp16.tflite"
    extra = [("_fp16.tflite" if c == "tflite_fp16" else TARGET_SUFFIX[c]) for c in companions]
    for i in itertools.count():
        base = f"{stem}{'' if i == 0 else f'_{i}'}"
        cand = os.path.join(folder, base + suffix)
        others = [os.path.join(folder, base + sfx) for sfx in extra]
        if not any(os.path.lexists(p) or os.path.lexists(map_path(p)) for p in [cand] + others):
            return cand
    raise AssertionError("unreachable")


class Staging:
    """A temporary folder beside the final output; everything is written there and renamed at the end.

    A small watchdog process (in a session of its own, so cancelling the job does not end it) removes
    the folder if this process dies before :meth:`close` — a cancelled or crashed conversion leaves
    nothing behind, even after SIGKILL.
    """

    def __init__(self, final_output: str):
        folder = os.path.dirname(os.path.abspath(final_output)) or "."
        try:
            os.makedirs(folder, exist_ok=True)
            self.path = tempfile.mkdtemp(prefix=f".{os.path.basename(final_output)}.partial-", dir=folder)
        except OSError as exc:  # name the output the user asked for, not the hidden staging folder
            raise output_error(final_output, exc) from None
        code = ("import shutil,sys\nsys.stdin.read()\nshutil.rmtree(sys.argv[1], ignore_errors=True)\n")
        self._watch: subprocess.Popen[bytes] | None
        try:
            self._watch = subprocess.Popen([sys.executable, "-S", "-c", code, self.path],
                                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
        except OSError:
            self._watch = None

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._watch is not None:
            try:
                if self._watch.stdin is not None:  # always set: it was opened with stdin=PIPE
                    self._watch.stdin.close()
                self._watch.wait(5)
            except Exception:
                pass
            self._watch = None

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def move_into_place(src: str, dst: str, *, overwrite: bool = False) -> None:
    """Rename ``src`` (a file or folder in the staging folder) to ``dst`` on the same filesystem."""
    if os.path.lexists(dst):
        if not overwrite:
            from ..errors import TensorbridgeError
            raise TensorbridgeError(f"{dst}: already exists; choose another output or pass --overwrite")
        if os.path.isdir(dst) and not os.path.islink(dst):
            shutil.rmtree(dst)
        else:
            os.remove(dst)
    os.replace(src, dst)


def output_error(output: str, exc: OSError):
    """A one-line error for an OS failure while writing ``output`` (disk full, read-only, no permission)."""
    import errno

    from ..errors import TensorbridgeError

    folder = os.path.dirname(os.path.abspath(output)) or "."
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = f"the disk holding {folder} is full"
        todo = "free some space there or choose another output folder with -o"
    elif exc.errno == errno.EROFS:
        what = f"{folder} is on a read-only file system"
        todo = "choose another output folder with -o"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        what = f"you may not write in {folder}"
        todo = "choose another output folder with -o or change its permissions"
    else:
        what = f"writing in {folder} failed ({exc.strerror or exc})"
        todo = "choose another output folder with -o"
    return TensorbridgeError(f"{output}: cannot be written: {what}; {todo}")
