"""The engine's tables name only modules that exist, and every table derives from the format registry."""
from __future__ import annotations

import importlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from converters import bundled
from converters.formats import READERS, registry
from converters.formats.detect import FAMILIES
from converters.jobs import family_of
from converters.jobs.tasks import TASKS
from converters.routes.planner import HOPS, _FAMILY_KIND
from converters.runners import RUNNERS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", bundled.modules())
def test_every_module_a_table_names_imports(module):
    mod = importlib.import_module(module)
    for spec in [f.reader for f in registry.FORMATS] + [r for _, r in RUNNERS.values()] + list(TASKS.values()):
        m, attr = spec.split(":")
        if m == module:
            assert callable(getattr(mod, attr)), spec
    if module in {f"converters.routes.{h.name}" for h in HOPS}:
        assert callable(getattr(mod, "run", None)), f"{module} has no run()"


def test_the_bundle_ships_every_module_a_table_names():
    """packaging/tensorbridge.spec takes its hidden imports from converters.bundled.modules()."""
    mods = set(bundled.modules())
    assert set(registry.modules()) <= mods
    assert {spec.split(":")[0] for spec in TASKS.values()} <= mods
    assert {f"converters.routes.{h.name}" for h in HOPS} <= mods
    assert {"converters.jobs.worker", *bundled.CLI_PLUGINS} <= mods
    spec = (ROOT / "packaging" / "tensorbridge.spec").read_text()
    assert "hiddenimports = modules() + framework_modules()" in spec


def test_tables_derive_from_the_registry():
    ids = [f.id for f in registry.FORMATS]
    assert list(FAMILIES) == ids
    assert READERS == {f.id: f.reader for f in registry.FORMATS}
    assert RUNNERS == {f.id: f.runner for f in registry.FORMATS if f.runner}
    assert _FAMILY_KIND == {f.id: f.kind for f in registry.FORMATS if f.kind != "weights"}
    assert {i: family_of(i) for i in ids} == {f.id: f.family for f in registry.FORMATS}


def test_the_mime_types_cover_every_registered_extension():
    tree = ET.parse(ROOT / "packaging" / "tensorbridge-mime.xml")
    globs = {g.get("pattern") for g in tree.iter() if g.tag.endswith("glob")}
    missing = [e for e in registry.extensions()
               if e.startswith(".") and e not in registry.GENERIC_EXTENSIONS and f"*{e}" not in globs]
    assert missing == []


def test_task_params_know_their_task_and_read_strictly():
    from converters.jobs.protocol import CompareParams, ConvertParams, params_for

    for name in ("open", "load", "tensor", "convert", "devices", "attach_architecture", "compare"):
        assert name in TASKS
    p = ConvertParams("/m.onnx", "tflite", options={"fp16": True})
    assert p.to_dict() == {"src": "/m.onnx", "to": "tflite", "overwrite": False, "options": {"fp16": True}}
    assert params_for("convert", p.to_dict()) == p
    with pytest.raises(ValueError, match="unknown parameter"):
        params_for("compare", {"a": "/a", "b": "/b", "capture_maps": True})  # a misspelt key cannot pass
    assert CompareParams("/a", "/b").to_dict()["preset"] == "fp32"
