"""The engine's memory report (from the arrays it holds) against an independent measurement: the bytes
tracemalloc sees retained when the engine is built (numpy reports its allocations to tracemalloc)."""
from __future__ import annotations

import numpy as np

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
