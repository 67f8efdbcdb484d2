"""Find in the current graph: nodes by name, op type or module path; next and previous match, a hit list,
every hit marked on the graph.

Keys in the find box: Enter / Down = next match, Shift+Enter / Up = previous (wrapping), Escape = back to
the graph; F3 / Shift+F3 anywhere in the window. The box counts "3 of 58"; the Find results dock lists
every hit (a click selects and centres it); the graph rings every hit (a hit inside a collapsed group
rings the group's box).

A mixin of :class:`app.main_window.MainWindow`: its methods use the window's ``find_edit``, ``find_count``
and ``find_dock`` and the current tab's canvas.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import (QAbstractItemView, QGraphicsItem, QHeaderView, QLabel, QLineEdit, QTableView,
                               QVBoxLayout, QWidget)

__all__ = ["FindFeature", "FindEdit", "HitList", "HitMarks", "search"]

MARK = (224, 32, 192)  # magenta: apart from the selection's orange and every op category's colour
MARK_LIMIT = 20000   # hits ringed on the graph at most (the list and the count show them all)
_lower: "weakref.WeakKeyDictionary[Any, tuple[list[str], list[str], list[str]]]" = weakref.WeakKeyDictionary()


def _lowered(pack) -> tuple[list[str], list[str], list[str]]:
    """The pack's node names, op names and group paths in lower case (once per pack)."""
    v = _lower.get(pack)
    if v is None:
        v = _lower[pack] = ([s.lower() for s in pack.names], [o.lower() for o in pack.ops],
                            [p.lower() for p in pack.group_paths])
    return v


def search(doc, text: str) -> list[int]:
    """Nodes of ``doc`` that match ``text`` (case-insensitive): exact names first, then names that contain
    it, op types that contain it, then nodes whose module path (scope) contains it; graph order within each."""
    t = text.strip().lower()
    if doc is None or not t or doc.weights_only:
        return []
    pack = doc.pack
    if pack is not None:
        names, ops, paths = _lowered(pack)
        by_name = [i for i, s in enumerate(names) if t in s]
        exact = [i for i in by_name if names[i] == t]
        op_hit = np.array([t in o for o in ops] + [False], bool)
        by_op = np.flatnonzero(op_hit[pack.node_op]).tolist() if len(pack.node_op) else []
        g_hit = np.array([t in p for p in paths] + [False], bool)
        by_scope = np.flatnonzero(g_hit[pack.node_group]).tolist() if len(pack.node_group) else []
        tiers = [exact, by_name, by_op, by_scope]
    else:
        n = doc.node_count
        labels = [doc.node_label(i) for i in range(n)]
        by_name = [i for i in range(n) if t in (labels[i][1] or "").lower()]
        exact = [i for i in by_name if (labels[i][1] or "").lower() == t]
        by_op = [i for i in range(n) if t in (labels[i][0] or "").lower()]
        by_scope = [i for i in range(n) if t in str(doc.details(i).get("scope") or "").lower()]
        tiers = [exact, by_name, by_op, by_scope]
    seen: set[int] = set()
    out: list[int] = []
    for tier in tiers:
        for i in tier:
            if i not in seen:
                seen.add(i)
                out.append(int(i))
    return out


def scope_of(doc, i: int) -> str:
    """Node ``i``'s module path: its group's path in a pack, the node's scope otherwise."""
    pack = doc.pack
    if pack is not None:
        paths = pack.group_paths
        g = int(pack.node_group[i])
        return paths[g] if 0 <= g < len(paths) else ""
    return str(doc.details(i).get("scope") or "")


