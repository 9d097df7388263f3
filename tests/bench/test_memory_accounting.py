"""The engine's memory report (from the arrays it holds) against an independent measurement: the bytes
tracemalloc sees retained when the engine is built (numpy reports its allocations to tracemalloc)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import unavailable

from reference_engine import synthetic
from reference_engine.benchmark import measured_build_memory
from reference_engine.model import Engine

#: The engine object itself (its __dict__, array headers, the numba struct proxy): a few KB whatever the model.
PYTHON_OVERHEAD = 32 << 10


def test_reported_memory_matches_what_tracemalloc_sees_allocated():
    rng = np.random.default_rng(3)
    model = synthetic.model(128, [synthetic.dense(rng, 128, 301, "relu"), synthetic.lstm(rng, 301, 97),
                                  synthetic.conv1d(rng, 97, 33, 3, 4)])
    report = Engine(model).memory()
    traced = measured_build_memory(model)["traced_bytes"]
    assert report.total_bytes > 500_000  # large enough that a missed buffer would show
    assert report.total_bytes <= traced <= report.total_bytes + PYTHON_OVERHEAD, (report, traced)


def test_reported_memory_matches_the_resident_set_growth_of_a_fresh_process(tmp_path):
    """Page-granular: allow a few pages either way (the report counts bytes; the kernel counts pages)."""
    from reference_engine.benchmark import resident_growth
    from toolchain.rtneural_json import write_model

    rng = np.random.default_rng(4)
    model = synthetic.model(96, [synthetic.dense(rng, 96, 400, "tanh"), synthetic.gru(rng, 400, 131)])
    path = write_model(model, tmp_path / "model.json")
    (growth,) = resident_growth([path])
    if growth is None:
        unavailable("resident-set size is only measured on Linux with glibc")
    total = Engine(model).memory().total_bytes
    assert total > 500_000
    assert abs(growth - total) <= 16 * 4096, (growth, total)
