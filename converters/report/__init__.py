"""The shareable parity report: one self-contained HTML file (inline CSS and SVG, no scripts, nothing
fetched) plus the result's JSON embedded in it, written by the engine without Qt."""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from html import escape

import numpy as np

from .svg import bars_svg, histogram_svg, scatter_svg

__all__ = ["write_report", "render_report"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;font-weight:700;color:#fff}
.pass{background:#3c8d40}.fail{background:#c9302c}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
tr.failrow td{background:#fdecea}
.figs{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.warn{color:#8a6d3b;background:#fcf8e3;padding:6px 10px;border-radius:4px;margin:4px 0;font-size:13px}
.err{color:#a94442;background:#f2dede;padding:8px 12px;border-radius:4px}
code{font-size:12px;background:#f6f6f6;padding:1px 4px;word-break:break-all}
td.l{max-width:420px}
.small{font-size:12px;color:#666}
"""


def _num(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return escape(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v:.{digits}g}"
    return escape(str(v))


def _hist_labels(n: int) -> list[str]:
    from ..compare.diff import HIST_EDGES

    labels = []
    for lo, hi in zip(HIST_EDGES[:-1], HIST_EDGES[1:]):
        if lo == -np.inf:
            labels.append(f"<1e{int(hi)}")
        elif hi == np.inf:
            labels.append(f"≥1e{lo:g}")
        else:
            labels.append(f"1e{lo:g}")
    return labels[:n]


def _tol_bin(atol: float) -> int:
    from ..compare.diff import HIST_EDGES
    if not atol or atol <= 0:
        return 0
    # first bin lying wholly above atol: errors there are over tolerance whatever the rtol part
    lg = math.log10(atol)
    for i, lo in enumerate(HIST_EDGES[:-1]):
        if lo >= lg:
            return i
    return len(HIST_EDGES) - 2


def render_report(result, outs_a: dict | None = None, outs_b: dict | None = None) -> str:
    """The report as an HTML string. ``outs_a``/``outs_b`` (name -> array) add the A-vs-B scatter plots."""
    from ..compare.plots import paired

    r = result
    passed = r.passed
    t = r.tolerance or {}
    h: list[str] = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
                    f"<title>Parity report: {escape(os.path.basename(r.a.path))} vs {escape(os.path.basename(r.b.path))}</title>",
                    f"<style>{_CSS}</style></head><body>"]
    h.append(f"<h1>Parity report</h1><div class=\"small\">{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</div>")
    h.append(f"<p><span class=\"verdict {'pass' if passed else 'fail'}\">{'PASS' if passed else 'FAIL'}</span> "
             f"&nbsp;tolerance <b>{escape(str(t.get('name', '?')))}</b>: atol {_num(t.get('atol'))}, "
             f"rtol {_num(t.get('rtol'))}"
             + (f", ≤{t['max_mismatch_fraction']:.2%} mismatching" if t.get("max_mismatch_fraction") else "")
             + (f", cosine ≥ {t['min_cosine']:g}" if t.get("min_cosine") is not None else "") + "</p>")
    h.append("<table><tr><th class=l>side</th><th class=l>model</th><th class=l>runtime</th><th class=l>device</th>"
             "<th>median ms</th><th>min ms</th><th>runs</th><th>open s</th></tr>")
    for s in (r.a, r.b):
        tm = s.timing or {}
        h.append(f"<tr><td class=l>{s.label}</td><td class=l><code>{escape(s.path)}</code></td>"
                 f"<td class=l>{escape(s.runtime or '?')}</td><td class=l>{escape(s.device)}</td>"
                 f"<td>{_num(tm.get('median_ms'))}</td><td>{_num(tm.get('min_ms'))}</td>"
                 f"<td>{tm.get('repeats', '–')}</td><td>{_num(s.open_s, 3)}</td></tr>")
    h.append("</table>")
    if r.error:
        h.append(f"<p class=err>{escape(r.error)}</p>")
    if r.inputs:
        h.append("<p class=small>inputs: " + ", ".join(
            f"<code>{escape(k)}</code> {'×'.join(map(str, v.get('shape', [])))} {escape(v.get('dtype', ''))}"
            for k, v in r.inputs.items()) + (f" (seed {r.seed})" if r.seed is not None else "") + "</p>")
    for w in r.warnings:
        h.append(f"<div class=warn>⚠ {escape(w)}</div>")

    outputs = [d for d in r.outputs if not d.intermediate]
    inner = [d for d in r.outputs if d.intermediate]
    first = r.first_divergence
    if outputs:
        h.append("<h2>Outputs</h2><table><tr><th class=l>output (A / B)</th><th class=l>shape</th><th>verdict</th>"
                 "<th>max abs</th><th>mean abs</th><th>median abs</th><th>p99 abs</th><th>max rel</th><th>p99 rel</th>"
                 "<th>cosine</th><th>mismatches</th><th class=l>worst at</th><th class=l>top-k</th></tr>")
        for d in outputs:
            worst = d.worst[0] if d.worst else None
            wtxt = (f"[{', '.join(map(str, worst['index']))}] {_num(worst['a'])} vs {_num(worst['b'])}"
                    if worst else "–")
            topk = ", ".join(f"{k} {v:.0%}" for k, v in (d.topk or {}).items()) or "–"
            name = escape(d.name) + (f" / {escape(d.name_b)}" if d.name_b != d.name else "")
            if d.matched_by != "name":
                name += f" <span class=small>({escape(d.matched_by)})</span>"
            h.append(f"<tr class=\"{'' if d.passed else 'failrow'}\"><td class=l>{name}</td>"
                     f"<td class=l>{'×'.join(map(str, d.shape))}</td><td>{'pass' if d.passed else 'FAIL'}</td>"
                     f"<td>{_num(d.max_abs)}</td><td>{_num(d.mean_abs)}</td><td>{_num(d.median_abs)}</td>"
                     f"<td>{_num(d.p99_abs)}</td><td>{_num(d.max_rel)}</td><td>{_num(d.p99_rel)}</td>"
                     f"<td>{_num(d.cosine, 8)}</td><td>{d.mismatches} / {d.numel}</td><td class=l>{wtxt}</td>"
                     f"<td class=l>{topk}</td></tr>")
        h.append("</table>")
    if r.layers:
        h.extend(_layer_section(r))
    elif inner:
        ok = sum(1 for d in inner if d.passed)
        h.append(f"<h2>Inner tensors</h2><p>{ok} of {len(inner)} match"
                 + (f"; <b>first divergence at <code>{escape(first.name)}</code></b> (B: <code>"
                    f"{escape(first.name_b)}</code>)" if first is not None else "") + ". In capture order (graph order for "
                 "a converter map); inner tensors inform, the verdict is on the outputs.</p>")
        h.append("<table><tr><th>#</th><th class=l>A</th><th class=l>B</th><th class=l>shape</th><th>verdict</th>"
                 "<th>max abs</th><th>p99 abs</th><th>cosine</th><th>mismatches</th></tr>")
        for i, d in enumerate(inner):
            h.append(f"<tr class=\"{'' if d.passed else 'failrow'}\"><td>{i}</td><td class=l><code>{escape(d.name)}</code></td>"
                     f"<td class=l><code>{escape(d.name_b)}</code></td><td class=l>{'×'.join(map(str, d.shape))}</td>"
                     f"<td>{'pass' if d.passed else 'FAIL'}</td><td>{_num(d.max_abs)}</td><td>{_num(d.p99_abs)}</td>"
                     f"<td>{_num(d.cosine, 8)}</td><td>{d.mismatches} / {d.numel}</td></tr>")
        h.append("</table>")
    if r.outputs:
        # figures for every output and for the first diverging inner tensor
        for d in outputs + ([first] if first is not None else []):
            h.append(f"<h2>{escape(d.name)}{' (first divergence)' if d.intermediate else ''}</h2>")
            if d.reasons:
                h.append("".join(f"<p class=err>{escape(x)}</p>" for x in d.reasons))
            if d.worst and d.mismatches:
                h.append("<table><tr><th class=l>index</th><th>A</th><th>B</th><th>|A−B|</th></tr>" + "".join(
                    f"<tr><td class=l>[{', '.join(map(str, w['index']))}]</td><td>{_num(w['a'], 7)}</td>"
                    f"<td>{_num(w['b'], 7)}</td><td>{_num(w['abs'])}</td></tr>" for w in d.worst[:10] if w.get("mismatch"))
                    + "</table>")
            figs = []
            if d.histogram:
                tol = d.tolerance or {}
                figs.append(histogram_svg(d.histogram, _hist_labels(len(d.histogram)),
                                          title=f"{d.name}: error histogram",
                                          highlight_from=_tol_bin(float(tol.get("atol") or 0))))
            pair = paired(d, outs_a, outs_b)
            if pair is not None:
                a, b = pair
                if a.dtype.kind in "fiub" and b.dtype.kind in "fiub":
                    tol = d.tolerance or {}
                    af, bf = a.astype(np.float64), b.astype(np.float64)
                    with np.errstate(invalid="ignore"):
                        bad = np.abs(af - bf) > (tol.get("atol", 0) + tol.get("rtol", 0) * np.abs(af))
                    figs.append(scatter_svg(af, bf, title=f"{d.name}: A vs B", bad=bad))
            h.append("<div class=figs>" + "".join(figs) + "</div>")
    timing = [(f"{s.label}: {s.runtime or '?'} ({s.device})", s.timing["median_ms"], s.timing["min_ms"])
              for s in (r.a, r.b) if (s.timing or {}).get("repeats")]
    if timing:
        h.append("<h2>Timing</h2>" + bars_svg(timing, title="inference time per run (median; tick = min)"))
    data = json.dumps(_safe(r.to_dict())).replace("</", "<\\/")
    h.append(f"<script type=\"application/json\" id=\"result\">{data}</script>")
    h.append("</body></html>")
    return "\n".join(h)


def _layer_section(r) -> list[str]:
    """Per-layer comparison: counts, the first divergence in both models' names, error along the layers
    and the table of every paired layer."""
    from .svg import depth_svg

    counts = r.layer_counts()
    f = r.layer_first
    h = [f"<h2>Layers</h2><p>{len(r.layers)} layer pairs: " + ", ".join(
        f"{counts[s]} {s}" for s in ("ok", "source", "inherited", "layout", "missing") if counts.get(s)) + ".</p>"]
    if f is not None:
        h.append(f"<p><b>first divergence: <code>{escape(f.a)}</code></b> ({escape(f.op or '?')}) in A, "
                 f"<code>{escape(f.b)}</code> ({escape(f.op_b or '?')}) in B: max abs {_num(f.max_abs)}, "
                 f"cosine {_num(f.cosine, 8)}; "
                 + ("a layout-only op (check its axis or permutation)." if f.status == "layout" else
                    "every paired layer feeding it matches, so it is wrong itself.") + "</p>")
    else:
        h.append("<p>No layer is wrong itself.</p>")
    if r.unmatched.get("a"):
        h.append(f"<p class=small>{len(r.unmatched['a'])} layer(s) of A have no counterpart in B: "
                 + ", ".join(f"<code>{escape(x)}</code>" for x in r.unmatched["a"][:12])
                 + (" …" if len(r.unmatched["a"]) > 12 else "") + "</p>")
    atol = float((r.tolerance or {}).get("atol") or 0) or None
    h.append(depth_svg([(x.index, x.max_abs, x.status) for x in r.layers], title="max |A − B| along the layers",
                       tolerance=atol, first=f.index if f is not None else None))
    h.append("<table><tr><th>#</th><th class=l>A</th><th class=l>op</th><th class=l>B</th><th class=l>matched by</th>"
             "<th class=l>status</th><th>max abs</th><th>mean abs</th><th>cosine</th>"
             "<th title=\"B's layer re-run alone on A's tensors\">alone</th></tr>")
    for x in r.layers:
        cls = "failrow" if x.status in ("source", "layout") else ""
        h.append(f"<tr class=\"{cls}\"><td>{x.index}</td><td class=l><code>{escape(x.a)}</code></td>"
                 f"<td class=l>{escape(x.op)}</td><td class=l><code>{escape(x.b)}</code></td>"
                 f"<td class=l>{escape(x.method)}</td><td class=l>{escape(x.status)}</td><td>{_num(x.max_abs)}</td>"
                 f"<td>{_num(x.mean_abs)}</td><td>{_num(x.cosine, 8)}</td><td>{_num(x.local_max_abs)}</td></tr>")
    h.append("</table>")
    return h


def _safe(x):
    from ..compare.results import _json_safe
    return _json_safe(x)


def write_report(result, path: str, outs_a: dict | None = None, outs_b: dict | None = None) -> str:
    """Write the HTML report to ``path`` (atomically); returns the path."""
    html = render_report(result, outs_a, outs_b)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(tmp, path)
    return path
