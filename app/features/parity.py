"""Parity in the window: the check after a conversion, Compare with…, the devices per side, and the
first divergence shown in the graph.

A mixin of :class:`app.main_window.MainWindow`: its methods use the window's widgets and job registry."""
from __future__ import annotations

import os

from PySide6.QtCore import Qt


from ..panels.parity import node_for_value


class ParityFeature:
    @property
    def auto_parity(self) -> bool:
        """Whether a finished conversion starts a comparison of source and result (View menu; saved)."""
        v = self.settings.value("parity/auto", True)
        return v if isinstance(v, bool) else str(v).lower() in ("true", "1", "yes")

    def run_compare(self, params: dict, title: str = ""):
        """Run the ``compare`` task and show it in the Parity dock (raised). Returns the QtJob."""
        self.parity_dock.show()
        self.parity_dock.raise_()
        if self.parity_dock.height() < 260 and not self.parity_dock.isFloating():
            self.resizeDocks([self.parity_dock], [300], Qt.Orientation.Vertical)
        return self.parity.start(params, title)

    def start_parity_after_conversion(self, convert_params: dict, out: str):
        """Compare a conversion's source with its output: CPU, seeded random inputs, the fp16 preset
        when the conversion wrote float16 weights (else fp32), the converter's map when it wrote one."""
        from converters.compare.params import parity_after_conversion

        params = parity_after_conversion(convert_params["src"], out, convert_params.get("options"))
        return self.run_compare(params, f"{os.path.basename(convert_params['src'])} → "
                                        f"{os.path.basename(out.rstrip(os.sep))}")

    def request_devices(self, runtimes: list[str] | None = None):
        """Ask the ``devices`` task (once per window and runtime set); fills an open Compare dialog."""
        from converters.jobs.protocol import DevicesParams

        job = self.jobs.run("devices", DevicesParams(runtimes or None).to_dict(), title="list devices")

        def done(result: dict) -> None:
            devs = list(result.get("devices") or [])
            known = {(d.get("runtime"), d.get("device")) for d in devs}
            self._devices = devs + [d for d in (self._devices or []) if (d.get("runtime"), d.get("device")) not in known]
            if self.compare_dialog is not None:
                self.compare_dialog.set_devices(self._devices)

        def failed(message: str, _kind: str) -> None:
            if self.compare_dialog is not None:
                self.compare_dialog.set_devices_error(message)

        job.finished.connect(done)
        job.failed.connect(failed)
        return job

    def compare_with(self, b_path: str | None = None):
        """Open the Compare dialog with the current tab as A (and ``b_path`` as B when given); the
        comparison runs when it is accepted. Returns the (non-modal) dialog."""
        from ..panels.compare_dialog import CompareDialog

        tabs = [t for t in self.model_tabs() if t.state != "failed"]
        cur = self.current_tab()
        if cur is None:
            self.show_notice("Open a model first; it will be model A of the comparison.", "info")
            return None
        choices = [(f"{t.title} — {t.path}", t.path) for t in tabs]
        dlg = CompareDialog(choices, cur.path, parent=self,
                            start_dir=str(self.settings.value("last_dir", "") or os.getcwd()))
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if b_path:
            dlg.set_b(b_path)
        self.compare_dialog = dlg
        dlg.destroyed.connect(lambda *_: setattr(self, "compare_dialog", None))
        have = {d.get("runtime") for d in (self._devices or [])}
        if self._devices is not None:
            dlg.set_devices(self._devices)
        need = [r for r in dlg.runtimes() if r not in have]
        if need:
            self.request_devices(need)

        def accepted() -> None:
            trust = any(t.trust for t in self.model_tabs() if t.path in (dlg.path_a(), dlg.path_b()))
            self.run_compare(dlg.params(trust=trust))

        dlg.accepted.connect(accepted)
        dlg.open()
        return dlg

    def show_divergence(self, path_a: str, name_a: str, path_b: str, name_b: str) -> int:
        """Select and centre the node that makes the first diverging tensor in an open tab of B (else
        A). Returns the node index, or -1 when no open graph has it."""
        for path, name in ((path_b, name_b), (path_a, name_a)):
            for tab in self.model_tabs():
                if tab.path != os.path.abspath(path) or tab.doc is None or tab.doc.pack is None:
                    continue
                i = node_for_value(tab.doc.pack, name)
                if i >= 0:
                    self.tabs.setCurrentWidget(tab)
                    tab.canvas_call("select", i)
                    self.statusBar().showMessage(f"First divergence: '{name}' in {tab.title}", 8000)
                    return i
        self.statusBar().showMessage("The first diverging tensor is in no open graph; open the converted "
                                     "model to see it", 8000)
        return -1
