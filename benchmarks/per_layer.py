"""Per-layer comparison at scale: ``tensorbridge compare --per-layer`` against Polygraphy on the same model,
in the same run, with wall time and peak memory of each (the whole process tree: workers included).

    .venv/bin/python benchmarks/per_layer.py [--size 512] [--convs 43] [--mlp-blocks 48] [--only conv|mlp]

Models (built here, never downloaded):
* a conv stack: input 1x3xSxS, ``--convs`` Conv(3x3, 64 channels)+Relu pairs; at S=512 with 43 pairs its node
  outputs total 5.4 GiB (86 tensors of 64 MiB);
* an MLP of ``--mlp-blocks`` Gemm+Relu blocks (batch 256, width 1024).

Each tool does the per-layer job its own way, on the model against itself (both sides run, every node
output of each is compared): Tensorbridge with ``compare --per-layer``; Polygraphy with two onnxruntime
runners and every node output marked (``polygraphy run --onnxrt --onnxrt --onnx-outputs mark all``),
which is how its users compare inner tensors. A third row, Polygraphy's single run with every output
marked, is the floor of what seeing inner tensors costs (half the running, nothing compared).
``--kill-at-gb`` stops a tool whose memory grows past that (reported as killed). CPU seconds (of the
tool and every process it waited for) move less than wall time on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def conv_stack(path: str, size: int, convs: int, channels: int = 64) -> str:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, prev, cin = [], [], "x", 3
    for i in range(convs):
        w = (rng.standard_normal((channels, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))).astype(np.float32)
        b = (rng.standard_normal(channels) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"conv{i}"], pads=[1, 1, 1, 1], name=f"Conv_{i}"),
                  helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"], name=f"Relu_{i}")]
        prev, cin = f"relu{i}", channels
    g = helper.make_graph(nodes, "conv_stack", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, channels, size, size])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def mlp(path: str, blocks: int, width: int = 1024, batch: int = 256) -> str:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    nodes, inits, prev = [], [], "x"
    for i in range(blocks):
        w = (rng.standard_normal((width, width)) * np.sqrt(2.0 / width)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(width, np.float32), f"b{i}")]
        nodes += [helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"fc{i}"], name=f"Gemm_{i}"),
                  helper.make_node("Relu", [f"fc{i}"], [f"act{i}"], name=f"Relu_{i}")]
        prev = f"act{i}"
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [batch, width])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path


def measure(cmd: list[str], kill_at_gb: float, cwd: str | None = None) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds (user + system, of it and every process it waited for: a
    figure a busy machine changes less than wall time) and the peak of the summed RSS of it and all its
    children."""
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    out_f, err_f = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # a pipe would fill and block the tool
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f, cwd=cwd, env=dict(os.environ, PYTHONPATH=ROOT))
    ps = psutil.Process(proc.pid)
    peak, killed = 0, False
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        if rss > kill_at_gb * 2 ** 30:
            for c in ps.children(recursive=True):
                c.kill()
            proc.kill()
            killed = True
            break
        time.sleep(0.05)
    proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out_f.seek(0)
    err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    return {"wall_s": wall, "cpu_s": cpu, "peak_gb": peak / 2 ** 30, "rc": proc.returncode, "killed": killed,
            "stdout": out.decode(errors="replace"), "stderr": err.decode(errors="replace")[-2000:]}


TB = "tensorbridge compare --per-layer"
PG_COMPARE = "polygraphy run --onnxrt --onnxrt --onnx-outputs mark all"
PG_ONE = "polygraphy run --onnxrt --onnx-outputs mark all"


def run_model(name: str, path: str, args) -> list[dict]:
    rows = []
    tb = [sys.executable, "-m", "app", "compare", path, path, "--per-layer", "--json", "--warmup", "0", "--repeats", "1"]
    r = measure(tb, args.kill_at_gb)
    layers = None
    if r["rc"] in (0, 1):
        doc = json.loads(r["stdout"])
        layers = len(doc.get("layers", []))
        r["note"] = f"{layers} layers compared, {doc.get('layer_counts')}"
    rows.append(dict(model=name, tool=TB, **r))
    if shutil.which("polygraphy", path=os.path.dirname(sys.executable)) and not args.no_polygraphy:
        pg = os.path.join(os.path.dirname(sys.executable), "polygraphy")
        r = measure([pg, "run", path, "--onnxrt", "--onnxrt", "--onnx-outputs", "mark", "all"], args.kill_at_gb)
        r["note"] = "two onnxruntime runs, every node output marked and compared"
        rows.append(dict(model=name, tool=PG_COMPARE, **r))
        r = measure([pg, "run", path, "--onnxrt", "--onnx-outputs", "mark", "all"], args.kill_at_gb)
        r["note"] = "one onnxruntime run, every node output marked, nothing compared"
        rows.append(dict(model=name, tool=PG_ONE, **r))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=512, help="conv stack input size (default 512: 5.4 GiB of activations)")
    p.add_argument("--convs", type=int, default=43)
    p.add_argument("--mlp-blocks", type=int, default=48)
    p.add_argument("--only", choices=["conv", "mlp"], default=None)
    p.add_argument("--kill-at-gb", type=float, default=20.0, help="stop a tool whose memory passes this")
    p.add_argument("--no-polygraphy", action="store_true")
    p.add_argument("--json", default=None, help="write the rows here")
    args = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="bench-per-layer-")
    rows = []
    try:
        if args.only in (None, "conv"):
            m = conv_stack(os.path.join(work, "conv_stack.onnx"), args.size, args.convs)
            act = 2 * args.convs * 64 * args.size * args.size * 4 / 2 ** 30
            print(f"conv stack: 1x3x{args.size}x{args.size}, {args.convs} Conv+Relu, node outputs {act:.2f} GiB")
            rows += run_model("conv_stack", m, args)
        if args.only in (None, "mlp"):
            m = mlp(os.path.join(work, "mlp.onnx"), args.mlp_blocks)
            print(f"MLP: {args.mlp_blocks} Gemm+Relu blocks, 256x1024")
            rows += run_model("mlp", m, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'model':12} {'tool':58} {'wall s':>8} {'cpu s':>8} {'peak GB':>8}  note")
    for r in rows:
        status = " (killed)" if r["killed"] else "" if r["rc"] in (0, 1) else f" (exit {r['rc']})"
        print(f"{r['model']:12} {r['tool']:58} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['peak_gb']:8.2f}  "
              f"{r.get('note', '')}{status}")
    by: dict[str, dict[str, dict]] = {}
    for r in rows:
        by.setdefault(r["model"], {})[r["tool"]] = r
    for model, rs in by.items():
        t = rs.get(TB)
        for other in (PG_COMPARE, PG_ONE):
            o = rs.get(other)
            if t is None or o is None:
                continue
            print(f"{model}: {other} / Tensorbridge: time {o['wall_s'] / t['wall_s']:.2f}x, "
                  f"CPU time {o['cpu_s'] / max(t['cpu_s'], 1e-9):.2f}x, "
                  f"peak memory {o['peak_gb'] / max(t['peak_gb'], 1e-9):.2f}x"
                  + (" (Polygraphy killed: its figures are lower bounds)" if o["killed"] else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if k not in ("stdout",)} for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
