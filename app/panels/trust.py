"""Trusting a file is a deliberate choice: a confirmation that says what would run, Cancel by default."""
from __future__ import annotations

import os
from typing import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

__all__ = ["TrustDialog"]

RUN_LABEL = "Run its code and open"


class TrustDialog(QMessageBox):
    """Asks before a file's own code runs. ``reason`` is the engine's one-line refusal, which names what
    would run (``calls posix.system('…')``, ``runs TorchScript code (__setstate__ …)``, ``writes files``).

    Window-modal and opened with :meth:`open`, so it never blocks the event loop; Cancel is the default
    and Escape button, so Enter or a stray click does not trust the file.
    """

    def __init__(self, path: str, reason: str, on_trust: Callable[[], None], parent: QWidget | None = None):
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Warning)
        self.setWindowTitle("Run code from this file?")
        name = os.path.basename(path.rstrip(os.sep)) or path
        self.setText(f"Opening {name} runs code stored in the file.")
        detail = reason.split(": ", 1)[1] if reason.startswith(path + ": ") else reason
        # the refusal ends with advice on how to trust (--trust, this very dialog): keep what would run
        parts = detail.split("; ")
        detail = "; ".join(p for i, p in enumerate(parts) if i == 0 or "trust" not in p.lower())
        self.setInformativeText(
            f"What would run: {detail}\n\nCode from a file can do anything your user account can: read, "
            f"change or delete your files, or reach the network. Continue only if you know where this file "
            f"came from and trust it.")
        self.run_button = self.addButton(RUN_LABEL, QMessageBox.ButtonRole.AcceptRole)
        self.cancel_button = self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.cancel_button)
        self.setEscapeButton(self.cancel_button)
        self._on_trust = on_trust
        self.buttonClicked.connect(self._clicked)

    def _clicked(self, button) -> None:
        if button is self.run_button:
            self._on_trust()
