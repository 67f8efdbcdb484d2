"""Find through the real window: next / previous by keys and actions with the count, the hit list, every hit
marked on the graph, and module paths searched as well as names and op types."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from app.panels.model_tab import ModelTab

BLOCKS = 12
LOAD_TIMEOUT = 120_000


def _scoped_onnx(path) -> None:
    """A chain of BLOCKS blocks (Relu, Sigmoid, Add) whose module paths (``backbone/blockK``) are only in the
    exporter's name-scope metadata, never in the node names; a ``head`` with one Relu."""
    import onnx
    from onnx import TensorProto, helper

    nodes, x = [], "x"

    def node(op, ins, out, name, chain):
        n = helper.make_node(op, ins, [out], name=name)
        p = n.metadata_props.add()
        p.key, p.value = "pkg.torch.onnx.name_scopes", repr(["", *chain, name])
        nodes.append(n)

    for k in range(BLOCKS):
        chain = ["backbone", f"backbone.block{k}"]
        node("Relu", [x], f"a{k}", f"relu_{k}", chain)
        node("Sigmoid", [f"a{k}"], f"b{k}", f"sigmoid_{k}", chain)
        node("Add", [f"a{k}", f"b{k}"], f"c{k}", f"add_{k}", chain)
        x = f"c{k}"
    node("Relu", [x], "y", "relu_head", ["head"])
    g = helper.make_graph(nodes, "scoped", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


@pytest.fixture
def scoped(tmp_path):
    p = tmp_path / "scoped.onnx"
    _scoped_onnx(p)
    return p


def _open(window, qtbot, path) -> ModelTab:
    tab = window.open_path(str(path))
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
    assert tab.state == "ready", tab.error
    with qtbot.waitSignal(tab.canvas.drawn, timeout=LOAD_TIMEOUT, raising=False):
        pass
    qtbot.waitUntil(lambda: tab.canvas.drawn_count() > 0, timeout=LOAD_TIMEOUT)
    return tab


def _names(tab, hits):
    return [tab.doc.node_label(i)[1] for i in hits]


def test_enter_down_f3_step_forward_and_shift_enter_up_shift_f3_back_wrapping(window, qtbot, scoped):
    tab = _open(window, qtbot, scoped)
    window.focus_find()
    qtbot.keyClicks(window.find_edit, "sigmoid")
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Return)
    hits = window._find_state[2]
    assert _names(tab, hits) == [f"sigmoid_{k}" for k in range(BLOCKS)]
    assert tab.canvas.selected == hits[0] and window.find_count.text() == f"1 of {BLOCKS}"
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Return)
    assert tab.canvas.selected == hits[1] and window.find_count.text() == f"2 of {BLOCKS}"
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Down)
    assert tab.canvas.selected == hits[2]
    qtbot.keyClick(window.find_edit, Qt.Key.Key_F3)         # the window's shortcut, from the find box
    assert tab.canvas.selected == hits[3] and window.find_count.text() == f"4 of {BLOCKS}"
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Up)
    assert tab.canvas.selected == hits[2]
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert tab.canvas.selected == hits[1]
    qtbot.keyClick(window.find_edit, Qt.Key.Key_F3, Qt.KeyboardModifier.ShiftModifier)
    assert tab.canvas.selected == hits[0]
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Up)           # wraps to the last
    assert tab.canvas.selected == hits[-1] and window.find_count.text() == f"{BLOCKS} of {BLOCKS}"
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Down)         # and round to the first
    assert tab.canvas.selected == hits[0]
    assert window.statusBar().currentMessage().startswith(f"match 1 of {BLOCKS} for “sigmoid”")


