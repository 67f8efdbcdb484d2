"""Worker tasks for running models: ``run_model`` (one side of a comparison) and ``devices``."""
from __future__ import annotations

import os
import time

import numpy as np


def _boot_seconds(spawned_at: float | None) -> float | None:
    # from the caller starting this worker (time.monotonic() is one clock for all processes here) to
    # the task starting: interpreter start and worker imports, or the hand-over to a warm worker
    if spawned_at is not None:
        return max(0.0, time.monotonic() - float(spawned_at))
    try:  # process creation time: coarser (clock ticks and boot-time rounding)
        import psutil
        return max(0.0, time.time() - psutil.Process().create_time())
    except Exception:
        return None


def _capturable(runner, feeds, names: list[str], warnings: list[str], label: str) -> list[str] | None:
    """The names among ``names`` this runner can capture (tensors a converter map names may not exist
    under that name in the saved file); the rest are reported in ``warnings`` instead of failing."""
    try:
        runner.infer(feeds, capture=names)
        return names
    except Exception:
        pass
    if len(names) > 64:  # probing one by one would cost a run each
        warnings.append(f"the {len(names)} inner tensors named by the converter map cannot all be captured "
                        f"in {label}; compared the outputs only")
        return None
    ok = []
    for n in names:
        try:
            runner.infer(feeds, capture=[n])
            ok.append(n)
        except Exception:
            continue
    missing = [n for n in names if n not in ok]
    if missing:
        warnings.append(f"{len(missing)} of {len(names)} inner tensors named by the converter map cannot be "
                        f"captured in {label} (e.g. '{missing[0]}'); those are not compared")
    return ok or None


def rounding_step(feeds: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """``feeds`` with every float input moved by about one rounding step of its dtype (relative noise
    uniform in ±eps); other inputs unchanged. Running a model on both measures how much its own outputs
    move under rounding alone: the scale of error any correct re-implementation may show."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in feeds.items():
        v = np.asarray(v)
        if v.dtype.kind == "f":
            eps = np.finfo(v.dtype).eps
            u = rng.uniform(-1.0, 1.0, v.shape)
            out[k] = (v.astype(np.float64) * (1.0 + eps * u)).astype(v.dtype)
        else:
            out[k] = v
    return out


def run_model_task(params: dict, ctx, consume=None) -> dict:
    """Open one model, feed it, run it ``warmup`` + ``repeats`` times, save the outputs.

    params:
      path (str), device (str, "cpu"), trust (bool), signature (str|None, SavedModel),
      one input source: ``generate`` {seed, dims, shapes, batch} | ``files`` [paths] with ``image``
      {size, scale, mean, std, layout} | ``inputs_npz`` (path; with ``wait_s`` it may appear later),
      ``perms`` {input name: perm} (layout hints from a converter map), ``inputs_out`` (path: save the
      feeds used), ``capture`` [names], ``warmup`` (int, 1), ``repeats`` (int, 5), ``spawned_at``
      (the caller's time.monotonic() when it started the worker, for ``boot_s``), ``noise_out`` (path:
      run once more on inputs one rounding step away, see :func:`rounding_step`, and save those outputs).
    result: runtime, device, inputs/outputs specs, ``outputs_npz``, ``inputs_npz``, ``noise_npz`` (None
      when no input is float), ``timing`` (ms),
      ``open_s``, ``boot_s``, ``warnings``, ``matches`` [{source, target, by, perm}].
    """
    from .base import timing_stats
    from ..inputs import ImageOptions, inputs_from_files, load_inputs, match_arrays, random_inputs, save_inputs
    from . import runner_for

    boot = _boot_seconds(params.get("spawned_at"))
    path = params["path"]
    if not os.path.isabs(path):
        from ..errors import TensorbridgeError
        # this worker runs in its job folder, so a relative path would name the wrong file
        raise TensorbridgeError(f"run_model: '{path}' is a relative path; pass an absolute path to the task")
    warnings: list[str] = []
    ctx.progress(0.0, f"opening {os.path.basename(path)}")
    t0 = time.perf_counter()
    options = {"signature": params["signature"]} if params.get("signature") else {}
    if params.get("share_cores"):
        options["share_cores"] = True
    runner = runner_for(path, device=params.get("device") or "cpu", trust=bool(params.get("trust")), **options)
    runner.open()
    open_s = time.perf_counter() - t0
    try:
        in_specs = runner.input_specs()
        matches: list = []
        if params.get("generate") is not None:
            g = params["generate"] or {}
            feeds = random_inputs(in_specs, seed=int(g.get("seed", 0)), dims=g.get("dims"), shapes=g.get("shapes"),
                                  batch=g.get("batch"),
                                  float_range=tuple(g.get("float_range", (0.0, 1.0))),
                                  int_range=tuple(g.get("int_range", (0, 10))))
        elif params.get("files"):
            img = params.get("image") or {}
            opts = ImageOptions(size=tuple(img["size"]) if img.get("size") else None, scale=img.get("scale", True),
                                mean=tuple(img["mean"]) if img.get("mean") else None,
                                std=tuple(img["std"]) if img.get("std") else None, layout=img.get("layout", "auto"))
            feeds = inputs_from_files(params["files"], in_specs, image_options=opts, warnings=warnings)
        elif params.get("inputs_npz"):
            src = params["inputs_npz"]
            deadline = time.monotonic() + float(params.get("wait_s") or 0)
            if params.get("wait_s"):
                ctx.progress(None, "waiting for the other side's inputs")
            while not os.path.exists(src) and time.monotonic() < deadline:
                time.sleep(0.02)
            arrays = load_inputs(src)
            aliases = runner.aliases()
            feeds = match_arrays(arrays, in_specs, warnings=warnings, what="input",
                                 perms={aliases.get(k, k): tuple(v) for k, v in (params.get("perms") or {}).items()},
                                 matches=matches)
        else:
            raise ValueError("run_model needs one of: generate, files, inputs_npz")
        if params.get("inputs_out"):
            save_inputs(params["inputs_out"], feeds)
        if params.get("noise_against") is not None:
            return _rounding_only(runner, params, ctx, feeds)
        warmup = max(0, int(params.get("warmup", 1)))
        repeats = max(1, int(params.get("repeats", 5)))
        capture = params.get("capture") or None
        capture_dir = params.get("capture_dir")
        if capture and capture_dir:
            return _streamed(runner, params, ctx, feeds, capture, capture_dir, warnings, boot, open_s, matches,
                             consume)
        if capture and params.get("capture_optional"):
            capture = _capturable(runner, feeds, capture, warnings, os.path.basename(path))
        ctx.progress(0.2, "running")
        out = None
        for _ in range(warmup):
            out = runner.infer(feeds, capture=capture)
        times = []
        for i in range(repeats):
            out = runner.infer(feeds, capture=capture)
            times.append(runner.last_inference_time)
            ctx.progress(0.2 + 0.7 * (i + 1) / repeats, f"run {i + 1}/{repeats}")
        out_path = _save_npz(params.get("outputs_out") or ctx.path("outputs.npz"), out)
        noise_path = None
        if params.get("noise_out") and any(np.asarray(v).dtype.kind == "f" for v in feeds.values()):
            ctx.progress(0.95, "measuring rounding sensitivity")
            noise_path = _save_npz(params["noise_out"], runner.infer(rounding_step(feeds), capture=capture))
        return _result(runner, out, out_path, noise_path, params, timing_stats(times, warmup), open_s, boot,
                       warnings, feeds, matches, ctx)
    finally:
        runner.close()


def _cpu_seconds() -> float | None:
    """This process's CPU time so far (user + system, all threads)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _save_npz(path: str, arrays: dict) -> str:
    tmp = path + ".part.npz"
    np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)
    return path


