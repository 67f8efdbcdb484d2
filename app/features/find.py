"""Find in the current graph: nodes by name or op type, next and previous match.

A mixin of :class:`app.main_window.MainWindow`: its methods use the window's ``find_edit`` and the
current tab's canvas.
"""
from __future__ import annotations

from PySide6.QtCore import Qt


class FindFeature:
    def focus_find(self) -> None:
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    def find(self, text: str) -> list[int]:
        """Find nodes in the current graph by name or op type; selects the first. Returns indices."""
        hits = list(self._canvas("find", text) or [])
        self._find_state = (self.current_tab(), text, hits, 0)
        if text:
            self._find_message()
        return hits

    def find_next(self, step: int = 1) -> int | None:
        """Select the next match of the last search (wrapping); returns its node index."""
        tab, text, hits, pos = getattr(self, "_find_state", (None, "", [], 0))
        if tab is not self.current_tab() or not hits:
            text = self.find_edit.text()
            if not text:
                return None
            hits = self.find(text)
            return hits[0] if hits else None
        pos = (pos + step) % len(hits)
        self._find_state = (tab, text, hits, pos)
        self._canvas("select", hits[pos])
        self._find_message()
        return hits[pos]

    def find_previous(self) -> int | None:
        return self.find_next(-1)

    def _find_entered(self) -> None:
        from PySide6.QtWidgets import QApplication

        text = self.find_edit.text()
        _tab, last, hits, _pos = getattr(self, "_find_state", (None, "", [], 0))
        if text and text == last and hits:
            back = QApplication.keyboardModifiers() & Qt.KeyboardModifier.ShiftModifier
            self.find_next(-1 if back else 1)
        else:
            self.find(text)

    def _find_message(self) -> None:
        _tab, text, hits, pos = self._find_state
        if hits:
            msg = f"match {pos + 1:,} of {len(hits):,} for “{text}” (F3: next, Shift+F3: previous)"
        else:
            msg = f"no match for “{text}”"
        self.statusBar().showMessage(msg, 8000)