class FindEdit(QLineEdit):
    """The find box: Enter / Down = next, Shift+Enter / Up = previous, Escape = back to the graph."""

    step = Signal(int)
    escaped = Signal()

    def keyPressEvent(self, e) -> None:
        k = e.key()
        shift = bool(e.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if k in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.step.emit(-1 if shift else 1)
        elif k == Qt.Key.Key_Down:
            self.step.emit(1)
        elif k == Qt.Key.Key_Up:
            self.step.emit(-1)
        elif k == Qt.Key.Key_Escape:
            self.escaped.emit()
        else:
            super().keyPressEvent(e)
            return
        e.accept()


class _HitModel(QAbstractTableModel):
    HEADERS = ("#", "Op", "Name", "Module path")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.doc = None
        self.hits: list[int] = []

    def set_hits(self, doc, hits: list[int]) -> None:
        self.beginResetModel()
        self.doc, self.hits = doc, list(hits)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.hits)

    def columnCount(self, parent=QModelIndex()) -> int:
        return len(self.HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.doc is None:
            return None
        i = self.hits[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            c = index.column()
            if c == 0:
                return f"{index.row() + 1:,}"
            op, name = self.doc.node_label(i)
            return (op, name, scope_of(self.doc, i))[c - 1]
        if role == Qt.ItemDataRole.UserRole:
            return i
        return None


class HitList(QWidget):
    """Every hit of the last search; ``hitActivated(position)`` when the user picks one."""

    hitActivated = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("Type in the find box (Ctrl+F) to list the matching nodes.", self)
        self.title.setWordWrap(True)
        self.model = _HitModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        h = self.table.horizontalHeader()
        fm = self.fontMetrics()
        # fixed widths: sizing to contents would read every row of a list of tens of thousands of hits
        for c, sample in ((0, "0000"), (1, "BatchNorm"), (2, "encoder_attn_q")):
            h.setSectionResizeMode(c, QHeaderView.ResizeMode.Interactive)
            h.resizeSection(c, fm.horizontalAdvance(sample) + 12)
        h.setStretchLastSection(True)
        self.table.clicked.connect(lambda ix: self.hitActivated.emit(ix.row()))
        self.table.activated.connect(lambda ix: self.hitActivated.emit(ix.row()))
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.table, 1)

    def set_hits(self, doc, text: str, hits: list[int]) -> None:
        self.model.set_hits(doc, hits)
        if not text:
            self.title.setText("Type in the find box (Ctrl+F) to list the matching nodes.")
        elif hits:
            self.title.setText(f"{len(hits):,} nodes match “{text}” (name, op type or module path)")
        else:
            self.title.setText(f"No node matches “{text}”.")

    def set_current(self, pos: int) -> None:
        if 0 <= pos < self.model.rowCount():
            ix = self.model.index(pos, 0)
            self.table.selectionModel().select(
                ix, self.table.selectionModel().SelectionFlag.ClearAndSelect
                | self.table.selectionModel().SelectionFlag.Rows)
            self.table.scrollTo(ix)


class HitMarks(QGraphicsItem):
    """Rings around every hit on a :class:`~app.graph_view.GraphView` (above the graph, below nothing);
    a hit hidden in a collapsed group rings the group's box with a dashed line."""

    def __init__(self, view):
        super().__init__()
        self.view = view
        self.hits: list[int] = []
        self.rects: list[tuple[QRectF, bool]] = []
        self._bounds = QRectF()
        self.setZValue(10)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        view.canvas.scene().addItem(self)
        view.drawn.connect(self.relayout)

    def set_hits(self, hits: list[int]) -> None:
        self.hits = list(hits[:MARK_LIMIT])
        self.relayout()

    def relayout(self) -> None:
        """Look the hits' rectangles up in the current layout (after each new layout)."""
        v = self.view
        rects: list[tuple[QRectF, bool]] = []
        box_of: dict[int, int] = {}   # group -> the drawn group that shows it (-1: none), memoised
        boxes: set[int] = set()
        pack = v.pack

        def drawn_group(g: int) -> int:
            chain = []
            found = -1
            while g >= 0:
                if g in box_of:
                    found = box_of[g]
                    break
                chain.append(g)
                if v.group_scene_rect(g) is not None:
                    found = g
                    break
                g = int(pack.group_parent[g])
            for c in chain:
                box_of[c] = found
            return found

        for i in self.hits:
            r = v.node_scene_rect(i)
            if r is not None:
                rects.append((r, False))
                continue
            g = drawn_group(int(pack.node_group[i])) if pack is not None else -1
            if g >= 0 and g not in boxes:
                boxes.add(g)
                rects.append((v.group_scene_rect(g), True))
        self.prepareGeometryChange()
        self.rects = rects
        b = QRectF()
        for r, _ in rects:
            b = b.united(r)
        self._bounds = b.adjusted(-12, -12, 12, 12)
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, p, option, widget=None) -> None:
        if not self.rects:
            return
        exposed = option.exposedRect
        pen = QPen(QColor(*MARK), 3)
        pen.setCosmetic(True)
        dashed = QPen(pen)
        dashed.setStyle(Qt.PenStyle.DashLine)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for r, hidden in self.rects:
            if not exposed.intersects(r):
                continue
            p.setPen(dashed if hidden else pen)
            p.drawRoundedRect(r.adjusted(-6, -6, 6, 6), 7, 7)


def mark_hits(canvas, hits: list[int]) -> None:
    """Mark ``hits`` on a tab's canvas ([] clears): the canvas's own ``set_marked`` where it has one, else
    rings drawn over a graph view's scene."""
    if canvas is None:
        return
    if hasattr(canvas, "set_marked"):
        canvas.set_marked(hits)
        return
    if not hasattr(canvas, "node_scene_rect"):
        return
    marks = getattr(canvas, "_find_marks", None)
    if marks is None:
        if not hits:
            return
        marks = canvas._find_marks = HitMarks(canvas)
    marks.set_hits(hits)


def marked_hits(canvas) -> list[int]:
    """The hits marked on ``canvas`` (what :func:`mark_hits` set)."""
    if hasattr(canvas, "marked"):
        return list(canvas.marked)
    marks = getattr(canvas, "_find_marks", None)
    return list(marks.hits) if marks is not None else []


