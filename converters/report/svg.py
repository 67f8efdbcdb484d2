"""Small inline-SVG charts for the HTML report (no plotting library, no scripts, no network)."""
from __future__ import annotations

import math
from html import escape

import numpy as np

__all__ = ["histogram_svg", "scatter_svg", "bars_svg", "depth_svg"]

_AXIS = "#555"
_GRID = "#e3e3e3"
_FONT = 'font-family="system-ui,sans-serif" font-size="11"'


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    return f"{v:.3g}" if 1e-3 <= a < 1e4 else f"{v:.1e}"


def histogram_svg(counts: list[int], labels: list[str], *, title: str, width: int = 460, height: int = 220,
                  highlight_from: int | None = None) -> str:
    """Vertical bars, one per bin; bins at or after ``highlight_from`` are drawn in red (over tolerance)."""
    n = max(1, len(counts))
    left, right, top, bottom = 44, 10, 24, 44
    pw, ph = width - left - right, height - top - bottom
    cmax = max(max(counts, default=0), 1)
    bw = pw / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="15" {_FONT} font-weight="600">{escape(title)}</text>']
    ticks = sorted({int(round(cmax * f)) for f in (0.25, 0.5, 0.75, 1.0)} - {0})  # whole counts, no repeats
    for tick in ticks:
        y = top + ph * (1 - tick / cmax)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>{tick}</text>')
    for i, c in enumerate(counts):
        if c <= 0:
            continue
        h = ph * c / cmax
        x = left + i * bw
        color = "#d9534f" if highlight_from is not None and i >= highlight_from else "#4a7fb5"
        parts.append(f'<rect x="{x + 0.5:.1f}" y="{top + ph - h:.1f}" width="{max(bw - 1, 1):.1f}" height="{h:.1f}" '
                     f'fill="{color}"><title>{escape(labels[i])}: {c}</title></rect>')
    step = max(1, n // 8)
    for i in range(0, n, step):
        x = left + (i + 0.5) * bw
        parts.append(f'<text x="{x:.1f}" y="{top + ph + 14}" text-anchor="middle" {_FONT}>{escape(labels[i])}</text>')
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="{_AXIS}"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" {_FONT}>|A − B| (log10 bins)</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter_svg(a: np.ndarray, b: np.ndarray, *, title: str, width: int = 300, height: int = 300,
                max_points: int = 2000, seed: int = 0, bad: np.ndarray | None = None) -> str:
    """A (x) vs B (y) with the y = x diagonal, at most ``max_points`` points (seeded subsample); points
    flagged in ``bad`` are red."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    bad = np.zeros(a.shape, bool) if bad is None else np.asarray(bad).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    idx = np.flatnonzero(ok)
    total = idx.size
    if idx.size > max_points:
        # keep every mismatch that fits, then a uniform sample of the rest
        bad_idx = idx[bad[idx]][: max_points // 2]
        rest = np.setdiff1d(idx, bad_idx, assume_unique=True)
        rng = np.random.default_rng(seed)
        idx = np.concatenate([bad_idx, rng.choice(rest, max_points - bad_idx.size, replace=False)])
    left, right, top, bottom = 48, 10, 24, 36
    pw, ph = width - left - right, height - top - bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="15" {_FONT} font-weight="600">{escape(title)}</text>']
    if idx.size == 0:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" {_FONT}>no finite values</text></svg>')
        return "".join(parts)
    xs, ys = a[idx], b[idx]
    lo = float(min(xs.min(), ys.min()))
    hi = float(max(xs.max(), ys.max()))
    if hi == lo:
        hi, lo = hi + 1, lo - 1
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad

    def sx(v):
        return left + (v - lo) / (hi - lo) * pw

    def sy(v):
        return top + ph - (v - lo) / (hi - lo) * ph

    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="{_AXIS}"/>')
    parts.append(f'<line x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}" '
                 f'stroke="#999" stroke-dasharray="4 3"/>')
    for v in (lo + pad, (lo + hi) / 2, hi - pad):
        parts.append(f'<text x="{sx(v):.1f}" y="{top + ph + 14}" text-anchor="middle" {_FONT}>{_fmt(v)}</text>')
        parts.append(f'<text x="{left - 4}" y="{sy(v) + 4:.1f}" text-anchor="end" {_FONT}>{_fmt(v)}</text>')
    pts_ok: list[str] = []
    pts_bad: list[str] = []
    for i, x, y in zip(idx, xs, ys):
        (pts_bad if bad[i] else pts_ok).append(f"M{sx(x):.1f} {sy(y):.1f}h0")
    if pts_ok:
        parts.append(f'<path d="{" ".join(pts_ok)}" stroke="#4a7fb5" stroke-width="3" stroke-linecap="round" '
                     f'stroke-opacity="0.6"/>')
    if pts_bad:
        parts.append(f'<path d="{" ".join(pts_bad)}" stroke="#d9534f" stroke-width="4" stroke-linecap="round"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle" {_FONT}>A value '
                 f'({idx.size} of {total} shown)</text>')
    parts.append(f'<text x="12" y="{top + ph / 2}" text-anchor="middle" {_FONT} '
                 f'transform="rotate(-90 12 {top + ph / 2})">B value</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(items: list[tuple[str, float, float]], *, title: str, unit: str = "ms", width: int = 460) -> str:
    """Horizontal bars: (label, median, min) each; the min is a tick on the bar."""
    row = 26
    left, right, top = 150, 70, 24
    height = top + row * max(1, len(items)) + 10
    vmax = max((m for _l, m, _n in items), default=1.0) or 1.0
    pw = width - left - right
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="4" y="15" {_FONT} font-weight="600">{escape(title)}</text>']
    for i, (label, med, mn) in enumerate(items):
        y = top + i * row
        w = pw * med / vmax
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" {_FONT}>{escape(label)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="16" fill="#6aa06a">'
                     f'<title>median {med:.4g} {unit}, min {mn:.4g} {unit}</title></rect>')
        xm = left + pw * mn / vmax
        parts.append(f'<line x1="{xm:.1f}" y1="{y + 1}" x2="{xm:.1f}" y2="{y + 21}" stroke="#234"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" {_FONT}>{med:.4g} {unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


_STATUS_COLOR = {"ok": "#4a7fb5", "source": "#d9534f", "inherited": "#f0ad4e", "layout": "#8e44ad",
                 "missing": "#bbbbbb"}


def depth_svg(points: list[tuple[int, float | None, str]], *, title: str, tolerance: float | None = None,
              first: int | None = None, width: int = 720, height: int = 240) -> str:
    """Error along the layers: one dot per layer (x: position in A's order, y: max |A − B| on a log scale),
    coloured by status; a dashed line at ``tolerance``; the first divergence circled."""
    left, right, top, bottom = 54, 12, 24, 40
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, v, _ in points if v is not None and v > 0 and math.isfinite(v)]
    lo = math.floor(math.log10(min(vals + ([tolerance] if tolerance else [])))) if vals else -8
    hi = math.ceil(math.log10(max(vals + ([tolerance] if tolerance else [])))) if vals else 0
    lo, hi = max(lo, -12), max(hi, lo + 1)
    n = max(1, len(points) - 1)

    def sx(i):
        return left + pw * i / n

    def sy(v):
        lv = math.log10(v) if v and v > 0 else lo
        return top + ph * (1 - (min(max(lv, lo), hi) - lo) / (hi - lo))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="{left}" y="15" {_FONT} font-weight="600">{escape(title)}</text>']
    for e in range(lo, hi + 1):
        y = sy(10.0 ** e)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {_FONT}>1e{e}</text>')
    if tolerance:
        y = sy(tolerance)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#d9534f" '
                     f'stroke-dasharray="4 3"><title>tolerance (atol) {_fmt(tolerance)}</title></line>')
    for i, (idx, v, status) in enumerate(points):
        if v is None:
            continue
        x, y = sx(i), sy(v)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{_STATUS_COLOR.get(status, "#333")}">'
                     f'<title>#{idx} {escape(status)}: {_fmt(v)}</title></circle>')
        if first is not None and idx == first:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="#d9534f" stroke-width="2"/>')
    parts.append(f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="{_AXIS}"/>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle" {_FONT}>layers in A\'s order '
                 f'(red: wrong itself, orange: inherited, purple: layout-only op, blue: ok)</text>')
    parts.append("</svg>")
    return "".join(parts)
