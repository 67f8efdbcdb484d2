"""A C library stuck on a damaged file costs a bounded time and one line, not a stuck worker."""
from __future__ import annotations

import os
import time

import pytest

from converters.errors import CorruptFile
from converters.safety.probe import probe


def test_a_stuck_read_is_stopped_and_named(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(CorruptFile, match=r"model\.h5: reading its HDF5 structure did not finish within 1 s"):
        probe(lambda: time.sleep(60), path=str(tmp_path / "model.h5"), what="HDF5 structure", timeout=1)
    assert time.monotonic() - t0 < 10


def test_a_crashing_read_is_one_line(tmp_path):
    with pytest.raises(CorruptFile, match="crashed the reading library \\(SIGSEGV\\)"):
        probe(lambda: os.kill(os.getpid(), 11), path=str(tmp_path / "model.h5"), what="HDF5 structure")


def test_a_clean_read_or_a_python_error_passes(tmp_path):
    probe(lambda: None, path="x", what="y")
    probe(lambda: 1 / 0, path="x", what="y")  # the caller reads again and reports its own error


def test_h5_models_still_open_through_the_probe(model_file):
    from converters.formats import load

    mf = model_file("tf_models", "cnn.h5")
    m = load(mf.path)
    assert m.format == "keras.h5" and m.param_count == mf.facts["param_count"]
