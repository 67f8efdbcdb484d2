"""Untrusted PyTorch files stay inert: TorchScript code, forged pickles, shared containers, zip bombs.

Every payload here is live: where it can run code it writes a marker file, and the trusted control
proves it does. The untrusted paths go through the real CLI (a worker process), as a user's would.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from converters.errors import CorruptFile, ResourceLimit, TrustRequired
from converters.formats import load
from converters.safety import pickles
from converters.safety.archives import open_zip
from converters.safety.torchscript import check_torchscript

ROOT = Path(__file__).resolve().parents[2]
TB = [sys.executable, "-m", "app"]


def run_cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(TB + list(args), capture_output=True, text=True, env=env, timeout=timeout)


def one_line_error(proc, path) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err and "\x1b" not in err, err
    assert str(path) in err, err
    return err


# -- TorchScript ------------------------------------------------------------------------------------

def _rewrite_code(src: Path, dst: Path, old: bytes, new: bytes) -> None:
    replaced = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if "/code/" in info.filename and info.filename.endswith(".py") and old in data:
                data = data.replace(old, new)
                replaced += 1
            zout.writestr(info, data)
    assert replaced == 1


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """(plain TorchScript, one whose __setstate__ creates MARKER, one whose forward does)."""
    import torch

    class Stateful(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(4))

        def forward(self, x):
            return x * self.w

        @torch.jit.export
        def __getstate__(self):
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[torch.Tensor, bool]):
            self.w = state[0]
            self.training = state[1]

    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)

        def forward(self, x):
            return torch.relu(self.lin(x))

    d = tmp_path_factory.mktemp("ts")
    marker = d / "MARKER"
    plain = d / "plain.pt"
    torch.jit.script(Plain()).save(str(plain))
    stateful = d / "stateful.pt"
    torch.jit.script(Stateful()).save(str(stateful))
    evil_load = d / "evil_setstate.pt"
    _rewrite_code(stateful, evil_load, b"    self.training = (state)[1]\n",
                  b"    self.training = (state)[1]\n"
                  b"    self.w = torch.add(self.w, torch.sum(torch.from_file(\"" + str(marker).encode() +
                  b"\", True, 10)))\n")
    evil_run = d / "evil_forward.pt"
    _rewrite_code(plain, evil_run, b"    return torch.relu((lin).forward(x, ))\n",
                  b"    _m = torch.sum(torch.from_file(\"" + str(marker).encode() + b"\", True, 4))\n"
                  b"    return torch.add(torch.relu((lin).forward(x, )), _m)\n")
    return plain, stateful, evil_load, evil_run, marker


def test_plain_torchscript_still_opens_with_its_graph(scripted):
    plain = scripted[0]
    check_torchscript(str(plain), trust=False, action="run")
    model = load(str(plain))
    assert model.format == "torchscript"
    assert [n.op_type for n in model.graph.nodes if n.op_type in ("linear", "relu")] == ["linear", "relu"]


def test_setstate_payload_refused_on_inspect_and_live_with_trust(scripted):
    _plain, stateful, evil, _run, marker = scripted
    marker.unlink(missing_ok=True)
    err = one_line_error(run_cli("inspect", str(evil)), evil)
    assert "torch.from_file" in err and "--trust" in err
    # the same file's json form and the window's open task go through the same loader
    one_line_error(run_cli("inspect", str(evil), "--json"), evil)
    assert not marker.exists()
    # even a harmless scripted __setstate__ runs code on load: it needs trust
    with pytest.raises(TrustRequired, match="__setstate__"):
        load(str(stateful))
    proc = run_cli("inspect", str(evil), "--trust")
    assert proc.returncode == 0, proc.stderr
    assert marker.exists(), "the control payload did not run: the test would prove nothing"
    marker.unlink()


def test_forward_payload_refused_before_running(scripted):
    _plain, _stateful, _evil, evil_run, marker = scripted
    marker.unlink(missing_ok=True)
    with pytest.raises(TrustRequired, match="from_file"):
        check_torchscript(str(evil_run), trust=False, action="run")
    one_line_error(run_cli("inspect", str(evil_run)), evil_run)
    assert not marker.exists()
    import torch

    torch.jit.load(str(evil_run))(torch.ones(1, 4))  # the control: running it really writes the file
    assert marker.exists()
    marker.unlink()


def test_foreign_operator_namespaces_refused(scripted, tmp_path):
    plain = scripted[0]
    evil = tmp_path / "custom_op.pt"
    _rewrite_code(plain, evil, b"    return torch.relu(", b"    _s = ops.image.read_file(\"/etc/passwd\")\n"
                  b"    return torch.relu(")
    with pytest.raises(TrustRequired, match="image.read_file"):
        check_torchscript(str(evil), trust=False, action="read")


# -- pickles -----------------------------------------------------------------------------------------

MEMO_BOMB = b"\x80\x04N" + b"r" + struct.pack("<I", 10 ** 9) + b"."  # 9 bytes: LONG_BINPUT 1e9


def test_memo_bomb_is_refused_before_any_unpickler(tmp_path):
    assert len(MEMO_BOMB) == 9
    with pytest.raises(ResourceLimit, match="memo slot 1,000,000,000"):
        pickles.scan_bytes(MEMO_BOMB, path="x.pt")
    bare = tmp_path / "bomb.pt"
    bare.write_bytes(MEMO_BOMB)
    t0 = time.monotonic()
    err = one_line_error(run_cli("inspect", str(bare)), bare)
    assert "memo slot" in err and time.monotonic() - t0 < 60


def _torch_zip_with(tmp_path: Path, name: str, data_pkl: bytes) -> Path:
    import torch

    src = tmp_path / "ok.pt"
    torch.save({"w": torch.ones(3)}, src)
    dst = tmp_path / name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, data_pkl if info.filename.endswith("data.pkl") else zin.read(info.filename))
    return dst


def test_memo_bomb_inside_a_checkpoint_and_inside_torchscript(tmp_path, scripted):
    ckpt = _torch_zip_with(tmp_path, "bomb_ckpt.pt", MEMO_BOMB)
    with pytest.raises(ResourceLimit, match="memo slot"):
        load(str(ckpt))
    ts = tmp_path / "bomb_ts.pt"
    with zipfile.ZipFile(scripted[0]) as zin, zipfile.ZipFile(ts, "w") as zout:
        for info in zin.infolist():
            data = MEMO_BOMB if info.filename.endswith("/data.pkl") else zin.read(info.filename)
            zout.writestr(info, data)
    err = one_line_error(run_cli("inspect", str(ts)), ts)
    assert "memo slot" in err


def test_reduce_payload_message_names_the_call_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Evil(), protocol=2))
    err = one_line_error(run_cli("inspect", str(path)), path)
    assert "system(" in err and str(marker) in err and "--trust" in err
    assert not marker.exists()


def test_self_referencing_and_shared_containers_finish_quickly(tmp_path):
    import torch

    loop: list = []
    loop.extend([loop] * 12)  # a list that holds itself 12 times: 12**20 paths without a visited set
    wide: list = [1]
    for _ in range(6):
        wide = [wide] * 100  # 100**6 items when rendered naively, a few hundred bytes pickled
    path = tmp_path / "walks.pt"
    torch.save({"loop": loop, "hp": wide, "w": torch.ones(2)}, path)
    assert path.stat().st_size < 4096
    t0 = time.monotonic()
    model = load(str(path))
    assert time.monotonic() - t0 < 10
    assert [w.name for w in model.weights] == ["w"]


# -- archives -----------------------------------------------------------------------------------------

def _write_bomb_member(z: zipfile.ZipFile, name: str, nbytes: int) -> None:
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    chunk = bytes(1 << 22)
    with z.open(info, "w", force_zip64=True) as f:
        for _ in range(nbytes // len(chunk)):
            f.write(chunk)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory, scripted):
    """One archive per zip-based format, each with a member that inflates to 512 MiB from ~0.5 MB."""
    import torch

    d = tmp_path_factory.mktemp("bombs")
    out = {}
    ckpt = d / "ckpt.pt"
    torch.save({"w": torch.ones(3)}, ckpt)
    ts = scripted[0]
    for label, src in (("torch.save", ckpt), ("torchscript", ts)):
        dst = d / f"bomb_{label}.pt"
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
            for info in zin.infolist():
                zout.writestr(info, zin.read(info.filename))
            prefix = zin.namelist()[0].split("/", 1)[0]
            _write_bomb_member(zout, f"{prefix}/data/99", 512 << 20)
        out[label] = dst
    keras = d / "bomb.keras"
    with zipfile.ZipFile(keras, "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", '{"class_name": "Sequential", "config": {"layers": []}}')
        _write_bomb_member(z, "model.weights.h5", 512 << 20)
    out["keras"] = keras
    return out


@pytest.mark.parametrize("label", ["torch.save", "torchscript", "keras"])
def test_zip_bombs_are_refused_from_their_declared_sizes(bombs, label):
    path = bombs[label]
    assert path.stat().st_size < 4 << 20
    err = one_line_error(run_cli("inspect", str(path)), path)
    assert "zip bomb" in err


def test_non_utf8_member_names_are_one_line(tmp_path):
    path = tmp_path / "names.pt"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({}))
    raw = bytearray(buf.getvalue())
    # mark every name as UTF-8 (flag bit 11) and make the names invalid UTF-8
    for sig, flag_off, name_off in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        i = raw.find(sig)
        flags = struct.unpack_from("<H", raw, i + flag_off)[0] | 0x800
        struct.pack_into("<H", raw, i + flag_off, flags)
        raw[i + name_off] = 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFile, match="damaged"):
        open_zip(str(path))
    one_line_error(run_cli("inspect", str(path)), path)


def test_fifo_is_refused_not_read(tmp_path):
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    err = one_line_error(run_cli("inspect", str(fifo), timeout=60), fifo)
    assert time.monotonic() - t0 < 30 and ("FIFO" in err or "not a regular file" in err)


def test_a_forged_frame_length_is_refused_before_any_unpickler(tmp_path):
    # PROTO 4, FRAME of 2**62 bytes, then a tiny pickle: CPython's unpickler would reserve the frame
    forged = b"\x80\x04\x95" + struct.pack("<Q", 1 << 62) + b"N."
    with pytest.raises(CorruptFile, match="declares a frame of"):
        pickles.scan_bytes(forged, path="x.pt")
    path = tmp_path / "frame.pt"
    path.write_bytes(forged)
    err = one_line_error(run_cli("inspect", str(path)), path)
    assert "frame" in err
