"""The same model file in Netron's own viewer, inside a QWebEngineView.

Netron's Python package serves its web viewer and the file over HTTP; we bind it to 127.0.0.1 on a
free port so nothing is reachable from outside the machine, and stop it when the tab closes. Netron
asks for cookie consent on first load and otherwise waits for a click: the ``consent`` cookie is set in
the view's profile before the page loads (which also skips Netron's geo-IP lookup), and the Accept
button is clicked from script as a fallback.
"""
from __future__ import annotations

import os
import socket

from PySide6.QtCore import QUrl, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

__all__ = ["NetronTab", "webengine_available", "free_port", "blocked_requests"]

# Netron nags to update, forever and with no way past it offline, once its build date is 180 days old;
# with no date it takes "now". Removed before Netron's start-up code (window 'load') reads it.
_DROP_BUILD_DATE = """
(function () {
  var m = document.querySelector('meta[name="date"]');
  if (m) { m.parentNode.removeChild(m); }
})();
"""

_interceptor = None
_blocked: list[str] = []


def blocked_requests() -> list[str]:
    """URLs the Netron view tried to load from anywhere but the local server (telemetry, geo-IP)."""
    return list(_blocked)


def _install_interceptor(profile) -> None:
    """Only 127.0.0.1 may be reached from the web view: Netron's telemetry and look-ups are dropped."""
    global _interceptor
    if _interceptor is not None:
        return
    from PySide6.QtWebEngineCore import QWebEngineUrlRequestInterceptor

    class LocalOnly(QWebEngineUrlRequestInterceptor):
        def interceptRequest(self, info) -> None:  # noqa: N802 (Qt name)
            url = info.requestUrl()
            if url.scheme() in ("http", "https", "ws", "wss") and url.host() not in ("127.0.0.1", "localhost"):
                _blocked.append(url.toString())
                info.block(True)

    _interceptor = LocalOnly()
    profile.setUrlRequestInterceptor(_interceptor)

_CLICK_ACCEPT = """
(function () {
  var b = document.getElementById('message-button');
  if (b && b.offsetParent !== null && /accept/i.test(b.innerText || '')) { b.click(); return 'clicked'; }
  return 'none';
})()
"""


def webengine_available() -> bool:
    """True when QtWebEngine can be used in this process (imported, or still importable)."""
    import importlib.util
    import sys

    if "PySide6.QtWebEngineWidgets" in sys.modules:
        return True
    return importlib.util.find_spec("PySide6.QtWebEngineWidgets") is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NetronTab(QWidget):
    """Netron's viewer for ``path``. ``loaded(bool)`` is emitted when the page has loaded (or failed)."""

    loaded = Signal(bool)

    def __init__(self, path: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.path = path
        self.address: tuple[str, int] | None = None
        self.view = None
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self._start(lay)

    def _start(self, lay: QVBoxLayout) -> None:
        if os.name == "posix" and os.geteuid() == 0:
            os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
        try:
            from PySide6.QtNetwork import QNetworkCookie
            from PySide6.QtWebEngineWidgets import QWebEngineView
        except ImportError as exc:
            lay.addWidget(QLabel(f"Netron view unavailable: QtWebEngine cannot be loaded ({exc})."))
            return
        try:
            import netron
        except ImportError:
            lay.addWidget(QLabel("Netron view unavailable: the 'netron' package is not installed."))
            return
        port = free_port()
        path = self.path
        # Netron serves a single file; for a SavedModel folder hand it the saved_model.pb inside.
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "saved_model.pb")):
            path = os.path.join(path, "saved_model.pb")
        self.address = tuple(netron.start(path, address=("127.0.0.1", port), browse=False))
        url = QUrl(f"http://{self.address[0]}:{self.address[1]}/")
        self.view = QWebEngineView(self)
        profile = self.view.page().profile()
        _install_interceptor(profile)
        from PySide6.QtWebEngineCore import QWebEngineScript

        script = QWebEngineScript()
        script.setName("tensorbridge-netron-date")
        script.setSourceCode(_DROP_BUILD_DATE)
        script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentReady)
        script.setWorldId(QWebEngineScript.ScriptWorldId.MainWorld)
        self.view.page().scripts().insert(script)
        store = profile.cookieStore()
        cookie = QNetworkCookie(b"consent", b"1")
        cookie.setPath("/")
        store.setCookie(cookie, url)
        self.view.loadFinished.connect(self._on_loaded)
        lay.addWidget(self.view)
        self.view.load(url)

    def _on_loaded(self, ok: bool) -> None:
        if ok and self.view is not None:
            self.view.page().runJavaScript(_CLICK_ACCEPT, 0, lambda _r: None)
        self.loaded.emit(bool(ok))

    def evaluate(self, script: str, callback) -> None:
        """Run JavaScript in the page; ``callback(result)`` in the GUI thread (used by tests)."""
        if self.view is not None:
            self.view.page().runJavaScript(script, 0, callback)

    def stop(self) -> None:
        """Stop Netron's server (idempotent)."""
        if self.address is not None:
            try:
                import netron

                netron.stop(self.address)
            except Exception:
                pass
            self.address = None

    def closeEvent(self, event) -> None:
        self.stop()
        super().closeEvent(event)
