"""Tabs, context menus, copy and the shortcuts page through the real window: tabs that scroll and tell two
files of the same name apart, the tab menu, the graph's node and group menus, Ctrl+C on a selected node,
selecting a node's partner in the other model of a structural diff, and Help ▸ Keyboard shortcuts."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QPoint, Qt, Slot
from PySide6.QtGui import QAction, QContextMenuEvent, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QApplication, QMenu, QToolButton

from tests.app import test_parity_layers as _layers
from tests.app import test_struct_diff as _struct_diff
from tests.app.test_window_find import BLOCKS, _open, _scoped_onnx

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "samples" / "tiny_cnn.onnx"
TIMEOUT = 120_000


def _right_click(widget, pos: QPoint) -> QMenu:
    ev = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, widget.mapToGlobal(pos))
    QApplication.sendEvent(widget, ev)
    menu = QApplication.activePopupWidget()
    assert isinstance(menu, QMenu)
    return menu


def _action(menu: QMenu, starts: str) -> QAction:
    found = [a for a in menu.actions() if a.text().replace("&", "").startswith(starts)]
    assert found, [a.text() for a in menu.actions()]
    return found[0]


def _pick(menu: QMenu, starts: str) -> None:
    a = _action(menu, starts)
    assert a.isEnabled()
    menu.close()
    a.trigger()


@pytest.fixture
def scoped(tmp_path):
    p = tmp_path / "scoped.onnx"
    _scoped_onnx(p)
    return p


def test_many_tabs_scroll_and_two_files_of_one_name_show_their_folders(window, qtbot, tmp_path):
    same = []
    for d in ("runs/a/export", "runs/b/export"):
        (tmp_path / d).mkdir(parents=True)
        same.append(tmp_path / d / "tiny_cnn.onnx")
        shutil.copy(SAMPLE, same[-1])
    others = []
    for k in range(10):
        others.append(tmp_path / f"a_rather_long_model_name_number_{k}.onnx")
        shutil.copy(SAMPLE, others[-1])
    tabs = [window.open_path(str(p)) for p in [same[0], *others, same[1]]]
    for t in tabs:
        qtbot.waitUntil(lambda t=t: t.state in ("ready", "failed"), timeout=TIMEOUT)
    bar = window.tabs.tabBar()
    qtbot.waitUntil(lambda: window.tabs.tabText(0) != "tiny_cnn.onnx", timeout=5000)
    texts = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert texts[0] == "tiny_cnn.onnx — a/export" and texts[-1] == "tiny_cnn.onnx — b/export"
    assert texts[1:-1] == [p.name for p in others]
    assert window.tabs.tabToolTip(0).startswith(str(same[0]))
    # the bar scrolls: the tabs keep a readable width and the scroll arrows show
    assert bar.usesScrollButtons() and bar.elideMode() == Qt.TextElideMode.ElideMiddle
    fm = bar.fontMetrics()
    assert all(bar.tabRect(i).width() >= fm.horizontalAdvance("a_rather_long_model_") for i in range(bar.count()))
    # and a title with its folders is shown whole: the folders are what tells the two apart
    assert all(bar.tabRect(i).width() >= fm.horizontalAdvance(texts[i]) for i in (0, bar.count() - 1))
    assert sum(bar.tabRect(i).width() for i in range(bar.count())) > bar.width()
    arrows = [b for b in bar.findChildren(QToolButton) if b.isVisible()]
    assert len(arrows) == 2
    # closing one of the two: the other is plain again
    window.close_tab(window.tabs.indexOf(tabs[-1]))
    qtbot.waitUntil(lambda: window.tabs.tabText(0) == "tiny_cnn.onnx", timeout=5000)


class _UrlCatcher(QObject):
    def __init__(self):
        super().__init__()
        self.urls = []

    @Slot("QUrl")
    def open(self, url) -> None:
        self.urls.append(url.toLocalFile())


def test_tab_menu_copies_the_path_opens_the_folder_and_closes_the_others(window, qtbot, tmp_path):
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"m{k}.onnx")
        shutil.copy(SAMPLE, paths[-1])
    tabs = [window.open_path(str(p)) for p in paths]
    for t in tabs:
        qtbot.waitUntil(lambda t=t: t.state in ("ready", "failed"), timeout=TIMEOUT)
    bar = window.tabs.tabBar()
    menu = _right_click(bar, bar.tabRect(1).center())
    assert menu.objectName() == "tabMenu"
    _pick(menu, "Copy path")
    assert QApplication.clipboard().text() == str(paths[1])
    catcher = _UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        _pick(_right_click(bar, bar.tabRect(1).center()), "Open containing folder")
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert catcher.urls == [str(tmp_path)]
    _pick(_right_click(bar, bar.tabRect(1).center()), "Close others")
    assert window.model_tabs() == [tabs[1]]
    menu = _right_click(bar, bar.tabRect(0).center())
    assert not _action(menu, "Close others").isEnabled()
    _pick(menu, "Close")
    assert window.tabs.count() == 0 and window.pages.currentWidget() is window.welcome


def _node_point(tab, i) -> QPoint:
    c = tab.canvas.canvas
    return c.mapFromScene(tab.canvas.node_scene_rect(i).center())


def test_node_menu_copies_name_op_shapes_and_module_path_and_collapses_its_group(window, qtbot, scoped):
    tab = _open(window, qtbot, scoped)
    tab.canvas.expand_all()
    names = [tab.doc.node_label(i)[1] for i in range(tab.doc.node_count)]
    i = names.index("sigmoid_2")
    qtbot.waitUntil(lambda: all(tab.canvas.node_scene_rect(k) is not None for k in range(len(names))), timeout=TIMEOUT)
    tab.canvas.select(i)                       # centred, so the right click lands on it
    qtbot.wait(50)
    vp = tab.canvas.canvas.viewport()
    menu = _right_click(vp, _node_point(tab, i))
    assert menu.objectName() == "nodeMenu" and tab.canvas.selected == i
    clip = QApplication.clipboard()
    for label, want in (("Copy name", "sigmoid_2"), ("Copy op type", "Sigmoid"),
                        ("Copy output shapes", "[1, 4] float32"), ("Copy module path", "backbone/block2")):
        _pick(_right_click(vp, _node_point(tab, i)), label)
        assert clip.text() == want, label
    g = tab.canvas.group_at_node(i)
    menu = _right_click(vp, _node_point(tab, i))
    assert "backbone/block2" in _action(menu, "Collapse group").text()
    _pick(menu, "Collapse group")
    assert g not in tab.canvas.expanded_groups
    qtbot.waitUntil(lambda: tab.canvas.node_scene_rect(i) is None and tab.canvas.group_scene_rect(g) is not None,
                    timeout=TIMEOUT)
    # the collapsed box has its own menu: expand it again
    box = tab.canvas.group_scene_rect(g)
    menu = _right_click(vp, tab.canvas.canvas.mapFromScene(box.center()))
    assert menu.objectName() == "groupMenu"
    assert "Export graph…" in [a.text().replace("&", "") for a in menu.actions()]  # the picture of this graph
    _pick(menu, "Expand")
    assert g in tab.canvas.expanded_groups
    qtbot.waitUntil(lambda: tab.canvas.node_scene_rect(i) is not None, timeout=TIMEOUT)


def test_ctrl_c_in_the_graph_copies_the_selected_nodes_name_and_the_find_box_keeps_its_own(window, qtbot, scoped):
    tab = _open(window, qtbot, scoped)
    names = [tab.doc.node_label(i)[1] for i in range(tab.doc.node_count)]
    clip = QApplication.clipboard()
    clip.setText("before")
    tab.canvas.select(names.index(f"add_{BLOCKS - 1}"))
    c = tab.canvas.canvas
    c.setFocus()
    qtbot.waitUntil(c.hasFocus, timeout=2000)
    qtbot.keyClick(c.viewport(), Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert clip.text() == f"add_{BLOCKS - 1}"
    window.find_edit.setText("relu")
    window.focus_find()                         # text selected in the find box: Ctrl+C copies that
    qtbot.keyClick(window.find_edit, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert clip.text() == "relu"


def test_ctrl_c_in_a_weights_only_tab_copies_the_selected_weights_full_name(window, qtbot, model_file):
    mf = model_file("window_models", "weights.safetensors")
    tab = window.open_path(mf.path)
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=TIMEOUT)
    assert tab.state == "ready" and tab.doc.weights_only
    assert tab.weights.select_name("head.weight")
    view = tab.weights.view
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=2000)
    QApplication.clipboard().setText("before")
    qtbot.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text() == "head.weight"   # the full name, not the leaf's "weight"


pair = _struct_diff.pair  # two versions of the small CNN, one edited (the structural-diff window tests' own)


def test_node_menu_selects_the_partner_in_the_other_model_of_a_structural_diff(window, qtbot, pair):
    tab_a, tab_b = (_open(window, qtbot, p) for p in pair)
    window.tabs.setCurrentWidget(tab_a)
    window.struct_diff_with().accept()
    panel = window.struct_diff
    qtbot.waitUntil(lambda: panel.result is not None or (panel.job and panel.job.state not in ("pending", "running")),
                    timeout=TIMEOUT)
    assert panel.job.state == "done", panel.job.error
    names_a = [tab_a.doc.node_label(i)[1] for i in range(tab_a.doc.node_count)]
    names_b = [tab_b.doc.node_label(i)[1] for i in range(tab_b.doc.node_count)]
    i = names_a.index("node_relu")
    tab_a.canvas.select(i)
    qtbot.waitUntil(lambda: tab_a.canvas.node_scene_rect(i) is not None, timeout=TIMEOUT)
    qtbot.wait(50)
    menu = _right_click(tab_a.canvas.canvas.viewport(), _node_point(tab_a, i))
    _pick(menu, "Select in the other model")
    assert window.current_tab() is tab_b and names_b[tab_b.canvas.selected] == "node_relu"
    # a node in no comparison has no such entry
    window.tabs.setCurrentWidget(tab_a)
    window.close_tab(window.tabs.indexOf(tab_b))
    qtbot.wait(50)
    menu = _right_click(tab_a.canvas.canvas.viewport(), _node_point(tab_a, i))
    assert not [a for a in menu.actions() if a.text().replace("&", "").startswith("Select in the other")]
    menu.close()


def test_shortcuts_page_lists_every_action_with_a_shortcut_read_from_the_actions(window, qtbot):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Help")
    entry = next(a for a in help_menu.actions() if a.text().replace("&", "") == "Keyboard shortcuts")
    entry.trigger()
    dlg = window.findChild(QObject, "shortcutsDialog")
    assert dlg is not None and dlg.isVisible()

    def rows(d):
        return {(d.table.item(r, 1).text(), d.table.item(r, 2).text()) for r in range(d.table.rowCount())}

    shown = rows(dlg)
    expected = {(a.text().replace("&", "").rstrip("…"), ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText)
                                                                   for k in a.shortcuts()))
                for a in window.findChildren(QAction) if a.shortcuts()}
    assert expected and expected <= shown
    for name, key in (("Find next", "F3, Ctrl+G"), ("Copy name", "Ctrl+C"), ("Open", "Ctrl+O"),
                      ("Keyboard shortcuts", "F1")):
        assert (name, key) in shown
    where = {dlg.table.item(r, 1).text(): dlg.table.item(r, 0).text() for r in range(dlg.table.rowCount())}
    assert where["Find next"] == "View" and where["Copy name"] == "Edit"
    dlg.filter.setText("f3")
    visible = [dlg.table.item(r, 1).text() for r in range(dlg.table.rowCount()) if not dlg.table.isRowHidden(r)]
    assert sorted(visible) == ["Find next", "Find previous"]
    dlg.close()
    # an action added later is listed the next time: the page is made from the actions
    extra = window._action("Some new thing", lambda: None, "Ctrl+Alt+J")
    help_menu.addAction(extra)
    window.act_shortcuts.trigger()
    dlg2 = [d for d in window.findChildren(QObject, "shortcutsDialog") if d.isVisible()][-1]
    assert ("Some new thing", QKeySequence("Ctrl+Alt+J").toString(QKeySequence.SequenceFormat.NativeText)) in rows(dlg2)
    assert dlg2.table.item([dlg2.table.item(r, 1).text() for r in range(dlg2.table.rowCount())].index("Some new thing"),
                           0).text() == "Help"
    dlg2.close()


fault_pair = _layers.fault_pair  # conv2's weights x 1.05 in a copy of a small CNN (the per-layer tests' fault)


def test_node_menu_of_a_compared_model_offers_the_partner_and_the_layers_actions(window, qtbot, tmp_path,
                                                                                   fault_pair):
    """After a per-layer comparison, a right click on B's planted node: its partner in A, and the layer's
    own actions (its tensors, copy names in both models, reduce), before the parity menu could take it."""
    from converters.compare.params import compare_params

    a, b, planted = fault_pair
    tab_a = _open(window, qtbot, a)
    tab_b = _open(window, qtbot, b)
    window.run_compare(compare_params(a, b, per_layer=True, out_dir=str(tmp_path / "parity")))
    _layers._wait(window, qtbot)
    window.tabs.setCurrentWidget(tab_b)
    n = tab_b.doc.pack.names.index(planted["node"])
    tab_b.canvas.select(n)
    qtbot.waitUntil(lambda: tab_b.canvas.node_scene_rect(n) is not None, timeout=TIMEOUT)
    qtbot.wait(50)
    menu = _right_click(tab_b.canvas.canvas.viewport(), _node_point(tab_b, n))
    assert menu.objectName() == "nodeMenu"
    texts = [a.text().replace("&", "") for a in menu.actions()]
    assert "Copy name" in texts and "Show its tensors" in texts and "Copy names in both models" in texts
    assert "Select in the other model (comparison)" in texts
    _pick(menu, "Select in the other model")
    assert window.current_tab() is tab_a and tab_a.doc.pack.names[tab_a.canvas.selected] == planted["node"]
