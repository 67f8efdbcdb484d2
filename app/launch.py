"""Start the window: ``tensorbridge [FILE...]`` and ``tensorbridge --screenshot OUT.png [FILE]``.

Only PySide6 and the light engine modules (graph model, jobs, format detection) are imported here;
torch, TensorFlow and the converters run in worker processes. ``TENSORBRIDGE_DEBUG_MODULES=PATH``
writes ``sorted(sys.modules)`` to PATH at exit (used to check that the window stays light).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

__all__ = ["run_window", "apply_theme", "resource_path", "build_parser"]

_T0 = time.perf_counter()


def resource_path(*parts: str) -> str:
    """A file under ``resources/`` (the source tree, or the bundle when frozen by PyInstaller)."""
    base = getattr(sys, "_MEIPASS", None) or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(base, "resources", *parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tensorbridge", description="Open model files in the Tensorbridge window.")
    p.add_argument("files", nargs="*", metavar="FILE", help="model files or SavedModel folders to open")
    p.add_argument("--screenshot", metavar="OUT.png",
                   help="open FILE offscreen, wait until its graph is drawn, save a picture of the window, exit")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds --screenshot waits for the graph (default 120)")
    p.add_argument("--size", default="1440x900", help="window size for --screenshot, WxH (default 1440x900)")
    p.add_argument("--theme", choices=("system", "light", "dark"),
                   help="colour theme (default: the saved preference, else follow the system)")
    p.add_argument("--trust", action="store_true",
                   help="allow running code stored in the files (pickled modules, Keras Lambda layers)")
    p.add_argument("--new-window", action="store_true",
                   help="open a window of its own instead of handing FILE to the running window as a tab")
    p.add_argument("--install-desktop", action="store_true",
                   help="register the desktop entry, icons and model file types for this user, then exit")
    p.add_argument("--uninstall-desktop", action="store_true",
                   help="remove what --install-desktop registered, then exit")
    return p


def _dark_palette():
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    R = QPalette.ColorRole
    G = QPalette.ColorGroup
    colours = {R.Window: "#2b2d30", R.WindowText: "#e6e6e6", R.Base: "#1e1f22", R.AlternateBase: "#27292c",
               R.ToolTipBase: "#3c3f41", R.ToolTipText: "#e6e6e6", R.Text: "#e6e6e6", R.Button: "#3c3f41",
               R.ButtonText: "#e6e6e6", R.BrightText: "#ff6b6b", R.Link: "#6fa8ff", R.Highlight: "#3d6fb4",
               R.HighlightedText: "#ffffff", R.Light: "#4a4d50", R.Midlight: "#3f4245", R.Mid: "#55585c",
               R.Dark: "#1a1b1d", R.Shadow: "#000000", R.PlaceholderText: "#8c8c8c"}
    for role, c in colours.items():
        p.setColor(role, QColor(c))
    for role in (R.WindowText, R.Text, R.ButtonText):
        p.setColor(G.Disabled, role, QColor("#7a7a7a"))
    return p


_SYSTEM_PALETTE = None


def apply_theme(app, key: str = "system") -> bool:
    """Light, dark, or the system's scheme (the default). Returns True when the result is dark.

    Widgets draw with palette roles and the style sheet uses ``palette(...)``, so nothing else needs a
    colour of its own.
    """
    from PySide6.QtCore import Qt

    global _SYSTEM_PALETTE
    if _SYSTEM_PALETTE is None:  # what the platform theme gave us, before any change of ours
        from PySide6.QtGui import QPalette

        _SYSTEM_PALETTE = QPalette(app.palette())
    hints = app.styleHints()
    dark = key == "dark"
    if key == "system":
        try:
            dark = hints.colorScheme() == Qt.ColorScheme.Dark
        except AttributeError:
            dark = False
        # a dark platform palette (KDE, GNOME with a dark theme) says so even when the hint does not
        dark = dark or _SYSTEM_PALETTE.window().color().lightness() < 128
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")  # the same look on every platform, and it honours the palette fully
    if key == "system":
        system_dark = _SYSTEM_PALETTE.window().color().lightness() < 128
        # keep the platform's own colours when they match the scheme; else fall back to ours
        app.setPalette(_SYSTEM_PALETTE if system_dark == dark else (_dark_palette() if dark else app.style().standardPalette()))
    else:
        app.setPalette(_dark_palette() if dark else app.style().standardPalette())
    qss = resource_path("style.qss")
    try:
        with open(qss, encoding="utf-8") as f:
            app.setStyleSheet(f.read())
    except OSError:
        pass
    app.setProperty("tensorbridgeDark", dark)
    return dark


def _display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or sys.platform in ("win32", "darwin")


def _dump_modules() -> None:
    out = os.environ.get("TENSORBRIDGE_DEBUG_MODULES")
    if out:
        try:
            with open(out, "w") as f:
                f.write("\n".join(sorted(sys.modules)) + "\n")
        except OSError:
            pass


def run_window(argv: list[str]) -> int:
    """Run the desktop app; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    finally:
        _dump_modules()


