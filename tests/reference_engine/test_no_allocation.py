"""The per-frame path allocates nothing.

Two independent measurements, each with a control that proves it can fail:
- numba's runtime (NRT) allocation counters, enabled with NUMBA_NRT_STATS=1 in a subprocess (the flag
  must be set before numba is imported): zero NRT allocations over 10,000 ``forward`` calls of a stack
  and of a graph with every merge row (``synthetic.wavenet``), and over the ``process`` calls of 10,000
  frames in blocks of 64 (and of 7: a partial block), and of a per-sample LSTM's specialised program
  (``reference_engine/specialise.py``: blocks of 64 and single frames), while a compiled
  function that does allocate moves the counter per call;
- tracemalloc over 10,000 ``forward`` calls of a model with a 4096-wide output: the peak of traced
  memory grows by far less than one output array (16 KiB), while a variant that copies the output
  each frame exceeds it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np

from reference_engine import synthetic
from reference_engine.model import Engine
from tests.conftest import REPO

FRAMES = 10_000

NRT_SCRIPT = textwrap.dedent("""
    import json, numpy as np
    from numba import njit
    from numba.core.runtime import rtsys
    from reference_engine import synthetic
    from reference_engine.model import Engine

    from toolchain.layers import BatchNorm2D, Conv2D, f32
    rng = np.random.default_rng(0)
    conv2d = Conv2D(f32(rng.normal(size=(3, 2, 2, 3))), f32(rng.normal(size=3)), num_features_in=5, dilation=2, stride=2,
                    valid_pad=False, activation="relu")  # a [5 x 2] map -> [3 x 3]
    norm2d = BatchNorm2D(*[f32(rng.uniform(0.5, 1.5, 3)) for _ in range(4)], num_features=3)
    layers = [synthetic.dense(rng, 4, 10, "tanh"), conv2d, norm2d, synthetic.conv1d(rng, 9, 8, 3, 2, 1, "relu"),
              synthetic.batchnorm(rng, 8), synthetic.prelu(rng, 8), synthetic.lstm(rng, 8, 7),
              synthetic.gru(rng, 7, 6), synthetic.activation(6, "softmax"), synthetic.dense(rng, 6, 3)]
    engine = Engine(synthetic.model(4, layers))
    graph = Engine(synthetic.wavenet(rng, 4))   # every merge row: slice, mul, add (n-ary), concat, sub
    frames = rng.standard_normal((FRAMES, 4)).astype(np.float32)
    outputs = np.empty((FRAMES, 3), np.float32)

    @njit
    def allocating_control(x):
        return np.empty(x.shape[0], np.float32)

    engine.forward(frames[0]); engine.run(frames[:2]); allocating_control(frames[0])   # compile first
    graph.forward(frames[0])
    def allocations():
        return rtsys.get_allocation_stats().alloc
    before = allocations()
    for frame in frames:
        engine.forward(frame)
    forward_delta = allocations() - before
    before = allocations()
    for frame in frames:
        graph.forward(frame)
    graph_delta = allocations() - before
    engine.process(frames[:64]); engine.process(frames[:7])
    process_deltas = []
    for size in (64, 7):
        blocks = [frames[start:start + size] for start in range(0, FRAMES - size + 1, size)]
        before = allocations()
        for block in blocks:
            engine.process(block)
        process_deltas.append(allocations() - before)
    before = allocations()
    for frame in frames:
        allocating_control(frame)
    control_delta = allocations() - before
    from reference_engine import specialise
    per_sample = Engine(synthetic.model(1, [synthetic.lstm(rng, 1, 12), synthetic.dense(rng, 12, 1)]))
    assert specialise.specialisable(per_sample.program)  # its own straight-line program (specialise.py)
    samples = frames[:, :1].copy()
    per_sample.process(samples[:64]); per_sample.forward(samples[0])
    before = allocations()
    for start in range(0, FRAMES - 63, 64):
        per_sample.process(samples[start:start + 64])
    for frame in samples[:1000]:
        per_sample.forward(frame)
    special_delta = allocations() - before
    print(json.dumps({"forward": forward_delta, "graph_forward": graph_delta, "process": process_deltas,
                      "specialised": special_delta, "control": control_delta}))
""").replace("FRAMES", str(FRAMES))


def test_numba_runtime_allocates_nothing_per_frame():
    environment = dict(os.environ, NUMBA_NRT_STATS="1")
    result = subprocess.run([sys.executable, "-c", NRT_SCRIPT], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["control"] >= FRAMES, f"the NRT counter does not see allocations: {counts}"
    assert counts["forward"] == 0, counts
    assert counts["graph_forward"] == 0, counts
    assert counts["process"] == [0, 0], counts
    assert counts["specialised"] == 0, counts


def peak_growth(step, frames) -> int:
    """Bytes by which tracemalloc's peak rises while ``step`` runs over ``frames``."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        for frame in frames:
            step(frame)
        return tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def test_forward_allocates_no_output_array_per_frame(rng):
    wide = 4096
    engine = Engine(synthetic.model(3, [synthetic.dense(rng, 3, wide, "tanh")]))
    frames = rng.standard_normal((FRAMES, 3)).astype(np.float32)
    engine.forward(frames[0])
    one_output = wide * 4
    assert peak_growth(lambda frame: engine.forward(frame).copy(), frames[:100]) >= one_output  # the control
    assert peak_growth(engine.forward, frames) < one_output // 4


def test_process_allocates_no_output_array_per_block(rng):
    wide = 4096
    engine = Engine(synthetic.model(3, [synthetic.dense(rng, 3, wide, "tanh")]), block=4)
    frames = rng.standard_normal((FRAMES, 3)).astype(np.float32)
    blocks = [frames[start:start + 4] for start in range(0, 4000, 4)]
    engine.process(blocks[0])
    one_output = 4 * wide * 4
    assert peak_growth(lambda block: engine.process(block).copy(), blocks[:100]) >= one_output  # the control
    assert peak_growth(engine.process, blocks) < one_output // 16
