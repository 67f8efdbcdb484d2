"""Shared fixtures. Models are built once per test session in subprocesses (see tests/models)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("TENSORBRIDGE_TEST_CACHE", ROOT / "tests" / ".cache" / "models"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _module_dir(module: str) -> Path:
    src = (ROOT / "tests" / "models" / f"{module}.py").read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:12]
    return CACHE / f"{module}-{digest}"


def build_models(module: str) -> Path:
    """Build (once, shared across xdist workers) every model of tests/models/<module>.py; return the folder."""
    out = _module_dir(module)
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "facts.json").exists():
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            proc = subprocess.run([sys.executable, "-m", "tests.models.build", module, str(out)],
                                  cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0 and not (out / "facts.json").exists():
                raise RuntimeError(f"building {module} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-6000:])
    return out


class ModelFile:
    """A built model: ``.path`` and ``.facts`` (what the builder says the model is)."""

    def __init__(self, module: str, name: str):
        folder = build_models(module)
        facts = json.loads((folder / "facts.json").read_text())
        self.path = str(folder / name)
        self.facts = facts.get(name, {})
        if "build_error" in self.facts:
            raise RuntimeError(f"model {name} failed to build:\n{self.facts['build_error']}")

    def __repr__(self) -> str:
        return f"ModelFile({self.path})"


@pytest.fixture(scope="session")
def model_file():
    """``model_file("torch_models", "cnn.pt2")`` -> ModelFile, building the module's models on first use."""
    cache: dict = {}

    def get(module: str, name: str) -> ModelFile:
        key = (module, name)
        if key not in cache:
            cache[key] = ModelFile(module, name)
        return cache[key]

    return get