def _run(args) -> int:
    if args.install_desktop or args.uninstall_desktop:
        from .desktop import main as desktop_main
        return desktop_main(remove=args.uninstall_desktop)
    # one window per session: a launch with files hands them to the running window (benchmarks and
    # --screenshot always start their own)
    single = not (args.new_window or args.screenshot or os.environ.get("TENSORBRIDGE_REPORT_SHOWN"))
    if single:
        from .single_instance import hand_off
        if hand_off(args.files, trust=args.trust):
            return 0
    if args.screenshot and not _display_available():
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if os.name == "posix" and os.geteuid() == 0:
        # Chromium refuses to start as root with its sandbox on (Netron tab).
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")

    from PySide6.QtCore import QCoreApplication, QSettings, Qt
    from PySide6.QtWidgets import QApplication

    # QtWebEngine needs shared GL contexts set before the application exists; with the attribute set it
    # can be imported later, when the user first asks for a Netron tab (saves ~0.15 s at start-up).
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("Tensorbridge")
    app.setApplicationName("Tensorbridge")
    app.setDesktopFileName("tensorbridge")
    settings = QSettings("Tensorbridge", "Tensorbridge")
    theme = args.theme or str(settings.value("theme", "system"))
    apply_theme(app, theme)
    if theme == "system":
        try:
            app.styleHints().colorSchemeChanged.connect(
                lambda _s: apply_theme(app, str(settings.value("theme", "system"))))
        except AttributeError:
            pass

    from .main_window import MainWindow

    if args.screenshot:
        # a picture must not change the user's window geometry or recent files
        import tempfile

        tmp = tempfile.NamedTemporaryFile(prefix="tensorbridge-shot-", suffix=".ini", delete=False)
        tmp.close()
        try:
            return _screenshot(app, MainWindow(QSettings(tmp.name, QSettings.Format.IniFormat)), args)
        finally:
            os.unlink(tmp.name)
    win = MainWindow(settings)
    _install_excepthook(win)
    win.show()
    if os.environ.get("TENSORBRIDGE_REPORT_SHOWN"):
        _report_shown(app, win)
    if single:
        _serve_hand_offs(win)
    for f in args.files:
        _open_logged(win, f, args.trust)
    if not os.environ.get("TENSORBRIDGE_NO_WARM_WORKERS"):
        from PySide6.QtCore import QTimer

        # after the first paint: a worker with onnx imported waits for the first job
        QTimer.singleShot(300, lambda: win.jobs.use_warm_workers(("onnx",)))
    try:
        return app.exec()
    finally:
        win.jobs.close()


