"""The inspector in the real window: every TFLite option with its value (checked against TensorFlow's own
reading of the file), resizable columns that leave the values room, full values in tooltips, and
Ctrl+C / the context menu copying the value (or the name, or the row)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtTest import QTest

from app.panels.inspector import VALUE_ROLE

ROOT = Path(__file__).resolve().parents[2]
LOAD_TIMEOUT = 120_000

# TensorFlow's object API reads each operator's builtin options; enums are numbers there
TF_OPTIONS = r"""
import json, sys
from tensorflow.lite.tools import flatbuffer_utils
from tensorflow.lite.python import schema_py_generated as s
m = flatbuffer_utils.read_model_from_bytearray(bytearray(open(sys.argv[1], "rb").read()))
codes = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
acts = {v: k for k, v in vars(s.ActivationFunctionType).items() if not k.startswith("_")}
pads = {v: k for k, v in vars(s.Padding).items() if not k.startswith("_")}
out = []
for op in m.subgraphs[0].operators:
    code = m.operatorCodes[op.opcodeIndex]
    opts = {}
    for k, v in vars(op.builtinOptions or object()).items():
        if k == "fusedActivationFunction":
            v = acts[v]
        elif k == "padding":
            v = pads[v]
        elif hasattr(v, "tolist"):
            v = v.tolist()
        opts[k] = v
    out.append({"op": codes[max(code.builtinCode, code.deprecatedBuiltinCode)], "options": opts})
