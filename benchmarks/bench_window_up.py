"""Seconds from launching ``tensorbridge`` to its main window shown (target: <= 1 s).

Starts the real command in a fresh process N times (offscreen unless a display is set), with a fresh
settings folder; the app prints the wall-clock time once the window has been shown and painted and
quits. Also reports which heavy modules the window process had imported (should be none).

    python benchmarks/bench_window_up.py [--runs 5] [--file MODEL]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one_run(file: str | None) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as cfg:
        env = dict(os.environ, TENSORBRIDGE_REPORT_SHOWN="1", TENSORBRIDGE_NO_WARM_WORKERS="1",
                   XDG_CONFIG_HOME=cfg, PYTHONPATH=str(ROOT))
        if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
            env["QT_QPA_PLATFORM"] = "offscreen"
        cmd = [sys.executable, "-m", "app"] + ([file] if file else [])
        t0 = time.time()
        proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("shown ")), None)
    if line is None:
        raise SystemExit(f"the window did not report itself shown (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
    parts = line.split()
    return float(parts[1]) - t0, parts[parts.index("heavy") + 1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--file", help="also open this model on the command line (the job runs in a worker)")
    args = ap.parse_args(argv)
    times = []
    heavy = set()
    for _ in range(args.runs):
        t, h = one_run(args.file)
        times.append(t)
        heavy.add(h)
    print(f"window up: min {min(times):.3f} s, median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {len(times)} runs (target <= 1 s)")
    print(f"heavy modules in the window process: {', '.join(sorted(heavy))}")
    return 0 if min(times) <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