def _open_logged(win, path: str, trust: bool) -> None:
    """Open a file named on a command line (this one or a handed-over one); the log says how it went."""
    import logging

    log = logging.getLogger("tensorbridge.window")
    tab = win.open_path(path, trust=trust)
    log.info("opening %s", tab.path)
    tab.loaded.connect(lambda t=tab: log.info("opened %s (%s)", t.path, t.doc.format))
    tab.failed.connect(lambda m, _k, t=tab: log.warning("could not open %s: %s", t.path, m))


def _serve_hand_offs(win) -> None:
    """Listen for later launches: their files open here as tabs and the window comes to the front."""
    from .single_instance import listen

    def take(files: list[str], trust: bool) -> None:
        for f in files:
            _open_logged(win, f, trust)
        if win.isMinimized():
            win.showNormal()
        win.raise_()
        win.activateWindow()

    win._single_instance_server = listen(take, parent=win)


def _install_excepthook(win) -> None:
    """A bug in the window's own code (a slot that raises) becomes a one-line notice and a log entry
    with the traceback, instead of a traceback on a terminal nobody watches."""
    import logging
    import traceback

    from converters.errors import one_line
    from converters.logs import setup_file_logging

    path = setup_file_logging("window")
    log = logging.getLogger("tensorbridge.window")
    log.info("window started")

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("unhandled exception in the window:\n%s", "".join(traceback.format_exception(exc_type, exc, tb)))
        where = f"; details in {path}" if path else ""
        try:
            win.show_notice(f"Something went wrong in the window ({one_line(exc)}){where}", "error")
        except Exception:  # the window itself is gone: the log has it
            sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook
    win.excepthook = hook


def _report_shown(app, win) -> None:
    """Benchmark hook: print seconds since the interpreter started once the window has painted, then quit."""
    from PySide6.QtCore import QTimer

    def done() -> None:
        app.processEvents()
        heavy = sorted(m for m in ("torch", "tensorflow", "onnx2tf", "tf2onnx", "onnx", "pyqtgraph") if m in sys.modules)
        print(f"shown {time.time():.6f} after_import {time.perf_counter() - _T0:.3f} heavy {','.join(heavy) or '-'}",
              flush=True)
        win.close()
        app.quit()

    QTimer.singleShot(0, done)


def _screenshot(app, win, args) -> int:
    from PySide6.QtCore import QEventLoop, QTimer

    try:
        w, h = (int(x) for x in args.size.lower().split("x"))
    except ValueError:
        print(f"tensorbridge: error: --size must look like 1440x900, not {args.size!r}", file=sys.stderr)
        return 2
    out = os.path.abspath(args.screenshot)
    if not os.path.isdir(os.path.dirname(out)):
        print(f"tensorbridge: error: {os.path.dirname(out)}: no such folder for the screenshot", file=sys.stderr)
        return 2
    win.resize(w, h)
    win.show()
    loop = QEventLoop()
    state = {"error": None, "done": False}
    tabs = []
    for f in args.files[:1]:
        tab = win.open_path(f, trust=args.trust)
        tabs.append(tab)

        def drawn(tab=tab) -> None:
            if tab.state == "failed" and tab.error:
                state["error"] = tab.error[0]
            state["done"] = True
            loop.quit()

        tab.drawn.connect(drawn)
    if not tabs:
        state["done"] = True
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    if not state["done"]:
        timer.start(int(args.timeout * 1000))
        loop.exec()
    if not state["done"]:
        print(f"tensorbridge: error: {args.files[0]}: the graph was not drawn within {args.timeout:g} s "
              f"(use --timeout to wait longer)", file=sys.stderr)
        win.jobs.cancel_all()
        return 3
    # let the last paint and layout settle before grabbing
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
    # the view's own initial placement (start of the graph, readable) is what a user first sees
    ok = win.grab().save(out, "PNG")
    win.jobs.cancel_all()
    win.close()
    if not ok:
        print(f"tensorbridge: error: could not write {out}", file=sys.stderr)
        return 2
    if state["error"]:
        print(f"tensorbridge: error: {state['error']} (screenshot saved to {out})", file=sys.stderr)
        return 2
    print(out)
    return 0
