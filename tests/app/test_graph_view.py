"""GraphView on real packs of real ONNX files, offscreen, with real mouse events; and `bench open`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.graph_view import GraphView
from converters.formats import load
from converters.viewpack import build_pack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packs(model_file, tmp_path_factory):
    out = {}
    for name in ("synthetic_200.onnx", "synthetic_5000.onnx"):
        mf = model_file("view_models", name)
        out[name] = build_pack(load(mf.path), tmp_path_factory.mktemp("pack"))
    return out


@pytest.fixture
def view(qtbot):
    v = GraphView()
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.close()


def _show(qtbot, view, pack):
    with qtbot.waitSignal(view.drawn, timeout=30_000):
        view.set_pack(pack)


def _redraw(qtbot, view, action):
    with qtbot.waitSignal(view.drawn, timeout=60_000):
        action()


def test_set_pack_draws_every_node_of_a_small_graph(qtbot, view, packs):
    pack = packs["synthetic_200.onnx"]
    _show(qtbot, view, pack)
    assert view.drawn_nodes() == pack.n_nodes == view.drawn_count()
    # something is actually painted: the grabbed picture is not a blank background
    img = view.grab().toImage()
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 5


def test_click_on_a_node_selects_it(qtbot, view, packs):
    pack = packs["synthetic_200.onnx"]
    _show(qtbot, view, pack)
    i = pack.names.index("stem/relu")
    view.select(i)                                   # centres it on screen
    qtbot.wait(50)
    view.select(-1)
    r = view.node_scene_rect(i)
    pos = view.canvas.mapFromScene(r.center())
    with qtbot.waitSignal(view.nodeSelected, timeout=5000) as sig:
        QTest.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    assert sig.args == [i] and view.selected == i
    # a click on empty canvas clears the selection
    empty = view.canvas.mapFromScene(r.center().x() + 2000, r.center().y())
    with qtbot.waitSignal(view.nodeSelected, timeout=5000) as sig:
        QTest.mouseClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, empty)
    assert sig.args == [-1]


def test_select_emits_the_index(qtbot, view, packs):
    pack = packs["synthetic_200.onnx"]
    _show(qtbot, view, pack)
    with qtbot.waitSignal(view.nodeSelected, timeout=5000) as sig:
        view.select(17)
    assert sig.args == [17]


def test_find_by_name_and_op_expands_hidden_groups(qtbot, view, packs):
    pack = packs["synthetic_5000.onnx"]
    _show(qtbot, view, pack)
    target = pack.names.index("encoder150/attn/softmax")
    assert view.node_scene_rect(target) is None            # hidden in a collapsed group at first
    with qtbot.waitSignal(view.drawn, timeout=60_000):
        hits = view.find("encoder150/attn/softmax")
    assert hits[0] == target and view.selected == target
    r = view.node_scene_rect(target)
    assert r is not None
    # the match is on screen
    assert view.canvas.viewport().rect().contains(view.canvas.mapFromScene(r.center()))
    hits = view.find("LayerNormalization")
    assert len(hits) == 2 * 208 and all(pack.op_type(i) == "LayerNormalization" for i in hits)


def test_expand_and_collapse_change_what_is_drawn(qtbot, view, packs):
    pack = packs["synthetic_5000.onnx"]
    _show(qtbot, view, pack)
    before = view.drawn_count()
    assert view.drawn_nodes() < 100 and before <= 1000          # large graph: collapsed by default
    g = pack.group_paths.index("res3")
    rect = view.group_scene_rect(g)
    assert rect is not None
    # double click on the collapsed box expands it
    view.canvas.centerOn(rect.center())
    pos = view.canvas.mapFromScene(rect.center())
    with qtbot.waitSignal(view.drawn, timeout=60_000):
        QTest.mouseDClick(view.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)
    assert g in view.expanded_groups
    assert view.drawn_count() == before - 1 + 7
    assert view.drawn_nodes() >= 7
    _redraw(qtbot, view, lambda: view.collapse(g))
    assert view.drawn_count() == before
    _redraw(qtbot, view, view.expand_all)
    assert view.drawn_nodes() == pack.n_nodes
    _redraw(qtbot, view, view.collapse_all)
    assert view.drawn_nodes() < 100


def test_newest_layout_request_wins(qtbot, view, packs):
    pack = packs["synthetic_5000.onnx"]
    _show(qtbot, view, pack)
    g = pack.group_paths.index("res5")
    shown = []
    view.drawn.connect(lambda: shown.append(view.drawn_nodes()))
    view.expand_all()                                     # superseded at once: never shown
    with qtbot.waitSignal(view.drawn, timeout=60_000):
        view.collapse_all()
        view.expand(g)
    qtbot.wait(500)
    assert shown and max(shown) == 7 and view.expanded_groups == {g}


def test_zoom_and_fit(qtbot, view, packs):
    _show(qtbot, view, packs["synthetic_200.onnx"])
    s0 = view.canvas.transform().m11()
    view.zoom_in()
    assert view.canvas.transform().m11() == pytest.approx(s0 * 1.25)
    view.zoom_out()
    view.zoom_out()
    assert view.canvas.transform().m11() < s0
    view.fit()
    vis = view.canvas.mapToScene(view.canvas.viewport().rect()).boundingRect()
    assert vis.contains(view._data.bounds.adjusted(1, 1, -1, -1))


def test_bench_open_json(model_file, tmp_path):
    mf = model_file("view_models", "synthetic_200.onnx")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "app", "bench", "open", mf.path, "--json", "--expand"],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    fig = json.loads(proc.stdout.strip().splitlines()[-1])
    for k in ("first_view_s", "full_pack_s", "expanded_s", "nodes", "nodes_drawn_expanded",
              "window_peak_rss_mb", "worker_peak_rss_mb", "total_peak_rss_mb", "frame_ms"):
        assert k in fig, k
    assert fig["nodes"] == mf.facts["node_count"] == fig["nodes_drawn_expanded"]
    assert 0 < fig["first_view_s"] <= fig["expanded_s"]
    assert fig["worker_peak_rss_mb"] > 20 and fig["window_peak_rss_mb"] > 20
    bad = subprocess.run([sys.executable, "-m", "app", "bench", "open", str(tmp_path / "missing.onnx"), "--json"],
                         cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_far_zoom_still_shows_the_graph(qtbot, view, packs):
    pack = packs["synthetic_5000.onnx"]
    _show(qtbot, view, pack)
    _redraw(qtbot, view, view.expand_all)
    view.fit()                                   # a tall, thin drawing: well under a pixel wide at this zoom
    assert view._data.lay.width * view.canvas.transform().m11() < 1
    view._minimap.hide()
    img = view.grab().toImage()
    colours = {img.pixel(x, y) for x in range(0, img.width(), 2) for y in range(0, img.height(), 5)}
    assert len(colours) >= 2


def test_tooltip_and_keys(qtbot, view, packs):
    pack = packs["synthetic_200.onnx"]
    _show(qtbot, view, pack)
    i = pack.names.index("res0/conv1")
    r = view.node_scene_rect(i)
    text = view._tooltip(r.center())
    assert text.startswith("Conv  res0/conv1") and "1×4×4×4 float32" in text
    s0 = view.canvas.transform().m11()
    QTest.keyClick(view, Qt.Key.Key_Plus)
    assert view.canvas.transform().m11() == pytest.approx(s0 * 1.25)
    view.select(i)
    with qtbot.waitSignal(view.nodeSelected, timeout=5000) as sig:
        QTest.keyClick(view, Qt.Key.Key_Escape)
    assert sig.args == [-1]
