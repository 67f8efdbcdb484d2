"""The window with PyTorch files: trust prompt, weights-only tree with statistics, attach architecture."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox


LOAD_TIMEOUT = 120_000




def _wait_done(qtbot, tab):
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)


def test_pickled_module_asks_for_trust_then_opens(window, qtbot, model_file):
    mf = model_file("window_models", "module.pt")
    tab = window.open_path(mf.path)
    _wait_done(qtbot, tab)
    assert tab.state == "failed"
    message, kind = tab.error
    assert kind == "TrustRequired"
    assert "module.pt" in tab.banner.text.text()
    assert "builds a" in message and "object" in message  # the refusal names what would run
    button = tab.banner.button("Trust and open…")
    assert button is not None
    # one click only asks: a window-modal confirmation whose default is Cancel
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dlg = tab.trust_dialog
    qtbot.waitUntil(dlg.isVisible)
    assert dlg.defaultButton() is dlg.cancel_button and dlg.escapeButton() is dlg.cancel_button
    assert "What would run" in dlg.informativeText() and "object" in dlg.informativeText()
    qtbot.mouseClick(dlg.cancel_button, Qt.MouseButton.LeftButton)
    assert tab.state == "failed"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dlg = tab.trust_dialog
    qtbot.waitUntil(dlg.isVisible)
    qtbot.mouseClick(dlg.run_button, Qt.MouseButton.LeftButton)
    assert tab.state == "loading" and tab.job.params["trust"] is True
    _wait_done(qtbot, tab)
    assert tab.state == "ready", tab.error
    assert tab.trust and tab.doc.format.startswith("torch")
    assert tab.banner.button("Trust and open…") is None


def test_weights_only_checkpoint_opens_as_tree_with_stats(window, qtbot, model_file):
    mf = model_file("window_models", "weights.safetensors")
    tab = window.open_path(mf.path)
    _wait_done(qtbot, tab)
    assert tab.state == "ready", tab.error
    assert tab.doc.weights_only
    assert tab.weights is not None and tab.stack.currentWidget() is tab.weights
    assert sorted(tab.weights.names) == mf.facts["names"]
    # dotted names became a tree: encoder > layers > 0 > linear > weight
    model = tab.weights.model
    top = sorted(model.item(r, 0).text() for r in range(model.rowCount()))
    assert top == ["encoder", "head"]
    assert f"{mf.facts['param_count']:,} parameters" in tab.weights.info.text()
    assert "Weights only" in window.inspector.text() or "weights:" in window.inspector.text()
    # selecting a leaf shows it and fetches statistics in a worker
    assert tab.weights.select_name("head.weight")
    text = window.inspector.text()
    assert "Weight: head.weight" in text and "3×8" in text
    want = mf.facts["stats"]["head.weight"]
    qtbot.waitUntil(lambda: "max" in window.inspector.stats_label.text(), timeout=LOAD_TIMEOUT)
    stats = window.inspector.stats_label.text()
    assert f"min {want['min']:.6g}" in stats and f"max {want['max']:.6g}" in stats
    assert f"mean {want['mean']:.6g}" in stats
    assert window.inspector.plot is not None and window.inspector.plot.isVisible()
    assert window.act_attach.isEnabled() is True


def test_attach_architecture_opens_graph(window, qtbot, model_file):
    mf = model_file("window_models", "small_state.pth")
    tab = window.open_path(mf.path)
    _wait_done(qtbot, tab)
    assert tab.state == "ready" and tab.doc.weights_only, tab.error
    f = mf.facts
    # the weights tree's button opens the dialog; bad input is refused with a reason, not run
    qtbot.mouseClick(tab.weights.attach_button, Qt.MouseButton.LeftButton)
    dlg = window.attach_dialog
    assert dlg is not None and dlg.isVisible()
    dlg.spec.setText("no_colon_here")
    with pytest.raises(ValueError, match="package.module:ClassName"):
        dlg.params()
    dlg.spec.setText(f["spec"])
    dlg.kwargs.setPlainText("{not json")
    with pytest.raises(ValueError, match="JSON"):
        dlg.params()
    dlg.kwargs.setPlainText(json.dumps(f["kwargs"]))
    dlg.shapes.setText("; ".join(",".join(str(d) for d in s) for s in f["input_shapes"]))
    assert dlg.params()["input_shapes"] == f["input_shapes"]
    tabs_before = window.tabs.count()
    qtbot.mouseClick(dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    assert window.tabs.count() == tabs_before + 1
    graph_tab = window.current_tab()
    assert graph_tab is not tab and graph_tab.job.task == "attach_architecture"
    assert window.settings.value("attach/spec") == f["spec"]  # remembered for next time
    _wait_done(qtbot, graph_tab)
    assert graph_tab.state == "ready", graph_tab.error
    assert graph_tab.path.endswith(".pt2")
    assert not graph_tab.doc.weights_only
    assert graph_tab.doc.format == "torch.export"
    assert graph_tab.doc.node_count == f["node_count"]
    assert int(graph_tab.doc.summary["param_count"]) == f["param_count"]


def test_attach_architecture_from_a_python_file_beside_the_checkpoint(window, qtbot, tmp_path):
    """The user's own model file, named relative to the checkpoint (the form the dialog's hint shows)."""
    import subprocess
    import sys

    (tmp_path / "my_model.py").write_text(
        "import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self, width=3):\n"
        "        super().__init__()\n        self.fc = torch.nn.Linear(4, width)\n\n"
        "    def forward(self, x):\n        return torch.relu(self.fc(x))\n")
    subprocess.run([sys.executable, "-c", "import torch, my_model; torch.save(my_model.Net(5).state_dict(), "
                    "'net.pth')"], cwd=tmp_path, check=True, timeout=300)
    tab = window.open_path(str(tmp_path / "net.pth"))
    _wait_done(qtbot, tab)
    assert tab.state == "ready" and tab.doc.weights_only, tab.error
    qtbot.mouseClick(tab.weights.attach_button, Qt.MouseButton.LeftButton)
    dlg = window.attach_dialog
    assert "path/to/model.py:ClassName" in dlg.hint.text()
    dlg.spec.setText("my_model.py:Net")
    dlg.kwargs.setPlainText('{"width": 5}')
    dlg.shapes.setText("1,4")
    assert dlg.params()["spec"] == f"{tmp_path / 'my_model.py'}:Net"
    qtbot.mouseClick(dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    graph_tab = window.current_tab()
    _wait_done(qtbot, graph_tab)
    assert graph_tab.state == "ready", graph_tab.error
    assert int(graph_tab.doc.summary["param_count"]) == 4 * 5 + 5
