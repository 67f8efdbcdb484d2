"""A trusted torch.save(model) from a user's script opens where the user's own module lives."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TB = [sys.executable, "-m", "app"]

NET = ("import torch\n\n\nclass MyNet(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
       "        self.fc = torch.nn.Linear(4, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n")
TRAIN = ("import torch\nfrom mynet import MyNet\n\n\nclass Local(torch.nn.Module):\n    def __init__(self):\n"
         "        super().__init__()\n        self.fc = torch.nn.Linear(4, 2)\n\n\n"
         "torch.save(MyNet(), 'ckpt/model.pt')\ntorch.save(MyNet(), 'beside/model.pt')\n"
         "torch.save(Local(), 'ckpt/local.pt')\n")


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TENSORBRIDGE_CALLER_CWD", None)
    return subprocess.run(TB + list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_trusted_pickle_finds_the_users_module(tmp_path):
    proj = tmp_path / "proj"
    (proj / "ckpt").mkdir(parents=True)
    (proj / "beside").mkdir()
    (proj / "mynet.py").write_text(NET)
    (proj / "beside" / "mynet.py").write_text(NET)
    (proj / "train.py").write_text(TRAIN)
    subprocess.run([sys.executable, "train.py"], cwd=proj, check=True, timeout=300)
    # the folder the user works in (the worker itself runs in its job folder)
    ok = _cli("inspect", "ckpt/model.pt", "--trust", cwd=proj)
    assert ok.returncode == 0, ok.stderr
    assert "format:     torch.module" in ok.stdout and "parameters: 10" in ok.stdout
    # the checkpoint's own folder, from anywhere
    other = tmp_path / "elsewhere"
    other.mkdir()
    beside = _cli("inspect", str(proj / "beside" / "model.pt"), "--trust", cwd=other)
    assert beside.returncode == 0, beside.stderr
    # neither: one line that says where it looked
    missing = _cli("inspect", str(proj / "ckpt" / "model.pt"), "--trust", cwd=other)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"tensorbridge: error: {proj / 'ckpt' / 'model.pt'}: the pickled object needs the Python module 'mynet', "
        f"which is not in {proj / 'ckpt'} or {other} nor installed; put it there, add its folder to PYTHONPATH, "
        f"or save a state_dict instead")
    # a class defined in the saving script itself
    local = _cli("inspect", "ckpt/local.pt", "--trust", cwd=proj)
    assert local.returncode == 2 and "was defined in the script that saved it (__main__)" in local.stderr


def test_export_failure_is_one_clean_line_with_the_cause(tmp_path):
    (tmp_path / "bad.py").write_text(
        "import torch\n\n\nclass Bad(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.fc = torch.nn.Linear(768, 4)\n\n    def forward(self, x):\n"
        "        return self.fc(x.view(-1, 768))\n")
    subprocess.run([sys.executable, "-c", "import torch, bad; torch.save(bad.Bad(), 'bad.pt')"], cwd=tmp_path,
                   check=True, timeout=300)
    proc = _cli("convert", "bad.pt", "--to", "onnx", "--trust", "--input-shape", "x:1,2048", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"tensorbridge: error: {tmp_path / 'bad.pt'}: torch.onnx.export failed: "
                                   f"RuntimeError: shape '[-1, 768]' is invalid for input of size 2048")
    assert not list(tmp_path.glob("bad*.onnx*"))
