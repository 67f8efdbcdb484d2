"""Attach architecture: a weights-only checkpoint plus the user's model class become a graph tab.

A mixin of :class:`app.main_window.MainWindow`: its methods use the window's widgets and job registry."""
from __future__ import annotations

import os

from PySide6.QtCore import Qt


from ..panels.model_tab import ModelTab


class AttachFeature:
    def attach_architecture(self, tab: ModelTab | None = None) -> None:
        tab = tab or self.current_tab()
        if tab is None:
            return
        from ..panels.attach import AttachDialog

        dlg = AttachDialog(tab.path, self, settings=self.settings)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.accepted.connect(lambda: self.run_attach(tab.path, dlg.params(), trust=tab.trust))
        self.attach_dialog = dlg
        dlg.open()

    def run_attach(self, path: str, params: dict, *, trust: bool = False) -> ModelTab:
        """Open the graph built from ``path``'s weights and the given class in a new tab.

        ``params``: the attach_architecture task's {spec, kwargs, input_shapes}; ``trust`` is about the
        checkpoint file itself (the class's code runs because the user asked for it).
        """
        tab = ModelTab(path, self.jobs, trust=trust, origin=f"architecture {params['spec']}", parent=self.tabs)
        tab.nodeSelected.connect(lambda i, t=tab: self._node_selected(t, i))
        tab.loaded.connect(lambda t=tab: self._tab_loaded(t))
        tab.failed.connect(lambda m, k, t=tab: self._tab_failed(t, m, k))
        idx = self.tabs.addTab(tab, f"{tab.title} ({params['spec'].rsplit(':', 1)[-1]})")
        self.tabs.setTabToolTip(idx, f"{path}\nwith {params['spec']}")
        self.tabs.setCurrentIndex(idx)
        self.pages.setCurrentWidget(self.tabs)
        # the exported program is kept as a .pt2 so the tab has a real file: graph view, drag out, convert
        import tempfile

        from converters.jobs import jobs_root

        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(tempfile.mkdtemp(prefix="attached-", dir=jobs_root()), f"{stem}.pt2")
        from converters.jobs.protocol import AttachParams

        params = AttachParams.from_dict(dict(params, path=path, trust=trust, save_to=out)).to_dict()
        tab.run_task("attach_architecture", params, title=f"attach {params['spec']} to {tab.title}", then_open=out)
        return tab