def test_module_paths_are_searched_as_well_as_names_and_ops(window, qtbot, scoped):
    tab = _open(window, qtbot, scoped)
    hits = window.find("block3")          # in no node name: only in the module path
    assert sorted(_names(tab, hits)) == ["add_3", "relu_3", "sigmoid_3"]
    assert tab.canvas.selected == hits[0]
    hits = window.find("relu")            # names and op type; the exact name first
    assert set(_names(tab, hits)) == {f"relu_{k}" for k in range(BLOCKS)} | {"relu_head"}
    assert _names(tab, window.find("relu_head"))[0] == "relu_head"
    assert window.find("add") and _names(tab, window.find("Add")) == [f"add_{k}" for k in range(BLOCKS)]
    assert window.find("nothing-like-this") == [] and window.find_count.text() == "no match"


def test_hit_list_lists_every_hit_and_a_click_selects_and_centres_it(window, qtbot, scoped):
    tab = _open(window, qtbot, scoped)
    window.find_edit.setText("sigmoid")
    window.act_find_all.trigger()
    assert window.find_dock.isVisible()
    table = window.hit_list.table
    model = table.model()
    assert model.rowCount() == BLOCKS
    assert [model.index(r, 2).data() for r in range(BLOCKS)] == [f"sigmoid_{k}" for k in range(BLOCKS)]
    assert model.index(5, 1).data() == "Sigmoid" and model.index(5, 3).data() == "backbone/block5"
    target = tab.doc.node_label(window._find_state[2][7])[1]
    table.scrollTo(model.index(7, 2))
    rect = table.visualRect(model.index(7, 2))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    sel = tab.canvas.selected
    assert tab.doc.node_label(sel)[1] == target == "sigmoid_7"
    assert window.find_count.text() == f"8 of {BLOCKS}"
    qtbot.waitUntil(lambda: tab.canvas.node_scene_rect(sel) is not None, timeout=LOAD_TIMEOUT)
    c = tab.canvas.canvas
    at = c.mapFromScene(tab.canvas.node_scene_rect(sel).center())
    assert c.viewport().rect().adjusted(40, 40, -40, -40).contains(at)   # centred on screen
    # F3 goes on from the hit picked in the list
    window.act_find_next.trigger()
    assert tab.doc.node_label(tab.canvas.selected)[1] == "sigmoid_8"


def _ring_pixels(img: QImage, rect) -> int:
    """Pixels of the hit-mark colour (magenta) just outside ``rect`` (viewport coordinates)."""
    n = 0
    rows = [*range(rect.top() - 10, rect.top()), *range(rect.bottom() + 1, rect.bottom() + 11)]
    for x in range(max(0, rect.left()), min(img.width(), rect.right())):
        for y in rows:
            if 0 <= y < img.height():
                c = img.pixelColor(x, y)
                n += c.red() > 170 and c.green() < 110 and c.blue() > 140
    return n


def test_every_hit_is_marked_on_the_graph_and_clearing_the_box_removes_the_marks(window, qtbot, scoped):
    from app.features.find import marked_hits

    tab = _open(window, qtbot, scoped)
    tab.canvas.expand_all()
    qtbot.waitUntil(lambda: all(tab.canvas.node_scene_rect(i) is not None for i in range(tab.doc.node_count)),
                    timeout=LOAD_TIMEOUT)
    window.find_edit.setText("sigmoid")
    qtbot.keyClick(window.find_edit, Qt.Key.Key_Return)
    hits = window._find_state[2]
    assert len(hits) == BLOCKS and marked_hits(tab.canvas) == hits
    c = tab.canvas.canvas
    other = next(i for i in range(tab.doc.node_count) if i not in hits)

    def view_rect(i):
        return c.mapFromScene(tab.canvas.node_scene_rect(i)).boundingRect()

    window.go_to_hit(1)
    tab.canvas.fit()
    qtbot.wait(50)
    img = c.viewport().grab().toImage()
    assert _ring_pixels(img, view_rect(hits[1])) > 10            # a hit (the selected one) ringed
    near = [h for h in hits if h != hits[1] and c.viewport().rect().contains(view_rect(h))]
    assert near and all(_ring_pixels(img, view_rect(h)) > 10 for h in near)   # and the other hits in sight
    tab.canvas.select(other)
    qtbot.wait(50)
    img = c.viewport().grab().toImage()
    assert _ring_pixels(img, view_rect(other)) == 0              # a node that is no hit is not
    window.find_edit.clear()             # what the box's clear button does
    assert marked_hits(tab.canvas) == []
    tab.canvas.select(hits[0])
    qtbot.wait(50)
    assert _ring_pixels(c.viewport().grab().toImage(), view_rect(hits[0])) == 0


