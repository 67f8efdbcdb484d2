"""Hostile files stay inert on every surface: inspect (CLI), the window's open job, compare and convert.

Each code-execution payload writes a marker file if it ever runs; untrusted, no marker may appear and the
outcome is a one-line error naming the file (or a clean, inert result). With ``--trust`` the pickle and
TorchScript payloads DO write their marker: the control that proves each payload is live. Exhaustion
payloads (memo bombs, self-referencing and exponentially shared pickles, FIFOs, links to /dev/zero) must
end quickly inside the fuzz harness's time and memory limits.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from converters.jobs import JobFailed, run_job

from .conftest import ROOT, watch_marker
from .harness import _message_problem

TB = str(ROOT / ".venv" / "bin" / "tensorbridge")
if not os.path.exists(TB):
    TB = None

EXEC_INSPECT = ["pickle_os_system.pt", "pickle_exec.pt", "pickle_popen.pt", "pickle_copyreg.pt", "pickle_partial.pt",
                "pickle_nested_dict.pth", "zip_data_pkl.pt", "zip_partial.pt", "legacy_exec.pt", "hparams_exec.ckpt",
                "ts_setstate.pt", "ts_forward.pt", "pt2_sample_inputs.pt2", "pt2_guards.pt2", "pt2_sympy.pt2",
                "lambda.keras", "lambda.h5", "keras_modules.keras", "writefile_savedmodel"]
# compare and convert run a model: every loader path once (the pickle chains share one unpickler)
EXEC_RUN = ["pickle_nested_dict.pth", "zip_data_pkl.pt", "legacy_exec.pt", "hparams_exec.ckpt", "ts_setstate.pt",
            "ts_forward.pt", "pt2_sample_inputs.pt2", "pt2_guards.pt2", "pt2_sympy.pt2", "lambda.keras", "lambda.h5",
            "keras_modules.keras", "writefile_savedmodel"]
# --trust runs what the file holds when the file needs it: payloads that are the whole object
TRUST_CONTROLS = ["pickle_os_system.pt", "pickle_exec.pt", "pickle_popen.pt", "pickle_copyreg.pt", "pickle_partial.pt",
                  "zip_partial.pt", "ts_setstate.pt", "ts_forward.pt"]
# every pickle payload is live under the framework's own trusted loader (torch.load(weights_only=False))
PICKLES = ["pickle_os_system.pt", "pickle_exec.pt", "pickle_popen.pt", "pickle_copyreg.pt", "pickle_partial.pt",
           "pickle_nested_dict.pth", "zip_data_pkl.pt", "zip_partial.pt", "legacy_exec.pt", "hparams_exec.ckpt"]
SHAPES = {"ts_forward.pt": ["--shape", "x=1x4"], "ts_setstate.pt": ["--shape", "x=1x4"]}
EXHAUST = ["memo_bomb.pt", "zip_memo_bomb.pt", "self_ref.pt", "doubling.pt", "deep_nest.pt"]
FS = ["pt2_zip_slip.pt2", "keras_zip_slip.keras"]


def cli(*args, cwd, timeout=180, env=None):
    cmd = [TB, *args] if TB else [sys.executable, "-m", "app", *args]
    e = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(cwd), env=e, timeout=timeout)
    proc.seconds = time.monotonic() - t0
    return proc


def assert_one_line(msg: str, path: str) -> None:
    msg = msg.strip()
    problem = _message_problem(msg, path)
    assert problem is None, f"{problem}: {msg!r}"


def assert_cli_clean(proc, path: str, ok_codes=(0,)) -> None:
    """Exit 0 (or an allowed code) with a result, or exit 2 with one line on stderr that names the file."""
    if proc.returncode in ok_codes:
        return
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
    # progress lines ("  40% 1/2 ...") may come first; the error itself is one line, the last one
    lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("tensorbridge: error")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"not one error line: {proc.stderr[-3000:]!r}"
    assert_one_line(errors[0], path)


def open_job(path: str, timeout: float = 120, trust: bool = False) -> tuple[dict | None, str | None]:
    """The window's open job in a fresh worker: (result, None) or (None, one-line error)."""
    try:
        result, job = run_job("open", {"path": path, "trust": trust}, timeout=timeout)
        job.cleanup()
        return result, None
    except JobFailed as exc:
        return None, str(exc)


