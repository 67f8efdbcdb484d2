"""Content-based detection, bad input, and the `tensorbridge inspect` command in a real subprocess."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from converters.errors import CorruptFile, UnsupportedFormat
from converters.formats import detect, load

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"
TB = [sys.executable, "-m", "app"]


def run_cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(TB + list(args), capture_output=True, text=True, env=env, timeout=300, **kw)


def test_detection_ignores_the_extension(tmp_path):
    renamed = tmp_path / "model.pth"           # an ONNX file with a torch extension
    shutil.copy(SAMPLE, renamed)
    assert detect(str(renamed)) == "onnx"
    assert load(str(renamed)).format == "onnx"


@pytest.mark.parametrize("content,name,err,text", [
    (b"", "empty.onnx", CorruptFile, "empty"),
    (b"hello world, not a model", "notes.txt", UnsupportedFormat, "not a model format"),
    (b"\x00\x01garbage" * 10, "weights.pt", CorruptFile, "does not look like"),
    (b"PK\x03\x04truncated", "model.keras", CorruptFile, "archive"),
])
def test_bad_files_get_one_line_errors(tmp_path, content, name, err, text):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(err) as ei:
        load(str(p))
    msg = ei.value.message
    assert str(p) in msg and text in msg and "\n" not in msg


def test_truncated_onnx(tmp_path):
    p = tmp_path / "cut.onnx"
    p.write_bytes(SAMPLE.read_bytes()[:2000])
    with pytest.raises(CorruptFile) as ei:
        load(str(p))
    assert "cut.onnx" in ei.value.message


def test_folder_that_is_not_a_savedmodel(tmp_path):
    with pytest.raises(UnsupportedFormat) as ei:
        load(str(tmp_path))
    assert "folder" in ei.value.message and "saved_model.pb" in ei.value.message


def test_cli_inspect_text_and_json():
    r = run_cli("inspect", str(SAMPLE))
    assert r.returncode == 0, r.stderr
    assert "format:     onnx" in r.stdout
    assert "image 1×3×32×32 float32" in r.stdout
    r = run_cli("inspect", str(SAMPLE), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format"] == "onnx" and d["node_count"] == len(d["graph"]["nodes"]) > 5
    assert d["inputs"][0] == {"name": "image", "dtype": "float32", "shape": [1, 3, 32, 32]}
    node = d["graph"]["nodes"][0]
    assert {"name", "op_type", "scope", "inputs", "outputs"} <= set(node)
    shapes = {v["name"]: v["shape"] for v in d["graph"]["values"]}
    assert all(shapes.get(o) for n in d["graph"]["nodes"] for o in n["outputs"])


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(SAMPLE.read_bytes()[:1500])
    r = run_cli("inspect", str(bad))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.onnx" in lines[0] and "Traceback" not in r.stderr
    r = run_cli("inspect", str(tmp_path / "missing.onnx"))
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run_cli("--debug", "inspect", str(bad))
    assert r.returncode == 2 and "Traceback" in r.stderr  # --debug shows the details


def test_cli_inspect_traces_a_trusted_module_with_input_shapes(model_file):
    mod = model_file("torch_models", "cnn_module.pt")
    r = run_cli("inspect", mod.path, "--json")
    assert r.returncode == 2 and "--trust" in r.stderr          # refused without trust
    r = run_cli("inspect", mod.path, "--trust", "--input-shape", "1,3,32,32", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["format"] == "torch.export"
    assert d["node_count"] == model_file("torch_models", "cnn.pt2").facts["node_count"]
    assert d["inputs"][0]["shape"] == [1, 3, 32, 32]
    r = run_cli("inspect", mod.path, "--trust", "--input-shape", "1,a,3")
    assert r.returncode == 2 and "--input-shape" in r.stderr
