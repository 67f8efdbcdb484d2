"""Structural diff in the real window: two versions of one CNN open in two tabs, Model ▸ Structural diff…
run through its dialog as a worker job; the dock lists exactly the changed, added and removed nodes, the
filters hide and show them, both graphs carry the marks, and selecting an entry selects its node in both
tabs (a node picked in one graph selects its entry and its partner)."""
from __future__ import annotations

import shutil

import pytest

from app.panels.parity import node_for_value
from tests.converters.test_struct_diff import _edited

JOB_TIMEOUT = 120_000


@pytest.fixture
def pair(model_file, tmp_path):
    src = model_file("compare_models", "cnn.onnx").path
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    shutil.copy(src, a)
    _edited(str(a), str(b))
    return str(a), str(b)


def _open(window, qtbot, path):
    tab = window.open_path(path)
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=60_000)
    assert tab.state == "ready", tab.error
    qtbot.waitUntil(lambda: tab.canvas is not None and tab.canvas.drawn_nodes() > 0, timeout=20_000)
    return tab


def test_structural_diff_lists_the_changes_and_selects_them_in_both_tabs(window, qtbot, pair):
    a, b = pair
    tab_a = _open(window, qtbot, a)
    tab_b = _open(window, qtbot, b)
    window.tabs.setCurrentWidget(tab_a)
    assert window.act_struct_diff.isEnabled()
    dlg = window.struct_diff_with()
    assert dlg.path_a() == tab_a.path and dlg.path_b() == tab_b.path   # B: the other open model
    dlg.accept()
    panel = window.struct_diff
    qtbot.waitUntil(lambda: panel.result is not None or (panel.job and panel.job.state not in ("pending", "running")),
                    timeout=JOB_TIMEOUT)
    assert panel.job.state == "done", panel.job.error
    assert window.struct_diff_dock.isVisible()
    entries = panel.entries()
    shown = {(entries[k]["status"], entries[k]["a"] or entries[k]["b"]) for k in panel.visible_entries()}
    assert shown == {("changed", "node_Conv_11"), ("changed", "node_relu"), ("changed", "node_max_pool2d"),
                     ("added", "node_extra")}
    assert "3 changed, 1 added, 0 removed, 4 unchanged" in panel.title.text()
    # filters: unchanged on request, text narrows
    panel.filters["same"].setChecked(True)
    assert len(panel.visible_entries()) == 8
    panel.find.setText("sigmoid")
    assert [entries[k]["a"] for k in panel.visible_entries()] == ["node_relu"]
    panel.find.clear()
    panel.filters["same"].setChecked(False)
    # both graphs are marked: changed on both, the added node on B only
    ov_a, ov_b = tab_a.canvas.overlay, tab_b.canvas.overlay
    assert ov_a is not None and ov_b is not None
    relu_a, relu_b = node_for_value(tab_a.doc.pack, "relu"), node_for_value(tab_b.doc.pack, "relu")
    assert ov_a.status_of(relu_a) == "changed" and ov_b.status_of(relu_b) == "changed"
    extra_b = node_for_value(tab_b.doc.pack, "extra")
    assert ov_b.status_of(extra_b) == "added" and ov_b.bin[extra_b] >= 0
    assert len(ov_a.colored_nodes()) == 3 and len(ov_b.colored_nodes()) == 4
    # selecting an entry selects its node in both tabs
    k = next(k for k in panel.visible_entries() if entries[k]["a"] == "node_relu")
    panel.select_entry(k)
    assert tab_a.canvas.selected == relu_a and tab_b.canvas.selected == relu_b
    assert window.current_tab() in (tab_a, tab_b)
    # the added node: selected in B, nothing in A
    k2 = next(k for k in panel.visible_entries() if entries[k]["b"] == "node_extra")
    panel.select_entry(k2)
    assert tab_b.canvas.selected == extra_b and tab_a.canvas.selected == -1
    assert window.current_tab() is tab_b
    # a node picked in A's graph selects its entry and its partner in B
    pool_a, pool_b = node_for_value(tab_a.doc.pack, "max_pool2d"), node_for_value(tab_b.doc.pack, "max_pool2d")
    tab_a.canvas.select(pool_a, False)
    assert entries[panel.selected_entry()]["a"] == "node_max_pool2d"
    assert tab_b.canvas.selected == pool_b
    # marks off: the overlays go
    panel.mark.setChecked(False)
    assert tab_a.canvas.overlay is None and tab_b.canvas.overlay is None
