"""Forged TFLite flatbuffers cost time linear in their size: shared tables are refused, names stay linear."""
from __future__ import annotations

import time

import flatbuffers
import pytest

from converters.errors import CorruptFile
from converters.formats import load
from converters.formats.tflite_reader import _schema


def _pack_model(s, m, subgraph_builder) -> bytes:
    """Pack ``m`` (a ModelT) with its first subgraph built by ``subgraph_builder(builder, sg)``."""
    b = flatbuffers.Builder(1 << 20)
    sg_off = subgraph_builder(b, m.subgraphs[0])
    codes = [c.Pack(b) for c in m.operatorCodes]
    s.ModelStartOperatorCodesVector(b, len(codes))
    for c in reversed(codes):
        b.PrependUOffsetTRelative(c)
    codes_vec = b.EndVector()
    bufs = [x.Pack(b) for x in m.buffers]
    s.ModelStartBuffersVector(b, len(bufs))
    for x in reversed(bufs):
        b.PrependUOffsetTRelative(x)
    bufs_vec = b.EndVector()
    s.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(sg_off)
    subs_vec = b.EndVector()
    s.ModelStart(b)
    s.ModelAddVersion(b, m.version)
    s.ModelAddOperatorCodes(b, codes_vec)
    s.ModelAddSubgraphs(b, subs_vec)
    s.ModelAddBuffers(b, bufs_vec)
    b.Finish(s.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _subgraph(s, b, sg, ops_offsets_fn):
    tensors = [t.Pack(b) for t in sg.tensors]
    s.SubGraphStartTensorsVector(b, len(tensors))
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    tvec = b.EndVector()
    ops = ops_offsets_fn(b)
    s.SubGraphStartOperatorsVector(b, len(ops))
    for o in reversed(ops):
        b.PrependUOffsetTRelative(o)
    ovec = b.EndVector()
    ins = b.CreateNumpyVector(__import__("numpy").asarray(sg.inputs, dtype="int32"))
    outs = b.CreateNumpyVector(__import__("numpy").asarray(sg.outputs, dtype="int32"))
    s.SubGraphStart(b)
    s.SubGraphAddTensors(b, tvec)
    s.SubGraphAddInputs(b, ins)
    s.SubGraphAddOutputs(b, outs)
    s.SubGraphAddOperators(b, ovec)
    return s.SubGraphEnd(b)


@pytest.fixture(scope="module")
def tflite_model(model_file):
    s = _schema()
    path = model_file("tf_models", "cnn.tflite").path
    with open(path, "rb") as f:
        buf = f.read()
    return s, s.ModelT.InitFromPackedBuf(buf, 0)


def test_one_operator_table_shared_300000_times_is_refused_quickly(tflite_model, tmp_path):
    s, m = tflite_model

    def ops(b):
        one = m.subgraphs[0].operators[0].Pack(b)
        return [one] * 300_000

    path = tmp_path / "shared.tflite"
    path.write_bytes(_pack_model(s, m, lambda b, sg: _subgraph(s, b, sg, ops)))
    assert path.stat().st_size < 2 << 20
    t0 = time.monotonic()
    with pytest.raises(CorruptFile, match="share one table"):
        load(str(path))
    assert time.monotonic() - t0 < 5


def test_twenty_thousand_operators_with_one_output_name_load_in_linear_time(tflite_model, tmp_path):
    s, m = tflite_model
    first = m.subgraphs[0].operators[0]

    def ops(b):
        return [first.Pack(b) for _ in range(20_000)]  # distinct tables, same output tensor

    path = tmp_path / "same_names.tflite"
    path.write_bytes(_pack_model(s, m, lambda b, sg: _subgraph(s, b, sg, ops)))
    t0 = time.monotonic()
    model = load(str(path))
    elapsed = time.monotonic() - t0
    names = [n.name for n in model.graph.nodes]
    assert len(names) == 20_000 and len(set(names)) == 20_000
    assert elapsed < 20, elapsed
