"""Help ▸ Keyboard shortcuts: every action of the window that has a shortcut, read from the actions
themselves (text, shortcuts, where it is in the menus), so the list follows any action added or changed."""
from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QLineEdit,
                               QMenu, QTableWidget, QTableWidgetItem, QVBoxLayout)

__all__ = ["ShortcutsDialog", "shortcut_rows"]

# keys handled by widgets rather than actions (the find box, the graph); kept next to the code that
# handles them: FindEdit.keyPressEvent and GraphView.keyPressEvent
WIDGET_KEYS = [
    ("Find box", "Next match", "Enter, Down"),
    ("Find box", "Previous match", "Shift+Enter, Up"),
    ("Find box", "Back to the graph", "Esc"),
    ("Graph", "Zoom in / out", "+, -"),
    ("Graph", "Fit to window", "F"),
    ("Graph", "Clear the selection", "Esc"),
]


def _menu_paths(window) -> dict[int, str]:
    """id(action) -> "View ▸ Theme" (where the action sits in the menu bar)."""
    out: dict[int, str] = {}

    def walk(menu: QMenu, path: str) -> None:
        for a in menu.actions():
            sub = a.menu()
            if isinstance(sub, QMenu):
                walk(sub, f"{path} ▸ {_plain(a.text())}")
            elif not a.isSeparator():
                out.setdefault(id(a), path)

    for top in window.menuBar().actions():
        if isinstance(top.menu(), QMenu):
            walk(top.menu(), _plain(top.text()))
    return out


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip("…").strip()


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """(menu, action, shortcuts) of every action of ``window`` with a shortcut, in menu order, then the keys
    of the find box and the graph."""
    paths = _menu_paths(window)
    order = {k: n for n, k in enumerate(paths)}
    seen: set[int] = set()
    rows = []
    for a in window.findChildren(QAction):
        keys = [k for k in a.shortcuts() if not k.isEmpty()]
        if not keys or id(a) in seen:
            continue
        seen.add(id(a))
        text = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
        rows.append((order.get(id(a), len(order)), paths.get(id(a), "Window"), _plain(a.text()), text))
    rows.sort(key=lambda r: r[0])
    return [r[1:] for r in rows] + WIDGET_KEYS


class ShortcutsDialog(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setObjectName("shortcutsDialog")
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 560)
        rows = shortcut_rows(window)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter by action or key")
        self.filter.setClearButtonEnabled(True)
        self.table = QTableWidget(len(rows), 3, self)
        self.table.setHorizontalHeaderLabels(["Where", "Action", "Shortcut"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(v))
        h = self.table.horizontalHeader()
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.filter.textChanged.connect(self._filter)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Every shortcut of the window, read from its actions:", self))
        lay.addWidget(self.filter)
        lay.addWidget(self.table, 1)
        lay.addWidget(buttons)

    def _filter(self, text: str) -> None:
        t = text.lower()
        for r in range(self.table.rowCount()):
            cells = " ".join(self.table.item(r, c).text().lower() for c in range(3))
            self.table.setRowHidden(r, bool(t) and t not in cells)
