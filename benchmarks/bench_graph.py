#!/usr/bin/env python3
"""Graph view speed at scale: ``tensorbridge bench open`` on synthetic models, compared with Netron.

Generates the models (benchmarks/make_large_onnx.py, the same shapes Netron was measured on), runs
``python -m app bench open FILE --json --expand`` on each (a real window, offscreen when there is no
display, and a real worker process), cold and warm worker, and prints the figures, the targets, and
the ratio to Netron's time to a drawn graph.

Usage: python benchmarks/bench_graph.py [--sizes 200,5000,50000] [--repeat 3] [--out DIR] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Netron 9.3.3 in headless Chromium 156, same machine kind (2 cores, 24 GiB, no GPU), 2026-11-23:
# seconds from navigation start until every node is drawn, and the renderer's peak RSS (MB).
NETRON_BASELINE = {  # size: (ONNX nodes, graph drawn s, renderer peak RSS MB)
    200: (200, 0.80, 222),
    1000: (1008, 1.70, 321),
    5000: (4997, 4.09, 758),
    20000: (19999, 13.96, 2126),
    50000: (49996, 44.50, 4270),
}
NETRON_DATE = "2026-11-23"

# Targets: size -> (figure, limit in seconds)
TARGETS = {
    200: ("expanded_s", 0.3),          # every node drawn (small graphs open fully expanded)
    5000: ("expanded_s", 0.8),         # every node drawn
    50000: ("first_view_s", 2.0),      # collapsed overview interactive
}
TARGET_50K_EXPANDED = 10.0
TARGET_50K_RSS_MB = 1024


def run_one(path: str, warm: bool, timeout: float) -> dict:
    cmd = [sys.executable, "-m", "app", "bench", "open", path, "--json", "--expand"] + (["--warm"] if warm else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not env.get("DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench open failed on {path}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_run(path: str, warm: bool, repeat: int, timeout: float) -> dict:
    runs = [run_one(path, warm, timeout) for _ in range(repeat)]
    out = dict(runs[len(runs) // 2])
    for k in ("first_view_s", "full_pack_s", "expanded_s", "window_peak_rss_mb", "worker_peak_rss_mb",
              "total_peak_rss_mb"):
        vals = [r[k] for r in runs if k in r]
        if vals:
            out[k] = round(statistics.median(vals), 3)
    out["runs"] = repeat
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,5000,50000")
    ap.add_argument("--repeat", type=int, default=3, help="runs per model and worker kind; the median is shown")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "tensorbridge-bench-models"))
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", action="store_true", help="print all figures as JSON at the end")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.make_large_onnx import write

    sizes = [int(s) for s in args.sizes.split(",") if s]
    models = write(args.out, sizes)
    load0 = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load0:.2f} at start; Netron figures from {NETRON_DATE}\n")
    results = []
    for m in models:
        for warm in (False, True):
            t = time.perf_counter()
            r = median_run(m["path"], warm, args.repeat, args.timeout)
            r.update(size=m["size"], bytes=m["bytes"], wall_s=round(time.perf_counter() - t, 1))
            results.append(r)
            print(f"  {m['size']:>6} {'warm' if warm else 'cold'}: first {r['first_view_s']:.2f} s, "
                  f"expanded {r['expanded_s']:.2f} s, full pack {r['full_pack_s']:.2f} s, "
                  f"RSS {r['total_peak_rss_mb']:.0f} MB", flush=True)
    print()
    head = (f"{'model':>8} {'worker':>6} {'nodes':>7} {'first view s':>12} {'all drawn s':>11} {'full pack s':>11} "
            f"{'window MB':>9} {'worker MB':>9} {'Netron s':>8} {'Netron MB':>9} {'x faster':>8}")
    print(head)
    print("-" * len(head))
    for r in results:
        nb = NETRON_BASELINE.get(r["size"])
        ratio = f"{nb[1] / r['expanded_s']:.1f}" if nb and r.get("expanded_s") else "-"
        print(f"{r['size']:>8} {r['worker']:>6} {r['nodes']:>7,} {r['first_view_s']:>12.2f} {r['expanded_s']:>11.2f} "
              f"{r['full_pack_s']:>11.2f} {r['window_peak_rss_mb']:>9.0f} {r['worker_peak_rss_mb']:>9.0f} "
              f"{(nb[1] if nb else float('nan')):>8.2f} {(nb[2] if nb else float('nan')):>9.0f} {ratio:>8}")
    print("\n'all drawn' = every node expanded and drawn (the bench asks for it as soon as the first view is up);"
          "\n'full pack' = shapes and inspector details loaded; 'x faster' = Netron's drawn time / 'all drawn'.")
    print("\ntargets:")
    for r in results:
        t = TARGETS.get(r["size"])
        if t:
            k, lim = t
            print(f"  {r['size']:>6} {r['worker']}: {k} {r[k]:.2f} s <= {lim} s: {'yes' if r[k] <= lim else 'NO'}")
        if r["size"] == 50000:
            print(f"  {r['size']:>6} {r['worker']}: expanded_s {r['expanded_s']:.2f} s <= {TARGET_50K_EXPANDED} s: "
                  f"{'yes' if r['expanded_s'] <= TARGET_50K_EXPANDED else 'NO'}; total RSS "
                  f"{r['total_peak_rss_mb']:.0f} MB <= {TARGET_50K_RSS_MB}: "
                  f"{'yes' if r['total_peak_rss_mb'] <= TARGET_50K_RSS_MB else 'NO'}")
    print(f"\nload average at end {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    if args.json:
        print(json.dumps({"netron_date": NETRON_DATE, "load_start": load0, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