def harness_replay(path: str, timeout: float = 30, mem_mb: int = 2048) -> dict:
    """The open path in the fuzz harness's limited child: outcome ok/clean/bug/crash/hang/memory."""
    proc = subprocess.run([sys.executable, "-m", "tests.security.harness", "replay", path], capture_output=True,
                          text=True, cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=timeout + 120)
    out = proc.stdout[proc.stdout.index("{"):] if "{" in proc.stdout else ""
    assert out, f"replay printed nothing: {proc.stderr[-3000:]}"
    return json.loads(out)


# ---- code execution ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXEC_INSPECT)
def test_inspect_runs_no_payload(corpus, name, tmp_path):
    p = corpus[name]
    with watch_marker(p) as ran:
        proc = cli("inspect", p.path, cwd=tmp_path)
        assert not ran(), f"inspect ran the payload of {name}: {proc.stdout[-500:]} {proc.stderr[-500:]}"
        assert_cli_clean(proc, p.path)


@pytest.mark.parametrize("name", EXEC_INSPECT)
def test_open_job_runs_no_payload(corpus, name):
    p = corpus[name]
    with watch_marker(p) as ran:
        result, error = open_job(p.path)
        assert not ran(), f"the open job ran the payload of {name}"
        if error is not None:
            assert_one_line(error, p.path)
        else:
            assert result.get("pack_dir"), result


@pytest.mark.parametrize("name", EXEC_RUN)
def test_compare_runs_no_payload(corpus, name, tmp_path):
    p = corpus[name]
    with watch_marker(p) as ran:
        proc = cli("compare", p.path, p.path, *SHAPES.get(name, []), cwd=tmp_path)
        assert not ran(), f"compare ran the payload of {name}: {proc.stdout[-800:]} {proc.stderr[-800:]}"
        assert_cli_clean(proc, p.path, ok_codes=(0, 1))


@pytest.mark.parametrize("name", EXEC_RUN)
def test_convert_runs_no_payload(corpus, name, tmp_path):
    p = corpus[name]
    with watch_marker(p) as ran:
        proc = cli("convert", p.path, "--to", "onnx", "-o", str(tmp_path / "out.onnx"), cwd=tmp_path, timeout=300)
        assert not ran(), f"convert ran the payload of {name}: {proc.stdout[-800:]} {proc.stderr[-800:]}"
        assert_cli_clean(proc, p.path)


@pytest.mark.parametrize("name", TRUST_CONTROLS)
def test_trust_runs_the_payload(corpus, name, tmp_path):
    """The control: the payload is live, and --trust is what lets it run."""
    p = corpus[name]
    with watch_marker(p) as ran:
        if p.trust_runs == "compare":
            proc = cli("compare", p.path, p.path, "--trust", *SHAPES.get(name, []), cwd=tmp_path)
        else:
            proc = cli("inspect", p.path, "--trust", cwd=tmp_path)
        deadline = time.monotonic() + 5  # a Popen payload's child may still be finishing
        while not ran() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ran(), f"--trust did not run the payload of {name} (exit {proc.returncode}): {proc.stderr[-1500:]}"


def test_pickle_payloads_are_live_under_torch_load(corpus, tmp_path):
    """The control for every pickle payload, nested ones included: torch's trusted loader runs it."""
    for name in PICKLES:
        p = corpus[name]
        with watch_marker(p) as ran:
            code = f"import torch, time; torch.load({p.path!r}, weights_only=False); time.sleep(0.3)"
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(tmp_path),
                                  timeout=120)
            assert ran(), f"{name} did not run under torch.load: {proc.stderr[-1500:]}"


