"""The real-architecture acceptance matrix: every zoo model through every route the planner offers.

    .venv/bin/python benchmarks/zoo.py [--only PATTERN] [--json out.json] [--jobs N] [--rebuild] [--no-direct]

Models come from ``tests/models/zoo_models.py`` (Keras applications, transformers models from small configs,
PyTorch models as users write them, zoo-style ONNX files, SavedModel and TFLite forms), built offline and
cached in ``tests/.cache/zoo/<framework versions>``. For each (model, target) pair the route is run through
the real CLI (``tensorbridge convert SRC --to T -o OUT --json``), then parity is checked twice: by the CLI
(``tensorbridge compare SRC OUT --json``) and by exactly what the window runs after a conversion
(``run_job("compare", parity_after_conversion(src, out, {}))``); the two verdicts must agree. When a pair
fails, the underlying converters are called directly with their own defaults, hop by hop, each in its own
process: a pair whose direct chain converts while the route does not is counted as a route bug.

``--only`` is a glob (or substring) matched against ``model->target``, e.g. ``--only 'hf_*->onnx'``.
Prints one row per pair as it finishes, then the table and totals; ``--json`` writes every record (also
rewritten after each pair, so a long run is never lost).
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

_EXT = {"onnx": ".onnx", "tf": "_savedmodel", "keras": ".h5", "tflite": ".tflite", "torch": ".pt2"}
_VERSIONED = ("torch", "tensorflow-cpu", "keras", "transformers", "onnx", "onnxruntime", "onnx2tf", "tf2onnx")


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONWARNINGS="ignore")
    env.pop("TENSORBRIDGE_KEEP_JOBS", None)
    return env


def _cli() -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "tensorbridge")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "app"]


def versions_tag() -> str:
    parts = []
    for name in _VERSIONED:
        try:
            parts.append(f"{name.split('-')[0]}{md.version(name)}")
        except md.PackageNotFoundError:
            if name == "tensorflow-cpu":
                try:
                    parts.append(f"tensorflow{md.version('tensorflow')}")
                except md.PackageNotFoundError:
                    pass
    return "-".join(parts).replace("+", "_")


def cache_dir() -> str:
    """``tests/.cache/zoo/<framework versions>-<digest of the builders' source>``."""
    import hashlib

    with open(os.path.join(ROOT, "tests", "models", "zoo_models.py"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:10]
    return os.path.join(ROOT, "tests", ".cache", "zoo", f"{versions_tag()}-{digest}")


def one_line(text: str, limit: int = 400) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text or "")  # torch.onnx colours its messages
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # the CLI's error is its last line; a traceback's is too
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


def exception_line(exc: BaseException) -> str:
    """``Type: first line of the message`` of the outermost exception that says something."""
    chain, e = [], exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    for e in chain:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not ln.startswith("The error above")]
        if lines:
            return one_line(f"{type(e).__name__}: {lines[0]}")
    return type(exc).__name__


# ---- building --------------------------------------------------------------------------------------------
def build_models(names: list[str], folder: str, rebuild: bool = False, timeout: float = 1800) -> dict:
    """Build the missing (or failed) ``names`` into ``folder``: one process per framework family, in parallel."""
    from tests.models import zoo_models

    os.makedirs(folder, exist_ok=True)
    facts = _read_facts(folder)
    todo = [n for n in names if rebuild or n not in facts or "build_error" in facts[n]
            or not os.path.exists(os.path.join(folder, n))]
    procs = []
    for fam in ("tf", "torch"):
        group = [n for n in todo if zoo_models.FAMILY[n] == fam]
        if not group:
            continue
        sub = os.path.join(folder, f".build-{fam}")
        shutil.rmtree(sub, ignore_errors=True)
        log = open(os.path.join(folder, f"build-{fam}.log"), "w")
        procs.append((sub, log, subprocess.Popen([sys.executable, "-m", "tests.models.zoo_models", sub, *group],
                                                 cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)))
        print(f"building {len(group)} {fam} models ...", file=sys.stderr, flush=True)
    for sub, log, p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        got = _read_facts(sub)
        for name, f in got.items():
            if "build_error" not in f:
                dst = os.path.join(folder, name)
                if os.path.isdir(dst):
                    shutil.rmtree(dst)
                elif os.path.exists(dst):
                    os.remove(dst)
                os.replace(os.path.join(sub, name), dst)
            facts[name] = f
        shutil.rmtree(sub, ignore_errors=True)
    tmp = os.path.join(folder, f"facts.json.{os.getpid()}")
    with open(tmp, "w") as f:  # another run may be reading it
        json.dump(facts, f, indent=1)
    os.replace(tmp, os.path.join(folder, "facts.json"))
    return facts


