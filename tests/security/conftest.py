"""Fixtures of the security tests: the adversarial corpus (built once, cached) and marker checks."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock

from tests.conftest import CACHE, ROOT, build_models

from . import corpus as C

SECURITY_CACHE = CACHE.parent / "security"


def _digest() -> str:
    h = hashlib.sha256()
    for name in ("corpus.py", "mutators.py"):
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:12]


def seed_files() -> dict[str, str]:
    return {"pt2": str(build_models("torch_models") / "cond.pt2"),
            "keras": str(build_models("tf_models") / "mlp.keras"),
            "onnx": str(build_models("onnx_models") / "cnn_legacy.onnx"),
            "savedmodel": str(build_models("tf_models") / "module_savedmodel")}


def build_corpus() -> tuple[dict[str, C.Payload], Path]:
    """Every payload by name, and the folder their markers go to (built once per corpus source)."""
    out = SECURITY_CACHE / f"corpus-{_digest()}"
    markers = out / "markers"
    seeds = seed_files()
    with FileLock(str(out) + ".lock"):
        index = out / "payloads.json"
        if not index.exists():
            out.mkdir(parents=True, exist_ok=True)
            items = C.build_pure(str(out / "pure"), str(markers), seeds)
            env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
            for what in ("build-torch", "build-tf"):
                sub = out / what.split("-")[1]
                proc = subprocess.run([sys.executable, "-m", "tests.security.corpus", what, str(sub), str(markers)],
                                      cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600)
                if proc.returncode != 0:
                    raise RuntimeError(f"building the {what} payloads failed:\n{proc.stderr[-4000:]}")
                items += [C.Payload(**d) for d in json.loads((sub / f"{what}.json").read_text())]
            index.write_text(json.dumps([p.__dict__ for p in items], indent=1))
    return {d["name"]: C.Payload(**d) for d in json.loads(index.read_text())}, markers


@pytest.fixture(scope="session")
def corpus():
    return build_corpus()[0]


@pytest.fixture(scope="session")
def seeds():
    return seed_files()


@contextmanager
def watch_marker(payload: C.Payload):
    """Hold the payload's marker (one test at a time per payload, across xdist workers): it must not exist
    before; ``ran()`` says whether it appeared; it is removed afterwards."""
    if payload.marker is None:
        yield lambda: False
        return
    with FileLock(payload.marker + ".lock"):
        if os.path.exists(payload.marker):
            os.remove(payload.marker)  # a run that died half-way left it behind

        def ran() -> bool:
            return os.path.exists(payload.marker)

        try:
            yield ran
        finally:
            if os.path.exists(payload.marker):
                os.remove(payload.marker)
