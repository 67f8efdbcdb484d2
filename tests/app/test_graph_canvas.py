"""The graph canvas as a daily tool, on real ONNX files drawn by the real window (offscreen): a first view
where labels can be read, zoom about the cursor and about the selection, full group paths on headers at
mid zoom, the dark canvas, PNG and SVG export, graph inputs and outputs drawn as pills."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QWheelEvent
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from app.graph_view import GraphView, palette
from app.graph_view.item import TITLE_MIN_PX, _fonts, paint_layout
from converters.formats import load
from converters.viewpack import build_pack
from tests.app import test_graph_view as _graph_view

view = _graph_view.view     # the same bare GraphView fixture
_show = _graph_view._show   # and its draw helper

LOAD_TIMEOUT = 120_000
SVG = "{http://www.w3.org/2000/svg}"


def _save(model, path) -> str:
    import onnx

    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def _wide_model(branches: int = 48, depth: int = 21):
    """About 1,000 nodes side by side: one input feeding ``branches`` chains summed at the end. At fit
    all it is over 10,000 units wide, so its labels would be a few pixels high."""
    from onnx import TensorProto, helper

    nodes = []
    for b in range(branches):
        x = "x"
        for d in range(depth):
            op = ("Relu", "Sigmoid", "Tanh")[d % 3]
            y = f"b{b}_{d}"
            nodes.append(helper.make_node(op, [x], [y], name=f"branch{b}/stage{d // 7}/{op.lower()}{d}"))
            x = y
    nodes.append(helper.make_node("Sum", [f"b{b}_{depth - 1}" for b in range(branches)], ["y"], name="head/sum"))
    g = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _deep_scopes_model():
    """Two blocks of four parallel ops under long, nested scope names (as exporters of transformers
    write them)."""
    from onnx import TensorProto, helper

    nodes, x = [], "x"
    for blk in range(2):
        scope = f"model/encoder/layers.{blk}/self_attention/core"
        outs = []
        for op in ("Relu", "Sigmoid", "Tanh", "Abs"):
            outs.append(f"v{blk}_{op}")
            nodes.append(helper.make_node(op, [x], [outs[-1]], name=f"{scope}/{op.lower()}"))
        x = f"s{blk}"
        nodes.append(helper.make_node("Sum", outs, [x], name=f"{scope}/sum"))
    g = helper.make_graph(nodes, "deep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 8])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from benchmarks.make_large_onnx import make_model

    d = tmp_path_factory.mktemp("canvas_models")
    return {"wide": _save(_wide_model(), d / "wide_1000.onnx"),
            "tall": _save(make_model(1000), d / "synthetic_1000.onnx"),
            "deep": _save(_deep_scopes_model(), d / "deep_scopes.onnx")}


@pytest.fixture(scope="module")
def packs(files, tmp_path_factory):
    return {k: build_pack(load(p), tmp_path_factory.mktemp("pack")) for k, p in files.items()}


def _open(window, qtbot, path) -> GraphView:
    tab = window.open_path(path)
    qtbot.waitUntil(lambda: tab.state in ("ready", "failed"), timeout=LOAD_TIMEOUT)
    assert tab.state == "ready", tab.error
    canvas = tab.canvas
    qtbot.waitUntil(lambda: canvas._data is not None and canvas.drawn_count() > 0, timeout=LOAD_TIMEOUT)
    qtbot.wait(100)
    return canvas


def _io_rect(view, kind: int) -> QRectF:
    lay = view._data.lay
    k = int(np.flatnonzero(np.asarray(view.pack.io_kind)[lay.io_idx] == kind)[0])
    return QRectF(*lay.io_rect[k])


def _on_screen(view, scene_rect: QRectF) -> bool:
    return view.canvas.viewport().rect().contains(view.canvas.mapFromScene(scene_rect).boundingRect())


# -- first view ------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["wide", "tall"])
def test_first_view_of_a_1000_node_model_is_readable(window, qtbot, files, which):
    """Opened in the window, a 1,000-node model's op names and edge shapes are drawn at a readable size
    without touching the zoom, and its input is on screen (the minimap has the whole graph)."""
    canvas = _open(window, qtbot, files[which])
    assert canvas.pack.n_nodes >= 1000
    op_font, name_font, _title, small_font = _fonts()
    assert op_font.pixelSize() * canvas.zoom >= 10          # op types: ≥ 10 px on screen
    assert small_font.pixelSize() * canvas.zoom >= 8        # edge shapes: ≥ 8 px
    vp = canvas.canvas.viewport().rect()
    if which == "wide":
        # fit-all would have drawn the 11 px op names under 2 px high
        fit = min(vp.width() / canvas._data.bounds.width(), vp.height() / canvas._data.bounds.height())
        assert op_font.pixelSize() * fit < 2
    # anchored on the graph's input, at the top of the graph
    assert _on_screen(canvas, _io_rect(canvas, 1))
    # nodes are drawn with their labels: many visible node rectangles
    vis = canvas.canvas.mapToScene(vp).boundingRect()
    d = canvas._data
    x0, y0, x1, y1 = d.n
    shown = (x0 >= vis.left()) & (x1 <= vis.right()) & (y0 >= vis.top()) & (y1 <= vis.bottom())
    boxes = d.b
    shown_boxes = (boxes[0] >= vis.left()) & (boxes[2] <= vis.right()) & (boxes[1] >= vis.top()) & (boxes[3] <= vis.bottom())
    assert shown.sum() + shown_boxes.sum() >= 5
    assert canvas._minimap.isVisible() and canvas._minimap.thumb is not None


# -- zoom ------------------------------------------------------------------------------------------
def _wheel(widget, pos: QPoint, delta: int) -> None:
    ev = QWheelEvent(QPointF(pos), QPointF(widget.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, delta),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_wheel_zoom_keeps_the_scene_point_under_the_cursor(qtbot, view, packs):
    _show(qtbot, view, packs["tall"])
    vp = view.canvas.viewport()
    for pos, delta in ((QPoint(200, 150), 240), (QPoint(700, 500), -360), (QPoint(820, 90), 120)):
        z0 = view.zoom
        under = view.canvas.mapToScene(pos)
        _wheel(vp, pos, delta)
        assert view.zoom == pytest.approx(z0 * 1.0015 ** delta, rel=1e-6)
        back = view.canvas.mapFromScene(under)
        assert abs(back.x() - pos.x()) <= 1 and abs(back.y() - pos.y()) <= 1, (pos, back)


def test_keyboard_and_toolbar_zoom_keep_the_selected_node_in_place(qtbot, view, packs):
    pack = packs["tall"]
    _show(qtbot, view, pack)
    i = pack.names.index("res0/bn1")
    r = view.node_scene_rect(i)
    view.set_view(1.0, r.center() + QPointF(250, 180))     # the node well off the middle
    view.select(i, center=False)
    at = view.canvas.mapFromScene(r.center())
    assert view.canvas.viewport().rect().contains(at)
    assert (at - view.canvas.viewport().rect().center()).manhattanLength() > 200
    z0 = view.zoom
    QTest.keyClick(view, Qt.Key.Key_Plus)
    view.zoom_in()
    view.zoom_out()
    assert view.zoom == pytest.approx(z0 * 1.25, rel=1e-6)
    now = view.canvas.mapFromScene(r.center())
    assert abs(now.x() - at.x()) <= 1 and abs(now.y() - at.y()) <= 1
    # no selection: about the middle of the view
    view.select(-1, center=False)
    mid = view.canvas.viewport().rect().center()
    under = view.canvas.mapToScene(mid)
    QTest.keyClick(view, Qt.Key.Key_Minus)
    back = view.canvas.mapFromScene(under)
    assert abs(back.x() - mid.x()) <= 1 and abs(back.y() - mid.y()) <= 1


# -- group headers ---------------------------------------------------------------------------------
def _svg_texts(data, lod: float, out, size=(900, 500), dark=False) -> list[tuple[str, float]]:
    """Paint a layout at zoom ``lod`` through the real painting code into an SVG; the texts drawn, with
    their on-screen font size."""
    gen = QSvgGenerator()
    gen.setFileName(str(out))
    gen.setSize(QRectF(0, 0, *size).size().toSize())
    p = QPainter(gen)
    p.scale(lod, lod)
    paint_layout(p, data, QRectF(-50, -50, size[0] / lod + 100, size[1] / lod + 100), lod, selected=-1, dark=dark)
    p.end()
    root = ET.parse(str(out)).getroot()
    out = []
    for g in root.iter(f"{SVG}g"):
        fs = g.get("font-size")
        m = g.get("transform", "")
        scale = 1.0
        if m.startswith("matrix("):
            scale = float(m[7:-1].split(",")[0])
        for t in g.iter(f"{SVG}text"):
            text = "".join(t.itertext()).strip()
            if text and fs:
                out.append((text, float(fs) * scale))
    return out


@pytest.mark.parametrize("lod", [0.3, 1.2])
def test_group_headers_show_the_full_path_elided_from_the_left(qtbot, view, packs, lod, tmp_path):
    pack = packs["deep"]
    _show(qtbot, view, pack)
    with qtbot.waitSignal(view.drawn, timeout=30_000):
        view.expand_all()
    d = view._data
    g = pack.group_paths.index("model/encoder/layers.1/self_attention/core")
    texts = _svg_texts(d, lod, tmp_path / "at.svg")
    full = pack.group_paths[g]
    assert full.startswith("model/encoder/") and full.endswith("layers.1/self_attention/core")
    heads = [(t, px) for t, px in texts if t.endswith(f"  ({int(pack.group_count[g]):,})")]
    assert len(heads) == 2, [t for t, _ in texts]          # both blocks' frames have a title
    text, px = heads[-1]
    assert px >= TITLE_MIN_PX - 0.01                       # readable at mid zoom too
    path = text.rsplit("  (", 1)[0]
    assert path.endswith("ention/core")                    # the distinctive tail stays
    assert path == full or (path.startswith("…") and full.endswith(path[1:]))
    # the frame is narrower than the path at this zoom: elided from the left, the tail kept
    if lod < 1:
        assert path.startswith("…")
    # the tooltip over the header has the full path
    fr = view.group_scene_rect(g)
    tip = view._tooltip(QPointF(fr.x() + 20, fr.y() + 10))
    assert tip.startswith(full + "  (")


def test_group_headers_are_on_screen_at_mid_zoom(qtbot, view, packs):
    """Real window pixels: at zoom 0.3 the header band of an expanded group has title text in it."""
    pack = packs["deep"]
    _show(qtbot, view, pack)
    with qtbot.waitSignal(view.drawn, timeout=30_000):
        view.expand_all()
    g = pack.group_paths.index("model/encoder/layers.0/self_attention/core")
    fr = view.group_scene_rect(g)
    view.set_view(0.3, fr.center())
    view._minimap.hide()
    qtbot.wait(50)
    img = view.canvas.viewport().grab().toImage()
    tl = view.canvas.mapFromScene(QPointF(fr.x() + 8, fr.y() + 3))
    band = [QColor(img.pixel(x, y)).lightness() for x in range(tl.x(), tl.x() + 40) for y in range(tl.y(), tl.y() + 10)]
    assert min(band) < 110          # dark glyphs on the light canvas


# -- theme -----------------------------------------------------------------------------------------
def _corner_lightness(canvas) -> int:
    img = canvas.canvas.viewport().grab().toImage()
    return QColor(img.pixel(3, img.height() - 4)).lightness()


def test_canvas_minimap_and_io_follow_the_theme_at_runtime(window, qtbot, files):
    canvas = _open(window, qtbot, files["wide"])
    try:
        window.set_theme("light")
        qtbot.wait(50)
        assert not canvas.dark and _corner_lightness(canvas) > 200
        window.set_theme("dark")
        qtbot.waitUntil(lambda: canvas.dark, timeout=5000)
        qtbot.wait(50)
        assert _corner_lightness(canvas) < 70                       # the canvas itself is dark
        mm = canvas._minimap.grab().toImage()
        assert QColor(mm.pixel(2, 2)).lightness() < 90               # and the minimap
        # the graph input is a pill in the dark I/O colour
        io = _io_rect(canvas, 1)
        canvas.set_view(1.0, io.center())
        qtbot.wait(50)
        img = canvas.canvas.viewport().grab().toImage()
        at = canvas.canvas.mapFromScene(QPointF(io.x() + io.height() / 2 + 2, io.y() + 4))
        got = QColor(img.pixel(at))
        want = palette.io_colors(1, True)[0]
        assert abs(got.red() - want.red()) + abs(got.green() - want.green()) + abs(got.blue() - want.blue()) < 40
        window.set_theme("light")
        qtbot.waitUntil(lambda: not canvas.dark, timeout=5000)
        qtbot.wait(50)
        assert _corner_lightness(canvas) > 200
    finally:
        window.set_theme("system")


# -- graph inputs and outputs ------------------------------------------------------------------------
def test_graph_inputs_and_outputs_are_drawn_as_pills(qtbot, view, packs):
    pack = packs["wide"]
    _show(qtbot, view, pack)
    for kind, name in ((1, "x"), (2, "y")):
        io = _io_rect(view, kind)
        view.set_view(1.0, io.center())
        view._minimap.hide()
        qtbot.wait(30)
        img = view.canvas.viewport().grab().toImage()
        at = view.canvas.mapFromScene(QPointF(io.x() + io.height() / 2 + 2, io.y() + 4))
        got = QColor(img.pixel(at))
        want = palette.io_colors(kind, False)[0]
        assert abs(got.red() - want.red()) + abs(got.green() - want.green()) + abs(got.blue() - want.blue()) < 40
        # a pill: the corner of its rectangle is canvas, not the pill's fill
        corner = QColor(img.pixel(view.canvas.mapFromScene(QPointF(io.x() + 1, io.y() + 1))))
        assert corner.lightness() > want.lightness() + 5 or corner != got
        tip = view._tooltip(io.center())
        assert tip.startswith(f"graph {'input' if kind == 1 else 'output'}  {name}") and "1×8" in tip


# -- export ----------------------------------------------------------------------------------------
def _non_background(img: QImage, bg: QColor, step: int = 3) -> int:
    b = bg.rgb() & 0xFFFFFF
    return sum((img.pixel(x, y) & 0xFFFFFF) != b for x in range(0, img.width(), step) for y in range(0, img.height(), step))


def test_export_png_whole_and_visible(qtbot, view, packs, tmp_path):
    from app.graph_view.export import MAX_SIDE

    # a graph over the side limit (41,000 units tall) is scaled down to it
    _show(qtbot, view, packs["tall"])
    assert view._data.bounds.height() > MAX_SIDE
    size = view.export_image(str(tmp_path / "tall.png"), whole=True)
    assert size.height() == MAX_SIDE and QImage(str(tmp_path / "tall.png")).height() == MAX_SIDE
    pack = packs["wide"]
    _show(qtbot, view, pack)
    b = view._data.bounds
    size = view.export_image(str(tmp_path / "whole.png"), whole=True)
    img = QImage(str(tmp_path / "whole.png"))
    assert not img.isNull() and (img.width(), img.height()) == (size.width(), size.height())
    assert (img.width(), img.height()) == (round(b.width()), round(b.height()))   # 1 px per unit: readable
    bg = view._scene.backgroundBrush().color()
    assert QColor(img.pixel(2, 2)).rgb() == bg.rgb()
    assert _non_background(img, bg, 7) > 2000
    size = view.export_image(str(tmp_path / "part.png"), whole=False)
    part = QImage(str(tmp_path / "part.png"))
    vp = view.canvas.viewport()
    assert abs(part.width() - vp.width()) <= 2 and abs(part.height() - vp.height()) <= 2
    assert _non_background(part, bg) > 500


def test_export_svg_has_the_labels_as_text(qtbot, view, packs, tmp_path):
    pack = packs["tall"]
    _show(qtbot, view, pack)
    out = tmp_path / "graph.svg"
    view.export_image(str(out), whole=True)
    root = ET.parse(out).getroot()
    assert root.tag == f"{SVG}svg"
    texts = {"".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")}
    assert {"Conv", "BatchNormalization", "conv1", "image"} <= texts
    assert any("1×4×4×4 float32" in t for t in texts)
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        view.export_image(str(tmp_path / "graph.jpg"))


def test_export_in_the_background_reports_one_line(qtbot, view, packs, tmp_path):
    from app.graph_view.export_dialog import start_export

    _show(qtbot, view, packs["wide"])
    with qtbot.waitSignal(view.exported, timeout=30_000) as sig:
        start_export(view, str(tmp_path / "wide.png"), whole=True)
    assert sig.args == [str(tmp_path / "wide.png"), ""]
    assert not QImage(str(tmp_path / "wide.png")).isNull()
    with qtbot.waitSignal(view.exported, timeout=30_000) as sig:
        start_export(view, str(tmp_path / "missing" / "wide.svg"), whole=False)
    err = sig.args[1]
    assert "does not exist; choose another folder" in err and "\n" not in err and "Traceback" not in err
    from PySide6.QtWidgets import QMessageBox

    qtbot.waitUntil(lambda: view.window().findChild(QMessageBox, "exportError") is not None, timeout=5000)
    box = view.window().findChild(QMessageBox, "exportError")
    assert box.text() == f"The graph was not exported: {err}." and "\n" not in box.text()
    box.close()


def test_view_menu_export_graph_writes_the_picture(window, qtbot, files, tmp_path):
    """View ▸ Export graph… in the real window: the dialog, the background render, the status bar."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QDialogButtonBox

    from app.graph_view.export_dialog import ExportDialog

    canvas = _open(window, qtbot, files["deep"])
    view_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    action = next(a for a in view_menu.actions() if a.text() == "E&xport graph…")
    out = tmp_path / "from_menu.svg"
    seen = {}

    def fill():
        dlg = QApplication.activeModalWidget()
        assert isinstance(dlg, ExportDialog)
        seen["default"] = dlg.path.text()
        dlg.path.setText(str(out))
        dlg.visible.setChecked(True)
        dlg.buttons.button(QDialogButtonBox.StandardButton.Save).click()

    QTimer.singleShot(200, fill)
    with qtbot.waitSignal(canvas.exported, timeout=30_000) as sig:
        action.trigger()
    assert sig.args == [str(out), ""]
    assert seen["default"].endswith("deep_scopes-graph.png")
    texts = {"".join(t.itertext()).strip() for t in ET.parse(out).getroot().iter(f"{SVG}text")}
    assert texts                                         # the visible part, with its labels
    qtbot.waitUntil(lambda: str(out) in window.statusBar().currentMessage(), timeout=5000)


def test_a_header_too_narrow_for_its_last_scope_keeps_that_scopes_start(qtbot):
    """Left elision keeps the last scopes; when not even the last one fits, it keeps its own start, so a
    structural block's number stays readable (``…/block 3 (Conv·…``) instead of ``…Relu·Add)``."""
    from PySide6.QtGui import QFont, QFontMetricsF

    from app.graph_view.item import _elide_left

    fm = QFontMetricsF(QFont())
    path = "blocks 1–24 (…)/block 3 (Conv·BatchNorm·Relu·Add)"
    assert _elide_left(fm, path, "  (12)", 1000) == path + "  (12)"
    narrow = _elide_left(fm, path, "  (12)", fm.horizontalAdvance("…/block 3 (Conv·  (12)") + 2)
    assert narrow.startswith("…/block 3") and narrow.endswith("…  (12)")
    module = "model/encoder/layers.1/self_attention/core"
    mid = _elide_left(fm, module, "", fm.horizontalAdvance("…attention/core") + 1)
    assert mid.startswith("…") and module.endswith(mid[1:]) and mid.endswith("/core")
