"""Block processing: ``Engine.process`` (N frames in one compiled call) computes exactly what N
``forward`` calls compute -- the same frame routine runs per frame, so the outputs are equal to the bit
and the state after a block is the state after N frames. Models cover every layer kind and the INT8
kernels and a graph with every merge row, with odd and square sizes; blocks of 1, odd, square and full capacity, and random partitions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.int8_json import quantize_model
from reference_engine import synthetic
from reference_engine.model import Engine
from toolchain.errors import InputError


def every_kind(rng) -> object:
    layers = [synthetic.dense(rng, 5, 9, "tanh"), synthetic.conv1d(rng, 9, 6, 3, 2, 3, "relu"),
              synthetic.batchnorm(rng, 6), synthetic.prelu(rng, 6), synthetic.lstm(rng, 6, 7),
              synthetic.gru(rng, 7, 16), synthetic.activation(16, "sigmoid"), synthetic.dense(rng, 16, 3)]
    return synthetic.model(5, layers)


def per_sample(rng) -> object:
    """The shape of a guitar-amp model: one sample in, LSTM, one sample out."""
    return synthetic.model(1, [synthetic.lstm(rng, 1, 12), synthetic.dense(rng, 12, 1)])


def frame_by_frame(engine: Engine, frames: np.ndarray) -> np.ndarray:
    engine.reset()
    return np.array([engine.forward(frame).copy() for frame in frames])


def blockwise(engine: Engine, frames: np.ndarray, sizes: list[int]) -> np.ndarray:
    engine.reset()
    pieces, start = [], 0
    for size in sizes:
        pieces.append(engine.process(frames[start:start + size]).copy())
        start += size
    assert start == len(frames)
    return np.vstack(pieces)


@pytest.mark.parametrize("build", [every_kind, per_sample, lambda rng: quantize_model(every_kind(rng)),
                                   lambda rng: synthetic.wavenet(rng)],
                         ids=["every-kind", "per-sample-lstm", "int8", "graph-wavenet"])
def test_blocks_equal_frame_by_frame_to_the_bit(rng, build):
    engine = Engine(build(rng), block=64)
    frames = rng.standard_normal((64 + 64 + 1 + 7 + 16 + 64, engine.input_size)).astype(np.float32)
    expected = frame_by_frame(engine, frames)
    np.testing.assert_array_equal(blockwise(engine, frames, [64, 64, 1, 7, 16, 64]), expected)
    engine.reset()
    np.testing.assert_array_equal(engine.run(frames), expected)  # run: block after block


def test_state_after_a_block_is_the_state_after_its_frames(rng):
    engine = Engine(every_kind(rng), block=9)
    frames = rng.standard_normal((9, engine.input_size)).astype(np.float32)
    frame_by_frame(engine, frames)
    state, cursors = engine.state.copy(), engine.cursors.copy()
    engine.reset()
    engine.process(frames)
    np.testing.assert_array_equal(engine.state, state)
    np.testing.assert_array_equal(engine.cursors, cursors)
    assert np.any(state != 0)  # the model has state to compare


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), capacity=st.integers(1, 17),
       cuts=st.lists(st.integers(0, 40), max_size=6))
def test_any_partition_into_blocks_equals_frame_by_frame(seed, capacity, cuts):
    rng = np.random.default_rng(seed)
    engine = Engine(every_kind(rng), block=capacity)
    frames = rng.standard_normal((41, engine.input_size)).astype(np.float32)
    expected = frame_by_frame(engine, frames)
    bounds = sorted(set([0, 41] + cuts))
    sizes = []
    for start, stop in zip(bounds, bounds[1:]):  # each piece split further into blocks of at most `capacity`
        sizes += [min(capacity, stop - s) for s in range(start, stop, capacity)]
    np.testing.assert_array_equal(blockwise(engine, frames, sizes), expected)


def test_process_returns_a_read_only_view_the_next_block_overwrites(rng):
    engine = Engine(per_sample(rng), block=4)
    first = engine.process(np.ones((4, 1), np.float32))
    kept = first.copy()
    with pytest.raises(ValueError):
        first[0, 0] = 1.0
    engine.process(np.full((4, 1), -3.0, np.float32))
    assert not np.array_equal(first, kept)


def test_a_block_larger_than_prepared_is_refused_and_prepare_grows_it(rng):
    engine = Engine(per_sample(rng), block=8)
    frames = rng.standard_normal((9, 1)).astype(np.float32)
    with pytest.raises(InputError, match="larger than the 8 prepared"):
        engine.process(frames)
    engine.prepare(9)
    assert engine.block_capacity == 9
    engine.reset()
    np.testing.assert_array_equal(engine.process(frames), frame_by_frame(engine, frames))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InputError):
            engine.prepare(bad)


@pytest.mark.parametrize("bad, message", [(np.zeros((4, 1)), "float32"), (np.zeros((4, 2), np.float32), "shape"),
                                          (np.zeros(4, np.float32), "shape"), ([[0.0]], "float32")])
def test_a_bad_block_is_refused(rng, bad, message):
    engine = Engine(per_sample(rng), block=8)
    with pytest.raises(InputError, match=message):
        engine.process(bad)
