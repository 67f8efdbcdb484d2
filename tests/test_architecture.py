"""The architecture contract: the engine never imports Qt; the window never imports ML frameworks at
module level (they live in worker processes); no module of either imports the other's forbidden set."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6", "qtpy", "superqt")
HEAVY = ("torch", "tensorflow", "keras", "tf_keras", "onnx2tf", "tf2onnx", "onnx2torch", "onnxruntime",
         "ai_edge_litert", "onnxsim")


def _imports(path: Path, top_level_only: bool):
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


def _py(folder):
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _py("converters"), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_never_imports_qt(path):
    bad = [(ln, m) for ln, m in _imports(path, top_level_only=False) if m in QT]
    assert not bad, f"{path}: imports Qt at lines {bad}"


@pytest.mark.parametrize("path", _py("app"), ids=lambda p: str(p.relative_to(ROOT)))
def test_window_never_imports_frameworks_at_module_level(path):
    bad = [(ln, m) for ln, m in _imports(path, top_level_only=True) if m in HEAVY]
    assert not bad, f"{path}: imports an ML framework at module level (lines {bad}); run it in a worker job"
