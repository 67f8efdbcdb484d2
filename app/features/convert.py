"""Converting from the window: a file dropped on a target, the planned route and its options, the
conversion job with progress (the step, a busy bar, the seconds elapsed) and Cancel in the dialog and the
status bar, the result opened in a tab (and its parity check).

A mixin of :class:`app.main_window.MainWindow`: its methods use the window's widgets and job registry."""
from __future__ import annotations

import os
import re
from typing import Any

from PySide6.QtCore import Qt, QTimer

from converters.errors import ErrorKind

from ..jobs import QtJob, show_fraction
from ..panels.convert import TARGET_LABELS, ConvertDialog


class ConvertFeature:
    def convert_current(self, target: str) -> None:
        tab = self.current_tab()
        if tab is None:
            self.show_notice("Open a model first, or drop a model file on a convert target.", "info")
            return
        self.convert_path(tab.path, target)

    def convert_path(self, path: str, target: str, *, trust: bool | None = None) -> ConvertDialog | None:
        """Plan a conversion of ``path`` to ``target`` and show the route and options; the conversion
        runs when the dialog is accepted. Returns the (non-modal) dialog, or None when no route exists."""
        if trust is None:  # a file already opened with trust keeps it
            trust = any(t.trust for t in self.model_tabs() if t.path == os.path.abspath(path))
        dlg = ConvertDialog(path, target, self)
        if dlg.error is not None:
            self.show_notice(f"Cannot convert {os.path.basename(path)} to {TARGET_LABELS.get(target, target)}: "
                             f"{dlg.error}", "error")
            dlg.deleteLater()
            return None
        self.notice.hide()
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def requested(params: dict) -> None:
            if trust:
                params["options"]["trust"] = True
            dlg.follow(self.run_conversion(params))

        dlg.convertRequested.connect(requested)
        key = id(dlg)

        def forget() -> None:
            if id(self.convert_dialog) == key:
                self.convert_dialog = None

        dlg.destroyed.connect(forget)
        self.convert_dialog = dlg
        dlg.open()
        return dlg

    def run_conversion(self, params: dict[str, Any]) -> QtJob:
        """Run the ``convert`` task; its output opens in a new tab when it succeeds."""
        src, to = params["src"], params["to"]
        label = TARGET_LABELS.get(to, to)
        job = self.jobs.run("convert", params, title=f"convert {os.path.basename(src)} → {label}")
        self._status_job = job
        said = [f"Converting {os.path.basename(src)} → {label}"]
        self.job_bar.setRange(0, 0)  # busy while a step reports nothing; the seconds say it is alive
        for w in (self.job_label, self.job_bar, self.job_cancel):
            w.show()
        tick = QTimer(self)
        tick.setInterval(500)

        def show_label() -> None:
            if job is self._status_job:
                took = job.elapsed
                self.job_label.setText(said[0] + (f" · {int(took)} s" if took is not None else ""))

        tick.timeout.connect(show_label)
        tick.start()
        show_label()

        def progress(f, m) -> None:
            if job is self._status_job:
                # the convert task reports i/n as each step starts; within a step it says nothing
                show_fraction(self.job_bar, None if f is not None and f < 1 else f)
                if m:
                    step = re.match(r"\s*(\d+)/(\d+)\s+(.*)", m)
                    said[0] = f"{label}: step {step[1]} of {step[2]}, {step[3]}" if step else f"{label}: {m}"
                show_label()

        def ended() -> None:
            tick.stop()
            tick.deleteLater()
            if job is self._status_job:
                for w in (self.job_label, self.job_bar, self.job_cancel):
                    w.hide()

        def finished(result: dict) -> None:
            out = result.get("output")
            if out:
                self.statusBar().showMessage(f"Converted to {out}", 8000)
                self.open_path(out, origin=f"converted from {src}")
                warnings = result.get("warnings") or []
                if warnings:  # e.g. a TFLite file that needs TF Select ops
                    self.show_notice("Converted, with a warning: " + " · ".join(warnings), "warning")
                if self.auto_parity:
                    self.start_parity_after_conversion(params, out)

        def failed(message: str, kind: str) -> None:
            if kind == ErrorKind.CANCELLED:
                self.show_notice(f"Conversion of {os.path.basename(src)} to {label} was cancelled.", "info")
            else:
                self.show_notice(f"Conversion to {label} failed: {message}", "error",
                                 [("Show log", lambda: self.jobs_panel.show_log(job))])

        job.progress.connect(progress)
        job.ended.connect(ended)
        job.finished.connect(finished)
        job.failed.connect(failed)
        return job