print(json.dumps(out))
"""


def _open(window, qtbot, path):
    tab = window.open_path(path)
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
    assert tab.state == "ready", tab.error
    qtbot.waitUntil(lambda: tab.doc.pack is not None, timeout=LOAD_TIMEOUT)
    return tab


def _rows(inspector, section: str) -> dict[str, str]:
    """``{name: full value}`` of the rows of one section of the inspector."""
    tree = inspector.tree
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        if top.text(0) == section:
            return {top.child(j).text(0): top.child(j).data(1, VALUE_ROLE) for j in range(top.childCount())}
    return {}


def _item(inspector, name: str):
    items = inspector.tree.findItems(name, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, 0)
    assert items, f"no row '{name}' in:\n{inspector.text()}"
    return items[0]


def _select_node(window, tab, index: int) -> None:
    window._node_selected(tab, index)  # what a click on the node does (the canvas emits nodeSelected)
    QTest.qWait(10)


def test_every_tflite_option_is_shown_with_its_value(window, qtbot, model_file):
    mf = model_file("tf_models", "cnn.tflite")
    proc = subprocess.run([sys.executable, "-c", TF_OPTIONS, mf.path], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = json.loads(proc.stdout.strip().splitlines()[-1])
    tab = _open(window, qtbot, mf.path)
    ops = [tab.doc.details(i)["op_type"] for i in range(tab.doc.node_count)]
    assert ops == [e["op"] for e in expected]
    seen = 0
    for i, e in enumerate(expected):
        _select_node(window, tab, i)
        attrs = _rows(window.inspector, "Attributes")
        for key, value in e["options"].items():
            assert key in attrs, f"{e['op']} lacks '{key}': {window.inspector.text()}"
            shown = attrs[key]
            assert shown, f"{e['op']}.{key} has no value"
            if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and not key.endswith(("Type", "Format"))):
                assert shown == str(value), (e["op"], key, shown, value)
            seen += 1
    assert seen >= 20  # convolutions, pooling, a dense layer: real options, not an empty model
    _select_node(window, tab, ops.index("FULLY_CONNECTED"))
    fc = _rows(window.inspector, "Attributes")
    assert fc["weightsFormat"] == "DEFAULT" and fc["quantizedBiasType"] == "FLOAT32"  # enums by name
    _select_node(window, tab, 0)
    conv = _rows(window.inspector, "Attributes")
    assert conv["padding"] == "SAME" and conv["fusedActivationFunction"] == "RELU"  # conv1 + bn1 + relu1


def test_int8_tflite_quantization_is_a_row_per_value(window, qtbot, model_file):
    tab = _open(window, qtbot, model_file("tf_models", "int8.tflite").path)
    ops = [tab.doc.details(i)["op_type"] for i in range(tab.doc.node_count)]
    _select_node(window, tab, ops.index("QUANTIZE"))
    out = tab.doc.details(ops.index("QUANTIZE"))["outputs"][0]["name"]
    q = _item(window.inspector, "quantization")
    tensor = next(q.child(j) for j in range(q.childCount()) if q.child(j).text(0) == out)
    values = {tensor.child(j).text(0): tensor.child(j).data(1, VALUE_ROLE) for j in range(tensor.childCount())}
    assert set(values) >= {"scale", "zero_point"}
    assert float(json.loads(values["scale"])[0]) > 0
    assert int(json.loads(values["zero_point"])[0]) in range(-128, 128)


@pytest.fixture
def long_model(tmp_path):
    """An ONNX model with a 180-character node name and a 600-element attribute."""
    import onnx
    from onnx import TensorProto, helper

    name = "encoder/" + "very_long_scope_name/" * 8 + "Add_the_constant"
    ints = list(range(600))
    g = helper.make_graph(
        [helper.make_node("Constant", [], ["c"], name="const", value_ints=ints),
         helper.make_node("Cast", ["c"], ["cf"], name="cast", to=TensorProto.FLOAT),
         helper.make_node("Add", ["x", "cf"], ["y"], name=name)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [600])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [600])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / "long.onnx"
    onnx.save(m, str(path))
    return str(path), name, ints


def _index(tab, name: str) -> int:
    return next(i for i in range(tab.doc.node_count) if tab.doc.details(i)["name"] == name)


def test_the_name_column_leaves_the_values_room_and_is_resizable(window, qtbot, long_model):
    path, name, ints = long_model
    tab = _open(window, qtbot, path)
    _select_node(window, tab, _index(tab, name))
    ins = window.inspector
    tree = ins.tree
    avail = tree.viewport().width()
    assert avail > 150
    # the Inputs section lists a value as long as the node name; the name column does not follow it
    assert tree.columnWidth(0) <= int(avail * 0.46) + 1
    assert avail - tree.columnWidth(0) >= avail * 0.5
    assert _item(ins, "name").data(1, VALUE_ROLE) == name
    assert name in _item(ins, "name").toolTip(1)
    # the user drags the divider: that width stays for the next node
    tree.header().resizeSection(0, 70)
    _select_node(window, tab, _index(tab, "const"))
    assert tree.columnWidth(0) == 70
    assert tree.header().sectionResizeMode(0) == tree.header().ResizeMode.Interactive
    # the 600 numbers are there in full: no "…" cut in the value, the tooltip or the copy
    row = _item(ins, "value_ints")
    full = row.data(1, VALUE_ROLE)
    assert json.loads(full) == ints
    assert "599" in row.toolTip(1) and "…" not in row.text(1)


def test_ctrl_c_and_the_context_menu_copy_the_value(window, qtbot, long_model):
    path, name, _ints = long_model
    tab = _open(window, qtbot, path)
    _select_node(window, tab, _index(tab, name))
    ins = window.inspector
    clip = QGuiApplication.clipboard()
    row = _item(ins, "name")
    ins.tree.setCurrentItem(row)
    ins.tree.setFocus()
    clip.setText("")
    QTest.keySequence(ins.tree, QKeySequence(QKeySequence.StandardKey.Copy))
    assert clip.text() == name          # the value, not the word "name"
    op = _item(ins, "op type")
    menu = ins.menu_for(op)
    assert [a.text() for a in menu.actions() if a.text()] == ["Copy value", "Copy name", "Copy row", "Copy all"]
    actions = {a.text(): a for a in menu.actions()}
    actions["Copy value"].trigger()
    assert clip.text() == "Add"
    actions["Copy name"].trigger()
    assert clip.text() == "op type"
    actions["Copy row"].trigger()
    assert clip.text() == "op type: Add"
    actions["Copy all"].trigger()
    assert name in clip.text() and "op type: Add" in clip.text()
    # several rows: one value per line
    ins.tree.clearSelection()
    for label in ("name", "op type"):
        _item(ins, label).setSelected(True)
    QTest.keySequence(ins.tree, QKeySequence(QKeySequence.StandardKey.Copy))
    assert clip.text().splitlines() == [name, "Add"]
