"""Scope paths (``encoder/layers.0/self_attn``) from what each format records about a node.

One rule for every format so that the same module gets the same scope whether it came from a .pt2, an
ONNX exported from it, or a SavedModel: segments are joined with ``/``; a torch module path keeps its
own dots inside a segment only where the module tree has no call level in between (``layers.0``).
"""
from __future__ import annotations

SEP = "/"


def scope_from_module_chain(chain: list[str]) -> str:
    """Scope from a chain of called torch module paths, outermost first.

    ``['', 'encoder', 'encoder.layers.0', 'encoder.layers.0.self_attn']`` -> ``encoder/layers.0/self_attn``
    (each segment is the path relative to the previous call; the root '' is dropped).
    """
    segments: list[str] = []
    prev = ""
    for path in chain:
        if not path:
            continue
        if prev and path.startswith(prev + "."):
            rel = path[len(prev) + 1:]
        else:
            rel = path
        if rel:
            segments.append(rel)
        prev = path
    return SEP.join(segments)


def parse_py_list_of_str(text: str) -> list[str] | None:
    """Fast parse of a stringified Python list of plain strings (``"['', 'a', 'a.b']"``); None if not one."""
    t = text.strip()
    if t == "[]":
        return []
    if len(t) >= 4 and t[0] == "[" and t[-1] == "]" and "\\" not in t:
        inner = t[1:-1].strip()
        q = inner[:1]
        if q in ("'", '"') and inner.endswith(q):
            parts = inner[1:-1].split(f"{q}, {q}")
            if not any(q in p for p in parts):
                return parts
    try:
        import ast

        val = ast.literal_eval(t)
    except (ValueError, SyntaxError):
        return None
    return [str(v) for v in val] if isinstance(val, (list, tuple)) else None


def scope_from_name(name: str) -> str:
    """Scope from a ``/``-separated node name: everything but the last segment (``a/b/Conv`` -> ``a/b``)."""
    head = name.rpartition(SEP)[0]
    if not head:
        return ""
    if head[0] == SEP or SEP + SEP in head:  # legacy torch exporter names start with '/'
        return SEP.join(p for p in head.split(SEP) if p)
    return head
