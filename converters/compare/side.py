"""Worker task ``compare_side``: side B of a per-layer comparison, comparing each tensor with A's as B's
runtime produces it.

Both sides run at once. Side A hands each paired tensor over as it is made, and B, for each tensor it
makes, takes A's tensor of that layer, compares the two and drops both; it keeps a tensor (its own, and
A's) on disk only when the pair fails, for what comes after (A's rounding allowance, local errors).

How A's tensors come over:

* through a named pipe (``against_pipe``, :mod:`converters.runners.stream`): B reads frames in A's order;
  a frame B does not need yet waits in memory up to ``buffer_mb``, and on disk past that. Memory: about
  one piece of tensors per side, plus that buffer, whatever the model's size; nothing touches the disk
  when both orders agree.
* through files (``against`` {A name: .npy path}, ``against_done``): A writes each one (appearing under
  its final name when complete) and an index when it has finished; B waits for each, and deletes those
  that passed unless ``keep_against``. Used where there are no named pipes, or when the caller keeps
  every tensor (``--save-dir``).

params: those of ``run_model`` (with ``capture``, ``capture_dir``), plus the above, ``pairs`` [[A name,
B name, perm or None], …], ``tolerance`` (a Tolerance dict), ``overrides`` {name: Tolerance dict},
``a_dir`` (where A's failing tensors are kept), ``wait_s``.
result: that of ``run_model``, plus ``layer_diffs`` [OutputDiff dicts], ``compare_warnings``,
``a_files`` {A name: .npy path of A's tensor, for failing pairs} and ``released`` (A names whose files
were deleted).
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from typing import BinaryIO

import numpy as np

from .diff import OutputDiff
from .tolerances import Tolerance


class InlineCompare:
    """The consumer ``run_model`` hands B's tensors to (see :func:`converters.runners.tasks._streamed`)."""

    def __init__(self, params: dict):
        self.pipe_path = params.get("against_pipe")
        self.files_a: dict[str, str] = dict(params.get("against") or {})
        self.done_path = params.get("against_done")
        self.a_dir = params.get("a_dir") or os.path.dirname(next(iter(self.files_a.values()), "") or ".")
        self.wait_s = float(params.get("wait_s") or 0)
        self.keep = bool(params.get("keep_against"))
        self.buffer_bytes = int(float(params.get("buffer_mb") or 256) * (1 << 20))
        self.tol = Tolerance.from_dict(params["tolerance"]) if params.get("tolerance") else Tolerance()
        self.overrides = {k: Tolerance.from_dict(v) for k, v in (params.get("overrides") or {}).items()}
        self.by_b: dict[str, list[tuple]] = {}
        self.uses: dict[str, int] = {}
        self.order: dict[str, int] = {}
        for c in params.get("pairs") or []:
            perm = tuple(c[2]) if len(c) > 2 and c[2] else None
            self.by_b.setdefault(c[1], []).append((c[0], c[1], perm))
            self.uses[c[0]] = self.uses.get(c[0], 0) + 1
            self.order.setdefault(c[0], len(self.order))
        self.diffs: list[OutputDiff] = []
        self.warnings: list[str] = []
        self.released: list[str] = []
        self.a_files: dict[str, str] = {}
        self._failed_a: set[str] = set()
        self._pipe: BinaryIO | None = None
        self._ended = False
        self._held: dict[str, np.ndarray] = {}  # frames read ahead of need
        self._held_bytes = 0
        self._parked: dict[str, str] = {}  # frames read ahead, past the buffer: on disk
        self._recent: OrderedDict[str, object] = OrderedDict()  # passed lately: see _remember
        self._recent_bytes = 0

    # -- the stream's ends -------------------------------------------------------------------------------
    def start(self, ctx) -> None:
        if self.pipe_path:
            ctx.progress(None, "waiting for side A")
            self._pipe = open(self.pipe_path, "rb", buffering=0)  # blocks until A opens its end

    def finish(self) -> None:
        if self._pipe is not None:
            self._pipe.close()  # A drops what it has not sent yet
            self._pipe = None

    def _a_path(self, a: str) -> str:
        return os.path.join(self.a_dir, f"a{self.order.get(a, len(self.order))}.npy")

    def _from_pipe(self, a: str):
        """A's tensor ``a``: read ahead to it, holding (then parking) the frames before it."""
        from ..runners.stream import read_frame

        if a in self._held:
            v = self._held.pop(a)
            self._held_bytes -= v.nbytes
            return v
        if a in self._parked:
            return np.load(self._parked.pop(a), mmap_mode="r")
        while not self._ended:
            fr = read_frame(self._pipe)
            if fr is None:
                self._ended = True
                break
            name, v = fr
            if name == a:
                return v
            if name not in self.uses:
                continue
            if self._held_bytes + v.nbytes <= self.buffer_bytes:
                self._held[name] = v
                self._held_bytes += v.nbytes
            else:
                f = self._a_path(name)
                np.save(f, v)
                self._parked[name] = f
        return None

    def _from_files(self, a: str):
        f = self.files_a.get(a)
        if f is None:
            return None
        deadline = time.monotonic() + self.wait_s
        delay = 0.002
        while not os.path.exists(f):
            if self.done_path and os.path.exists(self.done_path):  # A has finished: written now, or never
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"side A's tensor '{a}' did not appear within {self.wait_s:g} s")
            time.sleep(delay)
            delay = min(0.05, delay * 2)
        return np.load(f, mmap_mode="r") if os.path.exists(f) else None

    # -- each of B's tensors ------------------------------------------------------------------------------
    def __call__(self, name: str, value) -> bool:
        """Compare B's tensor ``name`` with A's for every pair it is in; True: keep it (it failed)."""
        from .engine import compare_outputs

        failed = False
        for a, b, perm in self.by_b.get(name, ()):
            xa = self._from_pipe(a) if self._pipe is not None else self._from_files(a)
            if xa is None:
                continue
            ds = compare_outputs({a: xa}, {b: np.asarray(value)}, tolerance=self.tol, overrides=self.overrides,
                                 warnings=self.warnings, names_a=[a], names_b=[b], pairs=[(a, b, perm)],
                                 only_given=True, detail=False)
            self.diffs.extend(ds)
            bad = any(not d.passed for d in ds)
            failed = failed or bad
            self.uses[a] -= 1
            if bad:
                self._failed_a.add(a)
                self._keep_a(a, xa)
                for r, v in self._recent.items():  # what fed this layer, for re-running it on A's tensors
                    self._keep_a(r, v)
                self._recent.clear()
                self._recent_bytes = 0
            elif self.uses[a] > 0:  # another of B's tensors pairs with it: hold it again
                if self._pipe is not None:
                    self._held[a] = np.array(xa)
                    self._held_bytes += self._held[a].nbytes
            elif a not in self.a_files:
                self._remember(a, xa)
            del xa
        return failed

    def _keep_a(self, a: str, xa) -> None:
        """Keep A's tensor ``a`` on disk for what comes after the run (the engine's re-judging and re-runs)."""
        if a in self.a_files:
            return
        if self._pipe is None:
            self.a_files[a] = self.files_a[a]
            return
        f = self._a_path(a)
        if getattr(xa, "filename", None) != f:
            np.save(f, np.asarray(xa))
        self.a_files[a] = f

    def _remember(self, a: str, xa) -> None:
        """A passed tensor of A stays a while (up to the buffer's size): if a layer after it fails, the
        engine re-runs that layer on A's tensors, which are these."""
        self._recent[a] = xa
        self._recent_bytes += int(np.asarray(xa).nbytes)
        while self._recent and self._recent_bytes > self.buffer_bytes // 2:
            old, v = self._recent.popitem(last=False)
            self._recent_bytes -= int(np.asarray(v).nbytes)
            self._forget(old, v)

    def _forget(self, a: str, xa) -> None:
        f = getattr(xa, "filename", None) if self._pipe is not None else self.files_a.get(a)
        del xa
        if f and (self._pipe is not None or not self.keep):
            try:  # nothing reads it again; deleted before it is written back, it costs no disk
                os.remove(f)
                if self._pipe is None:
                    self.released.append(a)
            except OSError:
                pass


def compare_side_task(params: dict, ctx) -> dict:
    from ..runners.tasks import run_model_task

    consumer = InlineCompare(params)
    result = run_model_task(params, ctx, consume=consumer)
    result["layer_diffs"] = [d.to_dict() for d in consumer.diffs]
    result["compare_warnings"] = list(dict.fromkeys(consumer.warnings))
    result["released"] = consumer.released
    result["a_files"] = consumer.a_files
    return result