class FindFeature:
    def _setup_find(self) -> None:
        """The find box, its count and the Find results dock (the toolbar places the first two)."""
        self.find_edit = FindEdit(self)
        self.find_edit.setObjectName("findEdit")
        self.find_edit.setPlaceholderText("Find node: name, op or module (Ctrl+F)")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.setMaximumWidth(280)
        self.find_edit.step.connect(self._find_step)
        self.find_edit.escaped.connect(self._find_escape)
        self.find_edit.textEdited.connect(lambda _t: self._find_timer.start())
        self.find_edit.textChanged.connect(lambda t: t or self.find(""))  # the clear button
        self.find_count = QLabel("", self)
        self.find_count.setObjectName("findCount")
        self.find_count.setMinimumWidth(70)
        self._find_timer = QTimer(self)
        self._find_timer.setSingleShot(True)
        self._find_timer.setInterval(250)  # search as you type, once typing pauses
        self._find_timer.timeout.connect(lambda: self.find(self.find_edit.text()))
        self._find_state: tuple = (None, "", [], 0)
        self.hit_list = HitList(self)
        self.hit_list.hitActivated.connect(self.go_to_hit)
        self.find_dock = self._dock("Find results", "find", self.hit_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.find_dock.hide()
        self._find_dock_sized = False

    def focus_find(self) -> None:
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    def find_all(self) -> list[int]:
        """Show the Find results dock for the find box's text (searching it when it is new)."""
        self.find_dock.show()
        self.find_dock.raise_()
        if not self._find_dock_sized:  # wide enough for op, name and module path side by side
            self._find_dock_sized = True
            self.resizeDocks([self.find_dock], [360], Qt.Orientation.Horizontal)
        tab, text, hits, _pos = self._find_state
        if tab is not self.current_tab() or text != self.find_edit.text():
            hits = self.find(self.find_edit.text())
        self.focus_find()
        return hits

    def find(self, text: str) -> list[int]:
        """Find nodes in the current graph by name, op type or module path; selects and centres the first,
        marks all. Returns their indices."""
        self._find_timer.stop()
        tab = self.current_tab()
        old = self._find_state[0]
        if old is not None and old is not tab:
            self._clear_marks(old)
        doc = tab.doc if tab is not None else None
        hits = search(doc, text)
        self._find_state = (tab, text, hits, 0)
        if tab is not None:
            mark_hits(tab.canvas, hits)
            if hits:
                tab.canvas_call("select", hits[0])
        self.hit_list.set_hits(doc, text, hits)
        self.hit_list.set_current(0)
        self._find_message()
        return hits

    def find_next(self, step: int = 1) -> int | None:
        """Select the next match of the search (wrapping; ``step`` -1: the previous); returns its node index."""
        tab, text, hits, pos = self._find_state
        if tab is not self.current_tab() or text != self.find_edit.text() or self._find_timer.isActive():
            text = self.find_edit.text()
            if not text:
                return None
            hits = self.find(text)
            if not hits:
                return None
            if step > 0:
                return hits[0]
            pos = 0   # Shift+Enter on new text: the last match
        if not hits:
            self._find_message()
            return None
        return self.go_to_hit((pos + step) % len(hits))

    def find_previous(self) -> int | None:
        return self.find_next(-1)

    def go_to_hit(self, pos: int) -> int | None:
        """Select and centre hit number ``pos`` (0-based) of the last search."""
        tab, text, hits, _old = self._find_state
        if tab is None or not 0 <= pos < len(hits):
            return None
        self._find_state = (tab, text, hits, pos)
        tab.canvas_call("select", hits[pos])
        self.hit_list.set_current(pos)
        self._find_message()
        return hits[pos]

    def _find_tab_changed(self) -> None:
        """Another tab shown: the count and the list are of the tab searched (back on it, they return)."""
        tab, text, hits, _pos = self._find_state
        if tab is not None and tab is self.current_tab():
            self.hit_list.set_hits(tab.doc, text, hits)
            self.hit_list.set_current(self._find_state[3])
            self._find_message()
        elif text:
            self.find_count.setText("")
            self.hit_list.set_hits(None, "", [])

    def _find_step(self, step: int) -> None:
        self.find_next(step)

    def _find_escape(self) -> None:
        tab = self.current_tab()
        if tab is not None and tab.canvas is not None:
            tab.canvas.setFocus()

    def _clear_marks(self, tab) -> None:
        try:
            mark_hits(tab.canvas, [])
        except RuntimeError:  # the tab was closed and deleted
            pass

    def _find_message(self) -> None:
        _tab, text, hits, pos = self._find_state
        if not text:
            self.find_count.setText("")
            return
        if hits:
            self.find_count.setText(f"{pos + 1:,} of {len(hits):,}")
            msg = f"match {pos + 1:,} of {len(hits):,} for “{text}” (Enter, F3: next; Shift+Enter, Shift+F3: previous)"
        else:
            self.find_count.setText("no match")
            msg = f"no match for “{text}”"
        self.statusBar().showMessage(msg, 8000)
