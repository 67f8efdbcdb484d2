"""``tensorbridge bench open FILE [--json] [--expand]``: how fast the window shows a model's graph.

Runs the real thing: a GraphView in a window (offscreen when there is no display), the ``open`` task in a
worker process, and reports

* ``first_view_s``: seconds from starting the job to the first drawn view (the collapsed overview);
* ``full_pack_s``: seconds until the full pack (shapes, inspector details) is on screen;
* ``expanded_s`` (with ``--expand``): seconds until every group is expanded and drawn;
* ``frame_ms``: time to repaint the viewport at a few zoom levels of the expanded graph;
* nodes drawn, and the peak resident memory of the window process and of the worker (MB);
* ``max_gui_stall_ms``: the longest the GUI thread was busy in one go (event handling, painting,
  handing a pack to the view) between opening and the last figure — how long the window could not
  respond to the user at worst.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

__all__ = ["main"]


def _args(argv):
    p = argparse.ArgumentParser(prog="tensorbridge bench", description="measure the window on a model file")
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("open", help="open a model and time the graph view")
    o.add_argument("file")
    o.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    o.add_argument("--expand", action="store_true", help="also expand every group and time that")
    o.add_argument("--trust", action="store_true", help="allow running code stored in the file")
    o.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds (default 300)")
    o.add_argument("--size", default="1280x860", help="window size, WxH (default 1280x860)")
    o.add_argument("--warm", action="store_true",
                   help="open on a warm worker (started with the window, its imports done), as the app does "
                        "for every file after launch; without it the worker starts cold")
    o.add_argument("--screenshot", metavar="PREFIX",
                   help="save PREFIX-first.png (and PREFIX-expanded.png with --expand) of the view")
    return p.parse_args(argv)


def _rss_mb(pid: int | None = None) -> float:
    import psutil

    try:
        return psutil.Process(pid).memory_info().rss / 2**20 if pid else psutil.Process().memory_info().rss / 2**20
    except Exception:
        return 0.0


def main(argv: list[str]) -> int:
    args = _args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if not os.path.exists(args.file):
        print(f"tensorbridge: error: {args.file}: no such file; give a model file to open", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130


def _run(args) -> int:
    from PySide6.QtCore import QObject, Qt, Signal
    from PySide6.QtWidgets import QApplication

    from converters.jobs import Job
    from converters.jobs.protocol import OpenParams
    from converters.viewpack import ViewPack

    from .graph_view import GraphView

    t_launch = time.perf_counter()
    app = QApplication.instance() or QApplication(["tensorbridge-bench"])
    w, h = (int(x) for x in args.size.lower().split("x"))
    view = GraphView()
    view.setWindowTitle("tensorbridge bench")
    view.resize(w, h)
    view.show()
    app.processEvents()
    window_up_s = time.perf_counter() - t_launch

    class Bridge(QObject):
        event = Signal(object)

    bridge = Bridge()
    got: dict = {"overview": None, "result": None, "error": None}
    drawn = [0]
    marks: dict[str, float] = {}
    worker_peak = [0.0]
    window_peak = [0.0]
    figures: dict = {"file": os.path.abspath(args.file), "window_up_s": round(window_up_s, 3)}

    def on_event(ev):
        marks.setdefault(f"event_{ev.kind}_s", time.perf_counter() - t0)
        if ev.kind == "overview":
            got["overview"] = ev.data["pack_dir"]
        elif ev.kind == "result":
            got["result"] = ev.data.get("result") or {}
        elif ev.kind == "error":
            got["error"] = ev.data.get("message") or "the job failed"

    expanded_at: list[float] = []

    drawn_at: list[float] = []

    def on_drawn():
        drawn[0] += 1
        drawn_at.append(time.perf_counter() - t0)
        if args.expand and not expanded_at and view.pack is not None and view.pack.n_nodes \
                and view.drawn_nodes() == view.pack.n_nodes and len(view.expanded_groups) == view.pack.n_groups - 1:
            expanded_at.append(time.perf_counter() - t0)

    view.drawn.connect(on_drawn)
    bridge.event.connect(on_event, Qt.ConnectionType.QueuedConnection)
    pool = None
    if args.warm:
        from converters.jobs import WorkerPool, family_of

        family = family_of(args.file)
        pool = WorkerPool((family,))
        _wait_warm(pool, family, app)
    t0 = time.perf_counter()
    if pool is not None:
        job = pool.start("open", OpenParams(args.file, trust=args.trust).to_dict(), family=family,
                         on_event=bridge.event.emit)
    else:
        job = Job("open", OpenParams(args.file, trust=args.trust).to_dict(), on_event=bridge.event.emit)
        job.start()
    deadline = t0 + args.timeout
    last_sample = 0.0
    phase, seen, full_first = "wait", 0, False
    full_swapped = [0]
    stall = [0.0]

    def busy(fn, *a):
        """Run fn on the GUI thread and keep the longest time it held it."""
        t = time.perf_counter()
        out = fn(*a)
        stall[0] = max(stall[0], time.perf_counter() - t)
        return out

    while phase != "done" and time.perf_counter() < deadline and not got["error"]:
        busy(app.processEvents)
        now = time.perf_counter()
        res = got["result"]
        if phase == "wait" and (got["overview"] or res is not None):
            if res is not None:
                figures.update(nodes=res.get("node_count", 0), format=res.get("format"))
                if res.get("weights_only"):
                    marks["first_view_s"] = marks["full_pack_s"] = now - t0
                    phase = "done"
                    continue
            full_first = got["overview"] is None
            seen = drawn[0]
            marks["set_pack_s"] = now - t0
            busy(lambda: view.set_pack(ViewPack.load(got["overview"] or res["pack_dir"])))
            phase = "first"
        elif phase == "first" and drawn[0] > seen:
            marks["first_view_s"] = drawn_at[seen]
            figures["drawn_first"] = view.drawn_count()
            figures["nodes_drawn_first"] = view.drawn_nodes()
            if args.screenshot:
                view.grab().save(f"{args.screenshot}-first.png")
            if full_first:
                marks["full_pack_s"] = marks["first_view_s"]
            if args.expand:                # the user asks for everything as soon as the overview is up
                busy(view.expand_all)
            phase = "running"
        elif phase == "running":
            if "full_pack_s" not in marks and res is not None and not full_swapped[0]:
                figures.update(nodes=res.get("node_count", 0), format=res.get("format"))
                full_swapped[0] = drawn[0]
                marks["full_result_s"] = now - t0
                busy(lambda: view.set_pack(ViewPack.load(res["pack_dir"])))
            elif "full_pack_s" not in marks and full_swapped[0] and drawn[0] > full_swapped[0]:
                marks["full_pack_s"] = drawn_at[full_swapped[0]]
            if args.expand and "expanded_s" not in marks and expanded_at:
                marks["expanded_s"] = expanded_at[0]
                figures["nodes_drawn_expanded"] = view.drawn_nodes()
                figures["layout_s"] = round(view.last_layout_seconds, 3)
                if args.screenshot:
                    view.grab().save(f"{args.screenshot}-expanded.png")
            if "full_pack_s" in marks and (not args.expand or "expanded_s" in marks):
                phase = "done"
        if now - last_sample > 0.05:
            window_peak[0] = max(window_peak[0], _rss_mb())
            if job.proc is not None and job.proc.poll() is None:
                worker_peak[0] = max(worker_peak[0], _rss_mb(job.proc.pid))
            last_sample = now
        time.sleep(0.0005)
    if got["error"]:
        print(f"tensorbridge: error: {got['error']}", file=sys.stderr)
        return 2
    if phase != "done":
        job.cancel()
        print(f"tensorbridge: error: {args.file}: the view was not drawn within {args.timeout:g} s; "
              f"raise --timeout", file=sys.stderr)
        return 2
    try:
        job.wait(60)
    except Exception:
        pass
    if pool is not None:
        pool.close()
    figures["worker"] = "warm" if args.warm else "cold"
    figures["max_gui_stall_ms"] = round(stall[0] * 1000, 1)
    res = got["result"] or {}
    figures["worker_timings"] = {k: round(v, 3) for k, v in (res.get("timings") or {}).items()}
    if args.expand:
        figures["frame_ms"] = _frame_times(app, view)
    # Sampled every 50 ms with psutil. Not ru_maxrss: Linux keeps a process's peak across exec, so a
    # window started by a big parent process (a benchmark driver) would report the parent's peak.
    window_peak[0] = max(window_peak[0], _rss_mb())
    figures["worker_peak_rss_mb"] = round(worker_peak[0], 1)
    figures["window_peak_rss_mb"] = round(window_peak[0], 1)
    figures["total_peak_rss_mb"] = round(figures["worker_peak_rss_mb"] + figures["window_peak_rss_mb"], 1)
    for k, v in marks.items():
        figures[k] = round(v, 3)
    figures["expanded"] = bool(args.expand)
    job.cleanup()
    view.close()
    if args.json:
        print(json.dumps(figures))
    else:
        _table(figures)
    return 0


def _wait_warm(pool, family: str, app, limit: float = 20.0) -> None:
    """Wait until the spare worker has finished its imports (its CPU time stops growing)."""
    import psutil

    spare = pool._spares.get(family)
    if spare is None:
        return
    try:
        proc = psutil.Process(spare.proc.pid)
    except psutil.Error:
        return
    end = time.perf_counter() + limit
    last, still = -1.0, 0
    while time.perf_counter() < end and still < 3:
        app.processEvents()
        time.sleep(0.1)
        try:
            t = sum(proc.cpu_times()[:2])
        except psutil.Error:
            return
        still = still + 1 if t == last else 0
        last = t


def _frame_times(app, view) -> dict:
    """Milliseconds to repaint the whole viewport at a few zoom levels (median of 3)."""
    from PySide6.QtCore import QPointF

    canvas = view.canvas
    out = {}
    d = view._data
    if d is None:
        return out
    cx, cy = d.lay.width / 2, min(d.lay.height / 2, 3000.0)
    for label, scale in (("fit", None), ("0.02", 0.02), ("0.2", 0.2), ("1.0", 1.0)):
        if scale is None:
            view.fit()
        else:
            canvas.resetTransform()
            canvas.scale(scale, scale)
            canvas.centerOn(QPointF(cx, cy))
        app.processEvents()
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            canvas.viewport().repaint()
            ts.append((time.perf_counter() - t) * 1000)
        out[label] = round(sorted(ts)[1], 1)
    return out


def _table(f: dict) -> None:
    rows = [("file", f["file"]), ("nodes", f"{f.get('nodes', 0):,}"),
            ("first view (s)", f.get("first_view_s")), ("full pack drawn (s)", f.get("full_pack_s"))]
    if f.get("expanded"):
        rows += [("fully expanded drawn (s)", f.get("expanded_s")), ("nodes drawn expanded", f.get("nodes_drawn_expanded")),
                 ("layout (s)", f.get("layout_s")), ("frame ms by zoom", f.get("frame_ms"))]
    rows += [("items drawn first", f.get("drawn_first")), ("window up (s)", f.get("window_up_s")),
             ("longest GUI-thread stall (ms)", f.get("max_gui_stall_ms")),
             ("window peak RSS (MB)", f.get("window_peak_rss_mb")), ("worker peak RSS (MB)", f.get("worker_peak_rss_mb")),
             ("total peak RSS (MB)", f.get("total_peak_rss_mb")), ("worker timings (s)", f.get("worker_timings"))]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