def _read_facts(folder: str) -> dict:
    p = os.path.join(folder, "facts.json")
    return json.load(open(p)) if os.path.exists(p) else {}


# ---- one pair --------------------------------------------------------------------------------------------
def pairs_for(path: str) -> list[tuple[str, list[str]]]:
    """(target, hop names) for every target the planner reaches from ``path`` with at least one hop."""
    from converters.routes.planner import TARGETS, plan

    out = []
    for t in TARGETS:
        try:
            r = plan(path, t)
        except Exception:
            continue
        if r.hops:
            out.append((t, [h.name for h in r.hops], [h.dst for h in r.hops], r.source_format))
    return out


def _verdict_cli(src: str, out: str, timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(_cli() + ["compare", src, out, "--json"], capture_output=True, text=True, env=_env(),
                           timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"verdict": "error", "error": f"compare timed out after {timeout:g} s"}
    res = {"seconds": round(time.perf_counter() - t0, 2), "rc": p.returncode}
    if p.returncode in (0, 1):
        try:
            d = json.loads(p.stdout)
        except ValueError:
            return {**res, "verdict": "error", "error": one_line(p.stderr) or "compare printed no JSON"}
        res.update(_summarise_compare(d))
        if (p.returncode == 0) != (res["verdict"] == "pass"):
            res["exit_code_mismatch"] = True
        return res
    return {**res, "verdict": "error", "error": one_line(p.stderr)}


def _summarise_compare(d: dict) -> dict:
    """Verdict, max abs error and reasons over the model's outputs; captured inner tensors (the window's check
    uses the converter map) are diagnostics outside the verdict, counted apart."""
    every = d.get("outputs") or []
    outs = [o for o in every if not o.get("intermediate")]
    inner = [o for o in every if o.get("intermediate")]
    maxabs = [o.get("max_abs") for o in outs if o.get("max_abs") is not None]
    res = {"verdict": "pass" if d.get("passed") else ("error" if d.get("error") else "fail"),
           "max_abs": max(maxabs) if maxabs else None, "outputs": len(outs)}
    if d.get("error"):
        res["error"] = one_line(str(d["error"]))
    reasons = [f"{o.get('name')}: {'; '.join(map(str, o.get('reasons') or []))}" for o in outs if not o.get("passed")]
    if reasons:
        res["reasons"] = reasons[:3]
    if inner:
        res["inner"] = {"compared": len(inner), "differ": sum(1 for o in inner if not o.get("passed"))}
    if d.get("warnings"):
        res["warnings"] = [one_line(str(w), 200) for w in d["warnings"]][:3]
    return res


def _verdict_window(src: str, out: str, timeout: float) -> dict:
    from converters.compare.params import parity_after_conversion
    from converters.jobs import run_job

    t0 = time.perf_counter()
    params = parity_after_conversion(src, out, {})
    try:
        result, job = run_job("compare", params, timeout=timeout)
    except Exception as exc:  # JobFailed and friends: the window shows these as an error
        return {"verdict": "error", "error": one_line(str(exc)), "seconds": round(time.perf_counter() - t0, 2)}
    finally:
        shutil.rmtree(params.get("save_dir", ""), ignore_errors=True)
    try:
        return {**_summarise_compare(result), "seconds": round(time.perf_counter() - t0, 2)}
    finally:
        job.cleanup()


def run_pair(name: str, src: str, target: str, hops: list[str], dsts: list[str], work: str, args) -> dict:
    rec = {"model": name, "source_format": None, "target": target, "route": hops, "converted": False}
    d = os.path.join(work, name.replace(".", "_"), target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out = os.path.join(d, os.path.splitext(name)[0] + _EXT[target])
    t0 = time.perf_counter()
    try:
        p = subprocess.run(_cli() + ["convert", src, "--to", target, "-o", out, "--json"], capture_output=True,
                           text=True, env=_env(), timeout=args.timeout, cwd=ROOT)
        rec["convert_seconds"] = round(time.perf_counter() - t0, 2)
        if p.returncode == 0:
            res = json.loads(p.stdout)
            rec["converted"] = True
            rec["hop_seconds"] = {h["name"] + ("" if i == 0 else f"#{i + 1}"): h["seconds"]
                                  for i, h in enumerate(res.get("hops", []))}
            rec["hop_seconds_list"] = [h["seconds"] for h in res.get("hops", [])]
            if res.get("warnings"):
                rec["convert_warnings"] = [one_line(str(w), 200) for w in res["warnings"]]
        else:
            rec["error"] = one_line(p.stderr) or f"exit {p.returncode} with no message"
            rec["error_rc"] = p.returncode
    except subprocess.TimeoutExpired:
        rec["convert_seconds"] = round(time.perf_counter() - t0, 2)
        rec["error"] = f"convert timed out after {args.timeout:g} s"
    if rec["converted"]:
        rec["parity_cli"] = _verdict_cli(src, out, args.compare_timeout)
        rec["parity_window"] = _verdict_window(src, out, args.compare_timeout)
        rec["max_abs"] = rec["parity_cli"].get("max_abs")
        rec["verdicts_agree"] = rec["parity_cli"]["verdict"] == rec["parity_window"]["verdict"]
    ok = rec["converted"] and rec["parity_cli"]["verdict"] == "pass" and rec.get("verdicts_agree")
    rec["ok"] = bool(ok)
    if not ok and not args.no_direct:
        rec["direct"] = run_direct_chain(src, hops, dsts, os.path.join(d, "direct"), args)
        if rec["direct"]["ok"] and not rec["converted"]:
            rec["route_bug"] = True
    if not args.keep:
        shutil.rmtree(d, ignore_errors=True)
    return rec


# ---- the underlying converters, called directly --------------------------------------------------------
def run_direct_chain(src: str, hops: list[str], dsts: list[str], folder: str, args) -> dict:
    """Each hop's library with its own defaults, one process per hop; then (when it converts) the CLI compare
    of the source against the direct result, to tell a converter's own numerical gap from the route's."""
    os.makedirs(folder, exist_ok=True)
    cur, steps = src, []
    for i, (hop, dst) in enumerate(zip(hops, dsts)):
        out = os.path.join(folder, f"step{i + 1}_{hop}_{dst}" + {"onnx": ".onnx", "savedmodel": "_sm", "tflite": ".tflite",
                                                                   "tf_keras": ".h5", "torch": ".pt2"}[dst])
        t0 = time.perf_counter()
        try:
            p = subprocess.run([sys.executable, os.path.abspath(__file__), "--direct", hop, dst, cur, out],
                               capture_output=True, text=True, env=_env(), timeout=args.timeout, cwd=folder)
            ok, err = p.returncode == 0 and os.path.exists(out), ("" if p.returncode == 0 else one_line(p.stderr))
            if p.returncode == 0 and not os.path.exists(out):
                err = "returned without writing its output"
        except subprocess.TimeoutExpired:
            ok, err = False, f"timed out after {args.timeout:g} s"
        step = {"hop": hop, "to": dst, "ok": ok, "seconds": round(time.perf_counter() - t0, 2), "call": _CALLS[hop]}
        if not ok:
            step["error"] = err or "failed with no message"
            steps.append(step)
            return {"ok": False, "failed_hop": hop, "error": step["error"], "steps": steps}
        steps.append(step)
        cur = out
    res = {"ok": True, "steps": steps}
    cmp = _verdict_cli(src, cur, args.compare_timeout)
    res["parity_cli"] = {k: cmp.get(k) for k in ("verdict", "max_abs", "error", "reasons") if cmp.get(k) is not None}
    return res


_CALLS = {
    "onnx_from_torch": "torch.onnx.export(torch.export.load(src), dynamo=True)",
    "onnx_from_keras": "tf2onnx.convert.from_keras(keras.models.load_model(src))",
    "onnx_from_savedmodel": "python -m tf2onnx.convert --saved-model src",
    "onnx_from_tflite": "tf2onnx.convert.from_tflite(src)",
    "savedmodel_from_onnx": "onnx2tf.convert(input_onnx_file_path=src, output_folder_path=...)",
    "savedmodel_from_keras": "keras.models.load_model(src).export(out)",
    "tflite_from_savedmodel": "tf.lite.TFLiteConverter.from_saved_model(src).convert()",
    "tflite_from_keras": "tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(src)).convert()",
    "torch_from_onnx": "onnx2torch.convert(src) + torch.export.export(module, example inputs)",
}


def _onnx_examples(path):
    import numpy as np
    import onnx
    import torch

    m = onnx.load(path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    args = []
    for i in m.graph.input:
        if i.name in inits:
            continue
        tt = i.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tt.shape.dim]
        dt = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        arr = np.ones(shape, dt) if np.issubdtype(dt, np.integer) else np.random.default_rng(0).random(shape).astype(dt)
        args.append(torch.from_numpy(arr))
    return tuple(args)


def direct(hop: str, dst: str, src: str, out: str) -> None:
    """One hop with the library's own defaults (the ``--direct`` mode, run in its own process)."""
    if hop == "onnx_from_torch":
        import torch

        try:  # a transformers model's outputs are pytree nodes registered when their classes are defined
            import transformers.modeling_outputs  # noqa: F401
        except ImportError:
            pass
        torch.onnx.export(torch.export.load(src), (), out, dynamo=True)
    elif hop == "onnx_from_keras":
        import keras
        import tensorflow as tf
        import tf2onnx

        m = keras.models.load_model(src)
        sig = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in m.inputs]
        tf2onnx.convert.from_keras(m, input_signature=sig, output_path=out)
    elif hop == "onnx_from_savedmodel":
        p = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", src, "--output", out],
                           capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(one_line(p.stderr))
    elif hop == "onnx_from_tflite":
        import tf2onnx

        tf2onnx.convert.from_tflite(src, output_path=out)
    elif hop == "savedmodel_from_onnx":
        import glob

        import numpy as np
        import onnx2tf

        # onnx2tf downloads this sample from GitHub when it is missing; nothing is reachable from here, so
        # the same stand-in the route uses (20 images 128x128x3 in [0, 1)) is put where onnx2tf looks first
        cal = "calibration_image_sample_data_20x128x128x3_float32.npy"
        if not os.path.exists(cal):
            np.save(cal, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
        folder = out + ".onnx2tf"
        onnx2tf.convert(input_onnx_file_path=src, output_folder_path=folder, output_h5=(dst == "tf_keras"))
        if dst == "savedmodel":
            if os.path.exists(os.path.join(folder, "saved_model.pb")):
                shutil.copytree(folder, out)
        else:
            found = sorted(glob.glob(os.path.join(folder, "*_float32.tflite" if dst == "tflite" else "*.h5")))
            if found:
                shutil.copy(found[0], out)
    elif hop == "savedmodel_from_keras":
        import keras

        keras.models.load_model(src).export(out)
    elif hop in ("tflite_from_savedmodel", "tflite_from_keras"):
        import tensorflow as tf

        if hop == "tflite_from_keras":
            import keras

            conv = tf.lite.TFLiteConverter.from_keras_model(keras.models.load_model(src))
        else:
            conv = tf.lite.TFLiteConverter.from_saved_model(src)
        data = conv.convert()
        with open(out, "wb") as f:
            f.write(data)
    elif hop == "torch_from_onnx":
        import types

        import torch

        if "torchvision" not in sys.modules:  # not installable on CPU here; onnx2torch imports it at the top
            tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
            ops.nms = ops.roi_align = None
            tv.ops = ops
            sys.modules.update({"torchvision": tv, "torchvision.ops": ops})
        import onnx2torch

        module = onnx2torch.convert(src).eval()
        torch.export.save(torch.export.export(module, _onnx_examples(src)), out)
    else:
        raise SystemExit(f"unknown hop {hop}")


# ---- the matrix ------------------------------------------------------------------------------------------
def _fmt_row(r: dict) -> str:
    def v(p):
        return "-" if not p else p["verdict"]

    hops = "/".join(f"{s:.1f}" for s in r.get("hop_seconds_list") or []) or "-"
    ma = r.get("max_abs")
    ma = "-" if ma is None else f"{ma:.2e}"
    conv = "yes" if r["converted"] else "NO"
    line = (f"{r['model']:28} {r['source_format'] or '?':13} {r['target']:7} {conv:4} {v(r.get('parity_cli')):6} "
            f"{v(r.get('parity_window')):6} {ma:>9} {hops:>14}")
    if not r["ok"]:
        msg = r.get("error") or _parity_msg(r)
        d = r.get("direct")
        tag = "" if not d else (" [direct: ok]" if d["ok"] else f" [direct: fails at {d['failed_hop']}]")
        line += f"  ! {msg}{tag}"
    return line


def _parity_msg(r: dict) -> str:
    c, w = r.get("parity_cli") or {}, r.get("parity_window") or {}
    if c.get("verdict") != w.get("verdict"):
        return f"verdicts differ: CLI {c.get('verdict')} ({c.get('error', '')}), window {w.get('verdict')} ({w.get('error', '')})"
    return c.get("error") or "; ".join(c.get("reasons") or []) or "parity failed"


HEADER = (f"{'model':28} {'source':13} {'target':7} {'conv':4} {'cli':6} {'window':6} {'max abs':>9} "
          f"{'s per hop':>14}")


def totals(records: list[dict]) -> dict:
    n = len(records)
    conv = [r for r in records if r["converted"]]
    ok = [r for r in records if r["ok"]]
    return {"pairs": n, "converted": len(conv), "converted_pct": round(100 * len(conv) / n, 1) if n else 0,
            "parity_pass": len(ok), "parity_pass_pct_of_converted": round(100 * len(ok) / len(conv), 1) if conv else 0,
            "verdict_disagreements": sum(1 for r in conv if not r.get("verdicts_agree")),
            "route_bugs": sum(1 for r in records if not r["ok"] and "route bug" in cause(r)),
            "failures": n - len(ok)}


def _norm(msg: str) -> str:
    """A message with paths, numbers and quoted names blurred, to group failures by cause."""
    import re

    msg = re.sub(r"(/[^\s'\"(),:]+)+", "<path>", msg or "")
    msg = re.sub(r"\([^()]*\.(onnx|pt2|keras|tflite|h5)\)", "(<file>)", msg)
    msg = re.sub(r"\[[^\]]*\]", "[...]", msg)
    msg = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", msg)
    return msg[:160]


def cause(r: dict) -> str:
    """The group a failed record belongs to."""
    d = r.get("direct") or {}
    if not r["converted"]:
        if r.get("route_bug"):
            return f"route bug (the direct converters succeed): {_norm(r.get('error', ''))}"
        if d:
            return f"conversion fails, and so does {d.get('failed_hop')} called directly: {_norm(r.get('error', ''))}"
        return f"conversion fails: {_norm(r.get('error', ''))}"
    c, w = r.get("parity_cli") or {}, r.get("parity_window") or {}
    if c.get("verdict") != w.get("verdict"):
        return f"CLI and window verdicts differ: CLI {c.get('verdict')}, window {w.get('verdict')}"
    dp = (d.get("parity_cli") or {}).get("verdict")
    if c.get("verdict") == "error":
        if dp in ("pass", "fail"):
            return f"route bug (its result cannot be run, the direct converter's can): {_norm(c.get('error', ''))}"
        return f"parity check errors: {_norm(c.get('error', ''))}"
    if dp == "fail":
        return "parity fails at fp32, and the directly converted model differs from the source as much"
    if dp == "pass":
        return "parity fails at fp32 while the directly converted model passes (route bug)"
    return f"parity fails at fp32 (direct chain: {'fails at ' + str(d.get('failed_hop')) if d else 'not run'})"


def report(records: list[dict], wall: float | None = None, out=sys.stdout) -> dict:
    """Print the table, the totals and the failures grouped by cause, each group with a reproducer."""
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p(HEADER)
    for r in records:
        p(_fmt_row(r))
    t = totals(records)
    p(f"\npairs {t['pairs']}, converted {t['converted']} ({t['converted_pct']} %), parity pass {t['parity_pass']} "
      f"({t['parity_pass_pct_of_converted']} % of converted), CLI/window verdicts differ {t['verdict_disagreements']}, "
      f"route bugs {t['route_bugs']}" + ("" if wall is None else f", wall {wall / 60:.1f} min"))
    groups: dict[str, list[dict]] = {}
    for r in records:
        if not r["ok"]:
            groups.setdefault(cause(r), []).append(r)
    if groups:
        p("\nfailures by cause:")
    for g, rs in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        p(f"\n* {g}  ({len(rs)})")
        for r in rs:
            d = r.get("direct")
            dtxt = "" if not d else (("direct chain converts" + (f", its parity {d['parity_cli'].get('verdict')} "
                                                                   f"(max abs {d['parity_cli'].get('max_abs')})"
                                                                   if d.get("parity_cli") else ""))
                                     if d["ok"] else f"direct {d['failed_hop']} fails: {d['error']}")
            p(f"    {r['model']}->{r['target']}: {r.get('error') or _parity_msg(r)}" + (f"  [{dtxt}]" if dtxt else ""))
            if r.get("recheck"):
                p(f"      rerun alone: {r['recheck']}")
        first = rs[0]
        p(f"    reproduce: .venv/bin/python benchmarks/zoo.py --only '{first['model']}->{first['target']}'")
    return t


def recheck(records: list[dict], folder: str, args) -> None:
    """Run each failed conversion again, alone and with --debug: tells a flaky failure from a steady one and
    keeps the worker's traceback's last line. One pair per cause (the first of each group)."""
    seen = set()
    for r in records:
        if r["converted"] or r["target"] == "(build)" or cause(r) in seen:
            continue
        seen.add(cause(r))
        src = os.path.join(folder, r["model"])
        d = os.path.join(folder, ".work", "recheck")
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        out = os.path.join(d, os.path.splitext(r["model"])[0] + _EXT[r["target"]])
        try:
            proc = subprocess.run(_cli() + ["convert", src, "--to", r["target"], "-o", out, "--debug"],
                                  capture_output=True, text=True, env=_env(), timeout=args.timeout, cwd=ROOT)
            if proc.returncode == 0:
                r["recheck"] = "converts (the failure in the matrix is intermittent)"
            else:
                errs = [ln for ln in proc.stderr.splitlines() if ln and not ln.startswith((" ", "W0000", "I0000"))]
                tb = [ln for ln in errs if "Error" in ln or "error" in ln]
                r["recheck"] = "fails again: " + one_line(tb[-1] if tb else proc.stderr)
        except subprocess.TimeoutExpired:
            r["recheck"] = f"times out after {args.timeout:g} s"
        print(f"recheck {r['model']}->{r['target']}: {r['recheck']}", file=sys.stderr, flush=True)
        shutil.rmtree(d, ignore_errors=True)


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--direct":
        try:
            direct(*argv[1:5])
        except BaseException as exc:  # noqa: BLE001 - one line for the report, last on stderr
            import traceback

            traceback.print_exc()
            sys.stderr.write("\n" + exception_line(exc) + "\n")
            sys.stderr.flush()
            os._exit(1)
        sys.stdout.flush()
        os._exit(0)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", help="glob or substring of 'model->target' (repeatable)")
    ap.add_argument("--json", help="write every record and the totals here")
    ap.add_argument("--jobs", type=int, default=2, help="pairs run at once (default 2)")
    ap.add_argument("--rebuild", action="store_true", help="build the models again")
    ap.add_argument("--models-dir", help="where the models are built (default tests/.cache/zoo/<versions>)")
    ap.add_argument("--work", default=None, help="where conversions are written (default a temp folder)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per conversion (and per direct hop)")
    ap.add_argument("--compare-timeout", type=float, default=300)
    ap.add_argument("--no-direct", action="store_true", help="do not call the converters directly on failures")
    ap.add_argument("--keep", action="store_true", help="keep the converted files")
    ap.add_argument("--resume", action="store_true", help="skip the pairs already in --json")
    ap.add_argument("--list", action="store_true", help="list the pairs and exit")
    ap.add_argument("--report", nargs="+", metavar="JSON", help="print the table of earlier runs (merged) and exit")
    ap.add_argument("--recheck", action="store_true",
                    help="with --report: run each failed conversion again alone (--debug) and note the result")
    args = ap.parse_args(argv)
    if args.report:
        merged: dict = {}
        for f in args.report:  # a later file's record of a pair replaces an earlier one's
            for r in json.load(open(f))["records"]:
                merged[(r["model"], r["target"])] = r
        records = list(merged.values())
        from tests.models import zoo_models

        order = {n: i for i, n in enumerate(zoo_models.MODELS)}
        tgt = {t: i for i, t in enumerate(_EXT)}
        records.sort(key=lambda r: (order.get(r["model"], 999), tgt.get(r["target"], -1)))
        if args.recheck:
            recheck(records, args.models_dir or cache_dir(), args)
        t = report(records)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"versions": versions_tag(), "totals": t, "records": records}, f, indent=1)
        return 0

    from tests.models import zoo_models

    def wanted(key: str) -> bool:
        if not args.only:
            return True
        # a pattern naming a target ('x->tf') is a glob; a bare word is also matched as a substring
        return any(fnmatch.fnmatch(key, p) or ("->" not in p and p in key) for p in args.only)

    names = [n for n in zoo_models.MODELS if any(wanted(f"{n}->{t}") for t in _EXT)]
    folder = args.models_dir or cache_dir()
    facts = build_models(names, folder, rebuild=args.rebuild)
    work = args.work or os.path.join(folder, ".work")
    os.makedirs(work, exist_ok=True)

    jobs, records = [], []
    for n in names:
        if "build_error" in facts.get(n, {"build_error": "not built"}):
            err = one_line(facts.get(n, {}).get("build_error", "not built"))
            records.append({"model": n, "source_format": None, "target": "(build)", "converted": False, "ok": False,
                            "error": f"build failed: {err}", "route": []})
            continue
        src = os.path.join(folder, n)
        for target, hops, dsts, fmt in pairs_for(src):
            if wanted(f"{n}->{target}"):
                jobs.append((n, src, target, hops, dsts, fmt))
    done = {}
    if args.resume and args.json and os.path.exists(args.json):
        for r in json.load(open(args.json)).get("records", []):
            derr = str((r.get("direct") or {}).get("error"))  # direct calls made before two fixes of this script
            stale = "github.com" in derr or "when deserializing the saved file" in derr
            # the engine's code changed under a long run (a name missing between two edits): run it again
            msgs = " ".join(str(x) for x in (r.get("error"), (r.get("parity_cli") or {}).get("error"),
                                             (r.get("parity_window") or {}).get("error")))
            stale = stale or any(w in msgs for w in ("NameError", "ImportError", "cannot import name"))
            if (r["ok"] or r.get("direct") or args.no_direct) and not stale:  # else the pair runs again
                done[(r["model"], r["target"])] = r
    if args.list:
        for n, _, t, hops, _, fmt in jobs:
            print(f"{n}->{t}  ({fmt}: {' -> '.join(hops)})")
        print(f"{len(jobs)} pairs")
        return 0

    lock = threading.Lock()
    print(f"{len(jobs)} pairs, {args.jobs} at a time; models in {folder}", file=sys.stderr, flush=True)
    print(HEADER, flush=True)

    def save():
        if args.json:
            with open(args.json + ".tmp", "w") as f:
                json.dump({"versions": versions_tag(), "totals": totals(records), "records": records}, f, indent=1)
            os.replace(args.json + ".tmp", args.json)

    def one(job):
        n, src, target, hops, dsts, fmt = job
        if (n, target) in done:
            rec = done[(n, target)]
        else:
            try:
                rec = run_pair(n, src, target, hops, dsts, work, args)
            except Exception as exc:  # a bug of this script must not lose the rest of the run
                rec = {"model": n, "target": target, "route": hops, "converted": False, "ok": False,
                       "error": f"zoo runner: {type(exc).__name__}: {exc}"}
            rec["source_format"] = fmt
        with lock:
            records.append(rec)
            print(_fmt_row(rec), flush=True)
            save()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(1, args.jobs)) as ex:
        list(ex.map(one, jobs))
    wall = time.perf_counter() - t0
    order = {(j[0], j[2]): i for i, j in enumerate(jobs)}
    records.sort(key=lambda r: order.get((r["model"], r["target"]), -1))
    save()
    print()
    t = report(records, wall)
    return 0 if t["failures"] == 0 else 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.exit(code)