def _result(runner, out, out_path, noise_path, params, timing, open_s, boot, warnings, feeds, matches, ctx,
            **more) -> dict:
    desc = runner.describe()
    warnings.extend(runner.warnings)
    ctx.progress(1.0, "done")
    return {"runtime": desc["runtime"], "device": desc["device"], "inputs": desc["inputs"],
            "outputs": desc["outputs"], "output_names": list(out.keys()), "aliases": desc.get("aliases", {}),
            "outputs_npz": out_path, "noise_npz": noise_path,
            "inputs_npz": params.get("inputs_out"), "timing": timing, "open_s": open_s,
            "boot_s": boot, "cpu_s": _cpu_seconds(), "warnings": warnings,
            "feeds": {k: {"shape": list(v.shape), "dtype": v.dtype.name} for k, v in feeds.items()},
            "matches": [{"source": m.source, "target": m.target, "by": m.by,
                         "perm": list(m.perm) if m.perm else None} for m in matches], **more}


class _Spiller:
    """Writes captured tensors to ``.npy`` files on a thread of its own, so the runtime computes the next
    piece while the last one goes to disk. At most ``depth`` tensors wait (memory: that many tensors)."""

    def __init__(self, depth: int = 2):
        import queue
        import threading

        self._q: "queue.Queue" = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="spill", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            path, value = item
            if self._error is None:
                try:
                    tmp = path + ".part"
                    with open(tmp, "wb") as f:
                        np.save(f, np.asarray(value))
                    os.replace(tmp, path)
                except BaseException as exc:  # a full disk: raised by close(), in the task
                    self._error = exc
            del item, value

    def put(self, path: str, value) -> None:
        if self._error is not None:
            raise self._error
        self._q.put((path, value))

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _streamed(runner, params, ctx, feeds, capture, capture_dir, warnings, boot, open_s, matches,
              consume=None) -> dict:
    """A per-layer run: one run that writes each captured tensor to ``capture_dir/<k>.npy`` (k: its first
    position in ``capture``) as the runtime produces it, so no more than about one piece's tensors are
    held here.

    With ``consume`` (a callable ``(name, value) -> bool`` with ``start(ctx)`` and ``finish()``, see
    converters.compare.side) each tensor goes to it instead, and only those it returns True for are
    written. With ``stream_to`` (a named pipe, see :mod:`.stream`) each tensor is sent there instead.
    ``capture_index_out``: a JSON file {name: .npy path} written once every file is complete (what the
    other side of a comparison waits for when tensors go through files).

    A's rounding sensitivity is measured afterwards, where needed (see :func:`_rounding_only`). The
    timing is that of the capturing run (a per-layer comparison is about where numbers differ, not speed:
    no separate timed runs)."""
    import json

    from .base import timing_stats

    os.makedirs(capture_dir, exist_ok=True)
    index: dict[str, int] = {}
    for k, n in enumerate(capture):
        index.setdefault(n, k)
    files: dict[str, str] = {}
    seen: list[str] = []
    spiller = _Spiller()
    sender = None
    if params.get("stream_to"):  # the other side of the comparison reads them from this pipe
        from .stream import Sender
        sender = Sender(params["stream_to"])

    def sink(name: str, value) -> None:
        k = index.get(name)
        if k is None:
            return
        seen.append(name)
        if sender is not None:
            sender.put(name, value)
            return
        if consume is not None and not consume(name, value):
            return
        f = os.path.join(capture_dir, f"{k}.npy")
        spiller.put(f, value)
        files[name] = f

    if consume is not None:
        consume.start(ctx)
    ctx.progress(0.65, f"capturing {len(index)} tensors")
    budget = int(params.get("capture_budget_mb") or 256) << 20
    try:
        out = runner.capture_stream(feeds, list(index), sink, budget_bytes=budget)
    finally:
        spiller.close()
        if sender is not None:
            sender.close()
        if consume is not None and hasattr(consume, "finish"):
            consume.finish()
    times = [runner.last_inference_time]
    missing = [n for n in index if n not in set(seen)]
    if missing:
        warnings.append(f"{len(missing)} of {len(index)} planned tensors cannot be captured in "
                        f"{os.path.basename(params['path'])} (e.g. '{missing[0]}'); those are not compared")
    out_path = _save_npz(params.get("outputs_out") or ctx.path("outputs.npz"), out)
    if params.get("capture_index_out"):
        tmp = params["capture_index_out"] + ".part"
        with open(tmp, "w") as fh:
            json.dump(files, fh)
        os.replace(tmp, params["capture_index_out"])
    return _result(runner, out, out_path, None, params, timing_stats(times, 0), open_s, boot,
                   warnings, feeds, matches, ctx, captured=files, compared=seen)