def test_object_npy_inputs_are_not_unpickled(corpus, seeds, tmp_path):
    from .corpus import Evil_npy

    evil, marker = Evil_npy(tmp_path)
    proc = cli("compare", seeds["onnx"], seeds["onnx"], "--inputs", evil, cwd=tmp_path)
    assert not os.path.exists(marker), "compare unpickled the object array of --inputs"
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-1000:])
    assert_one_line(proc.stderr.strip().splitlines()[-1], evil)


# ---- files outside the model ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", FS)
def test_zip_slip_members_write_nothing(corpus, name, tmp_path):
    p = corpus[name]
    with watch_marker(p) as ran:
        cli("inspect", p.path, cwd=tmp_path)
        open_job(p.path)
        proc = cli("convert", p.path, "--to", "onnx", "-o", str(tmp_path / "out.onnx"), cwd=tmp_path, timeout=300)
        assert not ran(), f"a member of {name} was extracted outside its folder"
        assert_cli_clean(proc, p.path)


def _savedmodel_copy(seeds, tmp_path) -> Path:
    dst = tmp_path / "sm"
    shutil.copytree(seeds["savedmodel"], dst)
    return dst


def test_savedmodel_symlinks_out_of_the_folder_are_not_followed(seeds, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN-5a1b3c-secret " * 100)
    sm = _savedmodel_copy(seeds, tmp_path)
    idx = sm / "variables" / "variables.index"
    idx.unlink()
    idx.symlink_to(secret)
    result, error = open_job(str(sm), timeout=60)
    text = json.dumps(result) if result else error
    assert "TOKEN-5a1b3c" not in text
    if error:
        assert_one_line(error, str(sm))
    proc = cli("inspect", str(sm), "--json", cwd=tmp_path)
    assert "TOKEN-5a1b3c" not in proc.stdout + proc.stderr
    assert_cli_clean(proc, str(sm))


def test_savedmodel_pb_linked_to_dev_zero_ends_quickly(seeds, tmp_path):
    sm = _savedmodel_copy(seeds, tmp_path)
    (sm / "saved_model.pb").unlink()
    (sm / "saved_model.pb").symlink_to("/dev/zero")
    res = harness_replay(str(sm))
    assert res["outcome"] in ("ok", "clean"), res
    assert res["seconds"] < 20, res


@pytest.mark.parametrize("kind", ["saved_model.pb", "model.onnx"])
def test_fifo_named_like_a_model_ends_quickly(seeds, tmp_path, kind):
    if kind == "saved_model.pb":
        sm = _savedmodel_copy(seeds, tmp_path)
        (sm / "saved_model.pb").unlink()
        os.mkfifo(sm / "saved_model.pb")
        target = str(sm)
    else:
        os.mkfifo(tmp_path / "model.onnx")
        target = str(tmp_path / "model.onnx")
    t0 = time.monotonic()
    result, error = open_job(target, timeout=60)
    assert time.monotonic() - t0 < 30, "the open job waited on a FIFO"
    assert error is not None, result
    assert_one_line(error, target)
    proc = cli("inspect", target, cwd=tmp_path, timeout=90)
    assert proc.seconds < 30
    assert_cli_clean(proc, target, ok_codes=())


# ---- exhaustion ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXHAUST)
def test_exhaustion_payloads_end_within_limits(corpus, name, tmp_path):
    p = corpus[name]
    res = harness_replay(p.path, timeout=30, mem_mb=1024)
    assert res["outcome"] in ("ok", "clean"), res
    proc = cli("inspect", p.path, cwd=tmp_path, timeout=120)
    assert_cli_clean(proc, p.path)
    assert proc.seconds < 60


def test_memo_bomb_is_nine_bytes(corpus):
    assert os.path.getsize(corpus["memo_bomb.pt"].path) == 9
