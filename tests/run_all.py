"""Run the whole suite as two pytest sessions and print one combined closing line.

The window's tests load Qt (QtWebEngine included) into the test process, and many engine tests import
TensorFlow and torch into theirs; the product never has both in one process (frameworks live in
worker processes), and TensorFlow can crash when it is loaded after QtWebEngine has started. So the
engine tests and the window tests each get a process of their own, as in the product.

Usage: python -m tests.run_all [PYTEST ARGS...]   (extra args go to both sessions)
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = [
    ("engine", ["tests", "--ignore=tests/app"]),
    ("window", ["tests/app"]),
]


def _counts(xml_path: Path) -> dict[str, int]:
    out = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError):
        return out
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    for s in suites:
        total = int(s.get("tests", 0))
        failed, errors, skipped = int(s.get("failures", 0)), int(s.get("errors", 0)), int(s.get("skipped", 0))
        out["failed"] += failed
        out["errors"] += errors
        out["skipped"] += skipped
        out["passed"] += total - failed - errors - skipped
    return out


def main(argv: list[str]) -> int:
    totals = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    worst = 0
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in PARTS:
            xml = Path(tmp) / f"{name}.xml"
            print(f"\n===== {name} tests =====", flush=True)
            rc = subprocess.call([sys.executable, "-m", "pytest", *args, f"--junitxml={xml}", *argv], cwd=ROOT)
            c = _counts(xml)
            if rc not in (0, 5) and not (c["failed"] or c["errors"]):
                c["errors"] += 1  # the session itself died (a crash outside any test)
            for k in totals:
                totals[k] += c[k]
            worst = max(worst, 0 if rc == 5 else rc)
    failed = totals["failed"] + totals["errors"]
    print(f"\nwhole suite in {time.monotonic() - t0:.0f} s:")
    print(f"{totals['passed']} passed, {failed} failed, {totals['skipped']} skipped", flush=True)
    if totals["passed"] == 0 and failed == 0:
        return 5
    return 1 if failed or worst else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
