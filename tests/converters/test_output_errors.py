"""A conversion that cannot write its output names the output and the reason, never a staging folder."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"
TB = [sys.executable, "-m", "app"]


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (as CI does, as root); yields a function (options) -> mount point."""
    mounts = []

    def mount(opts: str) -> Path:
        point = tmp_path / f"mnt{len(mounts)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()[:80]}); needs root")
        mounts.append(point)
        return point

    yield mount
    for m in mounts:
        subprocess.run(["umount", str(m)], capture_output=True)


def _convert(out: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(TB + ["convert", str(SAMPLE), "--to", "torch", "-o", str(out)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_full_disk_names_the_output(tmpfs):
    point = tmpfs("size=64k")
    out = point / "model.pt2"
    proc = _convert(out)
    assert proc.returncode == 2
    err = proc.stderr.strip()  # the error is the only line: no progress lines before it
    assert err == (f"tensorbridge: error: {out}: cannot be written: the disk holding {point} is full; free some "
                   f"space there or choose another output folder with -o")
    assert os.listdir(point) == []  # nothing partial left


def test_read_only_folder_names_the_output(tmpfs):
    point = tmpfs("size=1m,ro")
    out = point / "model.pt2"
    proc = _convert(out)
    assert proc.returncode == 2
    err = proc.stderr.strip()  # the error is the only line: no progress lines before it
    assert err == (f"tensorbridge: error: {out}: cannot be written: {point} is on a read-only file system; "
                   f"choose another output folder with -o")
    assert ".partial" not in err
