"""Smoke test of a built bundle, through its executables only (no Python of the checkout):

    python packaging/smoke.py dist/tensorbridge

``inspect`` the sample, convert it to TFLite and to a torch.export archive, ``compare`` the sample with
the TFLite file (the conversions and the comparison run in ``tensorbridge-worker``), and the window
offscreen (``--screenshot``). Runs in a temporary folder with a temporary home; prints one line per
step with its time and exits non-zero at the first failure.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv: list[str]) -> int:
    bundle = os.path.abspath(argv[1] if len(argv) > 1 else os.path.join(ROOT, "dist", "tensorbridge"))
    exe = os.path.join(bundle, "tensorbridge")
    for name in ("tensorbridge", "tensorbridge-worker"):
        if not os.access(os.path.join(bundle, name), os.X_OK):
            print(f"smoke: {os.path.join(bundle, name)} is missing: build the bundle first (./dev bundle)")
            return 2
    with tempfile.TemporaryDirectory(prefix="tensorbridge-smoke-") as tmp:
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        sample = shutil.copy(os.path.join(ROOT, "resources", "samples", "tiny_cnn.onnx"), tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "XDG_"))}
        env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, "config"), XDG_STATE_HOME=os.path.join(home, "state"),
                   XDG_DATA_HOME=os.path.join(home, "data"), QT_QPA_PLATFORM="offscreen",
                   QTWEBENGINE_DISABLE_SANDBOX="1", TENSORBRIDGE_NO_WARM_WORKERS="1")
        tfl = os.path.join(tmp, "tiny_cnn.tflite")
        pt2 = os.path.join(tmp, "tiny_cnn.pt2")
        shot = os.path.join(tmp, "window.png")
        steps = [
            ("inspect", [exe, "inspect", sample], lambda out: "onnx" in out.lower()),
            ("convert onnx -> tflite", [exe, "convert", sample, "--to", "tflite", "-o", tfl],
             lambda out: os.path.getsize(tfl) > 1000),
            ("convert onnx -> torch", [exe, "convert", sample, "--to", "torch", "-o", pt2],
             lambda out: os.path.getsize(pt2) > 1000),
            ("inspect the .pt2", [exe, "inspect", pt2], lambda out: "torch" in out.lower()),
            ("compare onnx with tflite", [exe, "compare", sample, tfl], lambda out: True),
            ("window --screenshot", [exe, "--screenshot", shot, sample], lambda out: os.path.getsize(shot) > 20_000),
        ]
        for name, cmd, ok in steps:
            t0 = time.monotonic()
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
            took = time.monotonic() - t0
            out = proc.stdout + proc.stderr
            passed = proc.returncode == 0
            try:
                passed = passed and ok(out)
            except OSError:
                passed = False
            print(f"smoke: {'ok  ' if passed else 'FAIL'} {name} ({took:.1f} s)", flush=True)
            if not passed:
                print(f"  exit {proc.returncode}; last output:\n" + "\n".join("  " + line for line in out.splitlines()[-25:]))
                return 1
        keep = os.environ.get("TENSORBRIDGE_SMOKE_SHOT")
        if keep:
            shutil.copy(shot, keep)
    print("smoke: the bundle works")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
