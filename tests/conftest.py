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


# A built model depends on the builder's source and on the frameworks that wrote it.
_FRAMEWORKS = ("torch", "tensorflow-cpu", "keras", "tf_keras", "onnx", "onnxruntime", "transformers", "tf2onnx",
               "onnx2tf", "onnx2torch", "numpy")


def _framework_versions() -> bytes:
    from importlib import metadata

    out = []
    for name in _FRAMEWORKS:
        try:
            out.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name}=-")
    return ";".join(out).encode()


def _module_dir(module: str) -> Path:
    src = (ROOT / "tests" / "models" / f"{module}.py").read_bytes()
    digest = hashlib.sha256(src + b"\0" + _framework_versions()).hexdigest()[:12]
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


# -- tiers ---------------------------------------------------------------------------------------------
# The fast tier (./dev test -m "not slow") is what needs no worker process, no subprocess and no built
# model: unit tests of the engine's pieces. Everything else is marked slow here, by what it uses.
_SLOW_FIXTURES = {"model_file", "window", "qtbot", "scripted", "bombs", "hf", "tmpfs"}
_SLOW_NAMES = ("subprocess", "run_job", "Job(", "run_cli", "_cli(", "compare_models", "tensorbridge", "mount", "convert(",
               "import torch", "import tensorflow", "transformers", "keras")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") or item.get_closest_marker("fast"):
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        src = _source_with_helpers(item)
        top = str(item.fspath)
        if fixtures & _SLOW_FIXTURES or any(n in src for n in _SLOW_NAMES) or "/security/" in top \
                or "/acceptance/" in top or "/app/" in top:
            item.add_marker(pytest.mark.slow)


def _source_with_helpers(item) -> str:
    """The test's source and that of the module's functions it calls (one level): a helper that runs a
    job makes its callers slow."""
    import inspect

    fn = getattr(item, "function", None)
    if fn is None:
        return ""
    parts = []
    fixture_funcs = []
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info is not None else []):
        fixture_funcs += [d.func for d in defs if getattr(d, "baseid", None) != ""]
    for obj in [fn] + fixture_funcs + [getattr(item.module, n, None) for n in fn.__code__.co_names]:
        if inspect.isfunction(obj) or inspect.isclass(obj):
            try:
                parts.append(inspect.getsource(obj))
            except (OSError, TypeError):
                pass
    return "\n".join(parts)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: needs worker processes, subprocesses or built models")
    config.addinivalue_line("markers", "fast: a unit test (never marked slow)")


# -- no worker outlives its test -------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_leaked_workers():
    """Fail a test that leaves a worker process of its own running (warm spares of a pool that a
    longer-lived fixture owns are not the test's)."""
    import psutil

    me = psutil.Process()

    def workers() -> dict[int, str]:
        out = {}
        for p in me.children(recursive=True):
            try:
                cmd = p.cmdline()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if "converters.jobs.worker" in cmd and "--wait" not in cmd and p.status() != psutil.STATUS_ZOMBIE:
                out[p.pid] = " ".join(cmd)[:160]
        return out

    before = set(workers())
    yield
    import time

    deadline = time.monotonic() + 8
    left = {}
    while time.monotonic() < deadline:
        left = {pid: c for pid, c in workers().items() if pid not in before}
        if not left:
            return
        time.sleep(0.2)
    for pid in left:  # end them, so one leak does not fail every later test
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            pass
    pytest.fail(f"the test left {len(left)} worker process(es) running: {list(left.values())[:2]}")
