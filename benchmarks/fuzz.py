"""Fuzz the window's open path: mutated seeds of every format, one limited child process per case.

    .venv/bin/python benchmarks/fuzz.py --cases 10000 [--seed N] [--formats onnx,pt2,...] [--json]
    .venv/bin/python benchmarks/fuzz.py --replay 1234 --seed N     # regenerate case 1234 and run it again

Prints one row per format: cases, ok, clean errors, bugs, crashes, hangs, over memory, code executions,
time. Failing cases are kept (with ``repro.sh``) under the work folder it prints. See
tests/security/harness.py for the outcome classes and why it uses fork servers.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.security import harness as H  # noqa: E402
from tests.security.corpus import fuzz_payload_seeds  # noqa: E402


def seeds_for(formats: list[str] | None, work: str) -> tuple[list[H.Seed], str]:
    marker_dir = os.path.join(work, "markers")
    os.makedirs(marker_dir, exist_ok=True)
    seeds = H.model_seeds() + fuzz_payload_seeds(os.path.join(work, "payload-seeds"), marker_dir)
    if formats:
        seeds = [s for s in seeds if s.fmt in formats]
        if not seeds:
            raise SystemExit(f"no seeds for {formats}; formats: {', '.join(H.FORMATS)}")
    return seeds, marker_dir


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="run seed: the same seed makes the same cases")
    p.add_argument("--formats", default="", help=f"comma-separated rows to fuzz: {', '.join(H.FORMATS)}")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds per case (default 20)")
    p.add_argument("--memory", type=int, default=2048, help="MiB per case above the server's own (default 2048)")
    p.add_argument("--work", default=None, help="work folder (default: a new temp folder)")
    p.add_argument("--confirm", type=int, default=10,
                   help="re-run up to N crash/hang/memory cases in a fresh worker (the real open job)")
    p.add_argument("--json", action="store_true", help="print the table and failures as JSON")
    p.add_argument("--replay", type=int, default=None, metavar="ID", help="regenerate and run one case")
    args = p.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()] or None
    import tempfile
    work = args.work or tempfile.mkdtemp(prefix="tensorbridge-fuzz-")
    seeds, marker_dir = seeds_for(formats, work)

    if args.replay is not None:
        planned = H.plan(seeds, args.replay + 1, args.seed)[args.replay]
        fz = H.Fuzzer(seeds, work=work, timeout=args.timeout, mem_mb=args.memory, run_seed=args.seed,
                      marker_dir=marker_dir)
        case = H.make_case(*planned, args.seed, work, fz.table)
        print(f"case {case.id}: {case.seed.name} + {case.mutator} -> {case.path}")
        res = H.replay(case.path, timeout=args.timeout, mem_mb=args.memory)
        print(json.dumps(res, indent=1))
        return 0 if res["outcome"] in ("ok", "clean") else 1

    t0 = time.time()
    last = [0.0]

    def progress(done, total, case):
        now = time.time()
        if not args.json and (now - last[0] > 10 or done == total):
            last[0] = now
            print(f"  {done}/{total} cases, {now - t0:.0f} s", file=sys.stderr, flush=True)

    fz = H.Fuzzer(seeds, work=work, timeout=args.timeout, mem_mb=args.memory, run_seed=args.seed,
                  marker_dir=marker_dir, progress=progress)
    try:
        cases = fz.run(args.cases)
    finally:
        fz.close()
    wall = time.time() - t0
    failures = [c for c in cases if c.result.get("outcome") in H.BAD]
    confirmed = {}
    for c in [c for c in failures if c.result["outcome"] in ("crash", "hang", "memory")][:args.confirm]:
        confirmed[c.id] = H.confirm(c)
    rows = H.table_rows(cases)
    fail_list = [{"id": c.id, "format": c.seed.fmt, "seed": c.seed.name, "mutator": c.mutator,
                  "outcome": c.result["outcome"], "detail": c.result.get("detail"), "saved": c.result.get("saved"),
                  "repro": str(Path(c.dir) / "repro.sh"), "fresh_worker": confirmed.get(c.id)} for c in failures]
    if args.json:
        json.dump({"rows": rows, "wall_seconds": round(wall, 1), "work": work, "failures": fail_list,
                   "seed": args.seed}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(H.format_table(rows, wall))
        print(f"work folder: {work}")
        for f in fail_list:
            print(f"{f['outcome']:>9}  case {f['id']} {f['seed']} + {f['mutator']}: {str(f['detail'])[:240]}")
            print(f"           reproduce: sh {f['repro']}" + (f"  [{f['fresh_worker']}]" if f["fresh_worker"] else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)
