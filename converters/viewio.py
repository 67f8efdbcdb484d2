"""Graph inputs and outputs as nodes of the drawing, beside the model's nodes (numpy, no Qt).

The neutral :class:`~converters.graph.Model` holds no such nodes (converters, runners, parity and the
structural diff see only real operations); the view pack adds them for the layout and the canvas. In
the layout's node space the model's nodes keep their indices ``0 .. n-1`` and I/O node ``k`` is
``n + k``; edges run from an input node to each node consuming that input, and from the node producing
an output to the output node (or from the input node, where a graph passes an input straight out).
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from .layout import node_width

__all__ = ["IO_INPUT", "IO_OUTPUT", "IO_KINDS", "IoNodes", "io_nodes"]

IO_INPUT = 1               # ``io_kind`` of a graph input
IO_OUTPUT = 2              # ``io_kind`` of a graph output
IO_KINDS = {IO_INPUT: "input", IO_OUTPUT: "output"}


@dataclass
class IoNodes:
    """The I/O nodes of one graph. ``kind[k]`` is :data:`IO_INPUT` or :data:`IO_OUTPUT`; ``names[k]`` the
    value's name; ``width[k]`` its box width; edges in the layout's node space with the value each
    carries (``edge_value``, for its shape label)."""

    kind: np.ndarray
    names: list[str]
    width: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    edge_value: list[str]

    @property
    def n(self) -> int:
        return len(self.names)


def io_width(name: str) -> float:
    """Box width of an I/O node: room for its value's name (and at least for the word "Output")."""
    return max(node_width(name), node_width("Output"))


def io_nodes(graph, producer: dict[str, int], n: int, read_in: list[tuple[str, int]] | None = None) -> IoNodes:
    """I/O nodes of ``graph`` (``n`` model nodes; ``producer``: value name -> producing node;
    ``read_in``: (graph input, node reading it) pairs in node order where the caller has them).

    Graph inputs that are weights (initializers listed as inputs by old ONNX files) are left out.
    """
    inits = graph.initializers
    ins = [v for v in dict.fromkeys(graph.inputs) if v and v not in inits]
    outs = [v for v in dict.fromkeys(graph.outputs) if v]
    kind = [IO_INPUT] * len(ins) + [IO_OUTPUT] * len(outs)
    names = ins + outs
    in_id = {v: n + k for k, v in enumerate(ins)}
    src: list[int] = []
    dst: list[int] = []
    val: list[str] = []
    if in_id:
        if read_in is None:
            read_in = [(v, j) for j, nd in enumerate(graph.nodes) for v in nd.inputs if v in in_id]
        linked: set[tuple[str, int]] = set()
        for v, j in read_in:
            k = in_id.get(v)
            if k is not None and (v, j) not in linked:       # Add(x, x): one edge
                linked.add((v, j))
                src.append(k)
                dst.append(j)
                val.append(v)
    for k, v in enumerate(outs):
        i = producer.get(v)
        if i is None:
            i = in_id.get(v)
        if i is not None:
            src.append(i)
            dst.append(n + len(ins) + k)
            val.append(v)
    return IoNodes(np.array(kind, np.int8), names, np.array([io_width(s) for s in names], np.float32),
                   np.array(src, np.int32), np.array(dst, np.int32), val)
