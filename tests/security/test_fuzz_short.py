"""A short fuzz run (~200 cases) through the window's open path: no bug, crash, hang, memory blowup or
code execution. The long run is ``benchmarks/fuzz.py --cases 10000``."""
from __future__ import annotations

import os
import random
import time
import zipfile

import pytest

from . import harness as H
from . import mutators as M
from .corpus import fuzz_payload_seeds

CASES = int(os.environ.get("TENSORBRIDGE_FUZZ_CASES", "200"))


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("fuzz")
    marker_dir = str(work / "markers")
    os.makedirs(marker_dir)
    seeds = H.model_seeds() + fuzz_payload_seeds(str(work / "payload-seeds"), marker_dir)
    fz = H.Fuzzer(seeds, work=str(work), timeout=20, mem_mb=2048, run_seed=0, marker_dir=marker_dir)
    t0 = time.monotonic()
    try:
        cases = fz.run(CASES)
    finally:
        fz.close()
    return cases, time.monotonic() - t0, seeds


def test_short_fuzz_has_no_bad_outcome(fuzz_run):
    cases, wall, _ = fuzz_run
    assert len(cases) == CASES
    bad = [c for c in cases if c.result["outcome"] in H.BAD]
    report = "\n".join(f"{c.result['outcome']}: case {c.id} {c.seed.name} + {c.mutator}: "
                       f"{c.result.get('detail', '')[:300]}\n    reproduce: sh {c.dir}/repro.sh" for c in bad)
    assert not bad, f"{len(bad)} bad outcomes in {CASES} cases ({wall:.0f} s):\n{H.format_table(H.table_rows(cases))}\n{report}"


def test_short_fuzz_reaches_every_format(fuzz_run):
    cases, _, seeds = fuzz_run
    formats = {s.fmt for s in seeds}
    assert formats >= set(H.FORMATS), set(H.FORMATS) - formats
    seen = {c.seed.fmt for c in cases}
    assert seen == formats
    # mutations must not be so destructive that nothing parses: some cases still open
    assert sum(c.result["outcome"] == "ok" for c in cases) >= CASES // 20


def _hang_task(params, ctx):
    while True:
        time.sleep(1)


def _crash_task(params, ctx):
    import signal
    os.kill(os.getpid(), signal.SIGSEGV)


def _alloc_task(params, ctx):
    return {"n": len(bytearray(3 * 1024**3))}


def _spawn_task(params, ctx):
    os.system("true")
    return {}


def _ugly_error_task(params, ctx):
    raise KeyError(params["path"])


def test_harness_classifies_hang_crash_memory_spawn_and_bug(tmp_path):
    """The harness itself: each failure kind is seen as what it is (tasks run in the same forked child)."""
    tasks = {"hang": "_hang_task", "crash": "_crash_task", "memory": "_alloc_task", "code_exec": "_spawn_task",
             "bug": "_ugly_error_task"}
    srv = H.Server("onnx", str(tmp_path))
    try:
        for expected, fn in tasks.items():
            case_dir = tmp_path / expected
            case_dir.mkdir()
            (case_dir / "m.onnx").write_bytes(b"\x08\x07")
            res = srv.run({"id": 0, "path": str(case_dir / "m.onnx"), "dir": str(case_dir), "timeout": 3,
                           "mem_mb": 512, "task": f"tests.security.test_fuzz_short:{fn}"})
            assert res["outcome"] == expected, (fn, res)
        ok_dir = tmp_path / "fine"
        ok_dir.mkdir()
        res = srv.run({"id": 0, "path": str(ok_dir / "missing.onnx"), "dir": str(ok_dir), "timeout": 10,
                       "mem_mb": 512})
        assert res["outcome"] == "clean", res
    finally:
        srv.close()


def test_zip_bomb_member_inflates_to_gibs_from_a_few_mb(tmp_path):
    stream, crc = M.bomb_stream(H.ROOT / "tests" / ".cache" / "security")
    assert len(stream) < 8 * 1024 * 1024
    seed = tmp_path / "seed.zip"
    with zipfile.ZipFile(seed, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}.")
    data = M.ZipMutators(str(H.ROOT / "tests" / ".cache" / "security"), M.mutate_member).bomb(
        seed.read_bytes(), random.Random(0))
    (tmp_path / "bomb.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "bomb.zip") as z:
        (info,) = z.infolist()
        assert info.file_size == M.BOMB_BYTES >= 3 * 1024**3
        assert info.compress_size < 8 * 1024 * 1024