def devices_task(params: dict, ctx) -> dict:
    """params: ``runtimes`` (list or None). result: ``{"devices": [ {runtime, device, available, reason, name} ]}``."""
    from . import list_devices

    return {"devices": list_devices(params.get("runtimes"))}


def _max_change(ref, value) -> float | None:
    ref, v = np.asarray(ref), np.asarray(value)
    if ref.shape != v.shape or v.dtype.kind != "f":
        return None
    d = np.abs(ref.astype(np.float64) - v)
    d = d[np.isfinite(d)]
    return float(d.max()) if d.size else 0.0


def _rounding_only(runner, params, ctx, feeds) -> dict:
    """A run on inputs one rounding step away, measuring how far the given tensors move against what the
    earlier run wrote (``noise_against`` {name: .npy}, ``noise_outputs_npz``): ``capture_noise`` and
    ``output_noise`` {name: max change}. Nothing else is kept."""
    if not any(np.asarray(v).dtype.kind == "f" for v in feeds.values()):
        return {"capture_noise": {}, "output_noise": {}}
    files = params.get("noise_against") or {}
    inner: dict[str, float] = {}

    def change(name, value):
        f = files.get(name)
        if f is not None:
            m = _max_change(np.load(f, mmap_mode="r"), value)
            if m is not None:
                inner[name] = m

    ctx.progress(0.3, "measuring rounding sensitivity")
    outs = runner.capture_stream(rounding_step(feeds), list(files), change) if files else \
        runner.infer(rounding_step(feeds))
    out_noise = {}
    if params.get("noise_outputs_npz") and os.path.exists(params["noise_outputs_npz"]):
        with np.load(params["noise_outputs_npz"]) as z:
            for k in z.files:
                if k in outs:
                    m = _max_change(z[k], outs[k])
                    if m is not None:
                        out_noise[k] = m
    ctx.progress(1.0, "done")
    return {"capture_noise": inner, "output_noise": out_noise}