def test_typing_searches_once_typing_pauses(window, qtbot, scoped):
    tab = _open(window, qtbot, scoped)
    window.focus_find()
    qtbot.keyClicks(window.find_edit, "block1")
    qtbot.waitUntil(lambda: window.find_count.text() != "", timeout=5000)
    names = set(_names(tab, window._find_state[2]))
    assert {"relu_1", "sigmoid_1", "add_1", "relu_10", "add_11"} <= names and "relu_2" not in names
    assert window.find_count.text() == f"1 of {len(names)}"


def test_a_hit_inside_a_collapsed_group_rings_the_groups_box(window, qtbot, scoped):
    tab = _open(window, qtbot, scoped)
    tab.canvas.collapse_all()
    qtbot.waitUntil(lambda: tab.canvas.node_scene_rect(0) is None, timeout=LOAD_TIMEOUT)
    hits = window.find("sigmoid")             # the first hit is opened and selected; the others stay in their boxes
    last = hits[-1]
    g = tab.canvas.group_at_node(last)
    qtbot.waitUntil(lambda: tab.canvas.node_scene_rect(hits[0]) is not None, timeout=LOAD_TIMEOUT)
    qtbot.waitUntil(lambda: tab.canvas.group_scene_rect(g) is not None, timeout=LOAD_TIMEOUT)
    assert tab.canvas.node_scene_rect(last) is None
    c = tab.canvas.canvas
    c.centerOn(tab.canvas.group_scene_rect(g).center())
    qtbot.wait(50)
    box = c.mapFromScene(tab.canvas.group_scene_rect(g)).boundingRect()
    assert _ring_pixels(c.viewport().grab().toImage(), box) > 10
    window.find_edit.setText("relu_head")
    window.find(window.find_edit.text())      # a new search: the old hits' boxes lose their rings
    qtbot.wait(50)
    c.centerOn(tab.canvas.group_scene_rect(g).center())
    qtbot.wait(50)
    box = c.mapFromScene(tab.canvas.group_scene_rect(g)).boundingRect()
    assert _ring_pixels(c.viewport().grab().toImage(), box) == 0


def test_the_count_and_the_list_belong_to_the_tab_searched(window, qtbot, scoped, tmp_path):
    import shutil

    other = tmp_path / "other.onnx"
    shutil.copy(scoped, other)
    tab = _open(window, qtbot, scoped)
    tab2 = _open(window, qtbot, other)
    window.tabs.setCurrentWidget(tab)
    window.find_edit.setText("sigmoid")
    window.act_find_all.trigger()
    window.act_find_next.trigger()
    assert window.find_count.text() == f"2 of {BLOCKS}" and window.hit_list.model.rowCount() == BLOCKS
    window.tabs.setCurrentWidget(tab2)
    assert window.find_count.text() == "" and window.hit_list.model.rowCount() == 0
    window.tabs.setCurrentWidget(tab)
    assert window.find_count.text() == f"2 of {BLOCKS}" and window.hit_list.model.rowCount() == BLOCKS
    window.tabs.setCurrentWidget(tab2)
    window.act_find_next.trigger()                # F3 on the other tab: its own search, from its first hit
    assert window._find_state[0] is tab2 and tab2.canvas.selected == window._find_state[2][0]
    assert window.find_count.text() == f"1 of {BLOCKS}"
