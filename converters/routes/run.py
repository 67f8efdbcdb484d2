"""Run a planned route: every hop in order, in a staging folder beside the output, renamed at the end.

``convert(src, to, out=None, options=None)`` does the work in this process (the ``convert`` worker task
calls it; tests call it directly). Guarantees: the source is only read; nothing is written at the final
path until every hop succeeded; on error or cancel (even SIGKILL) the staging folder disappears.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import time
from typing import Callable

from ..errors import TensorbridgeError
from ..tbmap import SUFFIX, TensorMap, map_path
from .common import Staging, default_output, move_into_place, output_error
from .options import ConvertOptions
from .planner import Route, plan

KIND_FAMILY = {"onnx": "onnx", "savedmodel": "savedmodel", "tflite": "tflite", "tf_keras": "keras.h5",
               "torch": "torch.export"}
KIND_LABEL = {"onnx": "ONNX", "savedmodel": "SavedModel", "tflite": "TFLite", "tf_keras": "tf_keras",
              "torch": "torch.export"}
KIND_SUFFIX = {"onnx": ".onnx", "savedmodel": ".tf", "tflite": ".tflite", "tf_keras": ".tf_keras.h5",
               "torch": ".pt2"}


def _noop(*_a, **_k) -> None:
    pass


def convert(src: str, to: str, out: str | None = None, options: ConvertOptions | dict | None = None, *,
            overwrite: bool = False, progress: Callable[[float | None, str], None] | None = None,
            log: Callable[[str], None] | None = None) -> dict:
    """Convert ``src`` to format ``to``; return {output, outputs, route, hops, log}.

    ``out``: the output path (a folder for ``tf``); default beside ``src`` under a new name
    (model.onnx -> model.tf, model_1.tf, …). An existing ``out`` is an error unless ``overwrite``.
    """
    opts = options if isinstance(options, ConvertOptions) else ConvertOptions.from_dict(options)
    progress = progress or _noop
    lines: list[str] = []

    def say(msg: str) -> None:
        lines.append(msg)
        (log or _noop)(msg)

    src = os.path.abspath(os.path.normpath(src))
    route = plan(src, to)
    companions = ()
    if opts.all_outputs and route.hops and route.hops[-1].name == "savedmodel_from_onnx":
        companions = ("tf", "tflite", "tflite_fp16", "keras")  # onnx2tf writes them all in one run
    final = os.path.abspath(out) if out else default_output(src, route.target, fp16=opts.fp16,
                                                            companions=companions)
    if os.path.abspath(final) == src:
        raise TensorbridgeError(f"{final}: the output would replace the source; choose another output")
    if out and not overwrite:
        for p in (final, map_path(final)):
            if os.path.lexists(p):
                raise TensorbridgeError(f"{p}: already exists; choose another output or pass --overwrite")
    say(route.describe())
    hops_done = []
    warnings: list[str] = []
    n = len(route.hops)
    with Staging(final) as stage:
        cur, family = src, route.source_format
        kept: list[tuple[str, str]] = []  # (staged path, final path) of kept intermediates
        sidecars = []
        for i, hop in enumerate(route.hops):
            last = i == n - 1
            hop_out = os.path.join(stage.path, os.path.basename(final) if last else
                                   f"step{i + 1}_{hop.name}{KIND_SUFFIX[hop.dst]}")
            product = hop.dst
            if hop.dst == "tflite" and opts.fp16:
                product = "tflite_fp16"
            progress(i / n, f"{i + 1}/{n} {hop.description}")
            say(f"[{i + 1}/{n}] {hop.name}: {cur} -> {hop_out}")
            t0 = time.perf_counter()
            mod = importlib.import_module(f"{__package__}.{hop.name}")
            try:
                res = mod.run(cur, hop_out, opts, family=family, final=last, product=product, log=say)
            except TensorbridgeError as exc:
                if cur != src:  # name the user's file, not a staging path that is about to vanish
                    where = f"{os.path.basename(src)} (as {KIND_LABEL[route.hops[i - 1].dst]} from " \
                            f"{route.hops[i - 1].name})"
                    exc.args = (exc.message.replace(cur, where),) + exc.args[1:]
                exc.args = (exc.message.replace(stage.path + os.sep, ""),) + exc.args[1:]
                raise
            except Exception as exc:
                import errno

                if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                                                              errno.EACCES, errno.EPERM):
                    raise output_error(final, exc) from None
                if _disk_full(stage.path):  # converters report a full disk in their own words, or not at all
                    raise output_error(final, OSError(errno.ENOSPC, "No space left on device")) from None
                raise
            secs = time.perf_counter() - t0
            say(f"[{i + 1}/{n}] {hop.name} done in {secs:.2f} s")
            hops_done.append({"name": hop.name, "tool": hop.tool, "seconds": round(secs, 3),
                              "output": res["output"], "extra": res.get("extra", [])})
            warnings.extend(w.replace(stage.path + os.sep, os.path.dirname(final) + os.sep)
                            for w in res.get("warnings") or [])
            with open(map_path(res["output"])) as f:
                sidecars.append(TensorMap.from_dict(json.load(f)))
            if not last and opts.keep_intermediates:
                kept.append((res["output"], default_output(src, _target_of(hop.dst))))
            cur, family = res["output"], KIND_FAMILY[hop.dst]
        progress(0.97, "writing the correspondence map")
        if n > 1:
            for product in [cur] + list(res.get("extra", [])):
                with open(map_path(product)) as f:
                    own = TensorMap.from_dict(json.load(f))
                final_path = os.path.join(os.path.dirname(final), os.path.basename(product))
                _write_composed(map_path(product), src, final_path, route, sidecars[:-1] + [own])
        # Everything succeeded: move the products out of the staging folder, after checking that no
        # move would replace a file the user has (so a conflict leaves nothing half-moved).
        moves = []
        for staged in sorted(os.listdir(stage.path)):
            if staged.startswith("step"):  # intermediates: dropped, or kept under their own names below
                continue
            dst = os.path.join(os.path.dirname(final), staged)
            replace = overwrite and staged in (os.path.basename(final), os.path.basename(final) + SUFFIX)
            moves.append((os.path.join(stage.path, staged), dst, replace))
        for staged, dst in kept:
            moves += [(staged, dst, False), (map_path(staged), map_path(dst), False)]
        taken = [dst for _, dst, replace in moves if not replace and os.path.lexists(dst)]
        if taken:
            raise TensorbridgeError(f"{taken[0]}: already exists; move it away or choose another output")
        written = []
        for staged, dst, replace in moves:
            try:
                move_into_place(staged, dst, overwrite=replace)
            except OSError as exc:
                raise output_error(dst, exc) from None
            written.append(dst)
    # Report final paths, not staging ones; an intermediate that was not kept has output None.
    moved = {staged: dst for staged, dst in kept}
    for k, h in enumerate(hops_done):
        if k == len(hops_done) - 1:
            h["output"] = final
        else:
            h["output"] = moved.get(h["output"])
        h["extra"] = [os.path.join(os.path.dirname(final), os.path.basename(e)) for e in h["extra"]]
    progress(1.0, "done")
    return {"output": final, "outputs": written, "route": route.to_dict(), "hops": hops_done,
            "sidecar": map_path(final), "log": lines, "warnings": warnings}


def _disk_full(folder: str) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def _target_of(kind: str) -> str:
    return {"onnx": "onnx", "savedmodel": "tf", "tflite": "tflite", "tf_keras": "keras", "torch": "torch"}[kind]


def _write_composed(path: str, src: str, final: str, route: Route, maps: list[TensorMap]) -> None:
    acc = maps[0]
    for nxt in maps[1:]:
        acc = acc.compose(nxt)
    acc.hop = "+".join(route.names)
    acc.source = {"path": src, "format": route.source_format}
    acc.target = {"path": final, "format": maps[-1].target.get("format")}
    acc.notes = ["composed over the intermediate tensor names of each hop; 'hops' keeps each hop's own map as "
                 "[source, target, layout, layout_known] rows"] + acc.notes
    acc.extra["hops"] = [_compact(m) for m in maps]
    acc.write(path)


def _compact(m: TensorMap) -> dict:
    def rows(entries):
        return [[e.source, e.target, list(e.layout) if e.layout else None, e.layout_known] for e in entries]

    return {"hop": m.hop, "tool": m.tool, "source_format": m.source.get("format"),
            "target_format": m.target.get("format"), "inputs": rows(m.inputs), "outputs": rows(m.outputs),
            "tensors": rows(m.tensors)}


def convert_task(params: dict, ctx) -> dict:
    """Worker task ``convert``: params {src, to, out (optional), overwrite, options} -> convert()'s result.

    Paths must be absolute: the worker runs in its job folder, not in the caller's working folder."""
    for key in ("src", "out"):
        if params.get(key) and not os.path.isabs(params[key]):
            raise TensorbridgeError(f"{params[key]}: the convert task needs an absolute path")
    return convert(params["src"], params["to"], params.get("out"), params.get("options") or {},
                   overwrite=bool(params.get("overwrite")), progress=ctx.progress,
                   log=lambda m: (print(m, flush=True), ctx.log(m)))