def run_nodes_task(params: dict, ctx) -> dict:
    """Worker task "run_nodes": run single nodes of an ONNX model or a torch.export program on given inputs (a
    per-layer comparison re-runs B's layer on A's own tensors: the error that layer makes by itself).

    params: ``path`` (ONNX or .pt2), ``device``, ``trust``, ``requests`` [{``node``: name, ``inputs``: {input name: .npy path}
    or "auto", ``out``: .npy path for the node's first output}], ``available`` {tensor name: .npy path}
    (what "auto" picks a node's inputs from). result: ``done`` [node names], ``failed`` {node: why}.
    """
    from ..formats.detect import detect

    if detect(params["path"]) == "torch.export":
        return _run_torch_nodes(params, ctx)
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from .onnx_runner import providers_for

    model = onnx.load(params["path"])
    g = model.graph
    nodes = {n.name: n for n in g.node if n.name}
    inits = {t.name: t for t in g.initializer}
    providers = providers_for(params.get("device") or "cpu")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    done, failed = [], {}
    reqs = params.get("requests") or []
    for k, req in enumerate(reqs):
        ctx.progress(k / max(len(reqs), 1), f"re-running {req['node']}")
        n = nodes.get(req["node"])
        if n is None:
            failed[req["node"]] = "no such node"
            continue
        try:
            given = req["inputs"]
            if given == "auto":
                avail = params.get("available") or {}
                data = [x for x in n.input if x and x not in inits]
                lacking = [x for x in data if x not in avail]
                if lacking:
                    failed[req["node"]] = f"input '{lacking[0]}' has no paired tensor in A"
                    continue
                given = {x: avail[x] for x in data}
            feeds = {name: np.load(f) for name, f in given.items()}
            ins = [helper.make_tensor_value_info(x, helper.np_dtype_to_tensor_dtype(feeds[x].dtype), None)
                   for x in feeds]
            used = [inits[x] for x in n.input if x in inits]
            sub = helper.make_graph([n], "node", ins, [helper.make_empty_tensor_value_info(n.output[0])], used)
            m = helper.make_model(sub, opset_imports=list(model.opset_import), ir_version=model.ir_version)
            m.functions.extend(model.functions)
            sess = ort.InferenceSession(m.SerializeToString(), sess_options=opts, providers=providers)
            out = sess.run([n.output[0]], feeds)[0]
            np.save(req["out"], out)
            done.append(req["node"])
        except Exception as exc:  # an op that needs more context than its inputs: no local figure
            from ..errors import one_line
            failed[req["node"]] = one_line(exc)
    return {"done": done, "failed": failed}


def _run_torch_nodes(params: dict, ctx) -> dict:
    """:func:`run_nodes_task` for a torch.export program: each FX node called on A's tensors for the nodes
    that feed it, with the program's own weights and constants for the rest."""
    import torch
    import torch.fx

    from ..errors import one_line
    from .torch_runner import TorchRunner

    runner = TorchRunner(params["path"], device=params.get("device") or "cpu", trust=bool(params.get("trust")))
    runner.open()
    try:
        gm = runner.module
        nodes = {n.name: n for n in gm.graph.nodes}
        avail = params.get("available") or {}
        done, failed = [], {}
        reqs = params.get("requests") or []
        dev = runner._dev
        for k, req in enumerate(reqs):
            ctx.progress(k / max(len(reqs), 1), f"re-running {req['node']}")
            n = nodes.get(req["node"])
            if n is None or n.op != "call_function":
                failed[req["node"]] = "no such node"
                continue
            lacking: list[str] = []

            def value(x):
                if x.op == "get_attr":
                    obj = gm
                    for part in str(x.target).split("."):
                        obj = getattr(obj, part)
                    return obj
                f = avail.get(x.name)
                if f is None:
                    lacking.append(x.name)
                    return None
                return torch.from_numpy(np.load(f)).to(dev)

            try:
                args = torch.fx.node.map_arg(n.args, value)
                kwargs = torch.fx.node.map_arg(n.kwargs, value)
                if lacking:
                    failed[req["node"]] = f"input '{lacking[0]}' has no paired tensor in A"
                    continue
                with torch.inference_mode():
                    out = n.target(*args, **kwargs)
                if isinstance(out, (tuple, list)):
                    out = out[0]
                np.save(req["out"], out.detach().cpu().numpy())
                done.append(req["node"])
            except Exception as exc:  # an op that needs more context than its inputs: no local figure
                failed[req["node"]] = one_line(exc)
        return {"done": done, "failed": failed}
    finally:
        runner.close()
