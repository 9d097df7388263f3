"""The Engine API: streaming state, reset, input checks, non-finite input, memory accounting."""
from __future__ import annotations

import numpy as np
import pytest

from reference_engine import synthetic
from reference_engine.model import Engine, load_engine
from tests.reference_engine.conftest import random_frames
from toolchain.errors import InputError


@pytest.fixture
def stateful_engine(rng):
    """Recurrent and conv1d state both present, odd sizes."""
    layers = [synthetic.conv1d(rng, 5, 7, 3, 2), synthetic.lstm(rng, 7, 11), synthetic.gru(rng, 11, 6),
              synthetic.dense(rng, 6, 3, "tanh")]
    return Engine(synthetic.model(5, layers))


def test_forward_one_frame_at_a_time_equals_run_over_the_sequence(stateful_engine, rng):
    frames = random_frames(rng, 64, 5)
    stateful_engine.reset()
    one_by_one = np.array([stateful_engine.forward(frame).copy() for frame in frames])
    stateful_engine.reset()
    np.testing.assert_array_equal(stateful_engine.run(frames), one_by_one)


def test_run_continues_from_the_current_state(stateful_engine, rng):
    frames = random_frames(rng, 50, 5)
    stateful_engine.reset()
    whole = stateful_engine.run(frames)
    stateful_engine.reset()
    halves = np.vstack([stateful_engine.run(frames[:17]), stateful_engine.run(frames[17:])])
    np.testing.assert_array_equal(halves, whole)


def test_reset_zeroes_all_state_so_a_replay_is_identical(stateful_engine, rng):
    frames = random_frames(rng, 30, 5)
    stateful_engine.reset()
    first = stateful_engine.run(frames)
    second = stateful_engine.run(frames)  # without reset: the state differs
    stateful_engine.reset()
    third = stateful_engine.run(frames)
    assert np.abs(second - first).max() > 1e-3
    np.testing.assert_array_equal(third, first)
    stateful_engine.reset()
    assert not stateful_engine.state.any() and not stateful_engine.cursors.any()


def test_a_fresh_engine_starts_from_zero_state(rng):
    model = synthetic.model(4, [synthetic.lstm(rng, 4, 9)])
    frames = random_frames(rng, 10, 4)
    fresh, used = Engine(model), Engine(model)
    used.run(frames)
    used.reset()
    np.testing.assert_array_equal(fresh.run(frames), used.run(frames))


def test_forward_returns_a_read_only_view_of_one_internal_buffer(stateful_engine, rng):
    frames = random_frames(rng, 2, 5)
    first = stateful_engine.forward(frames[0])
    second = stateful_engine.forward(frames[1])
    assert first is second and np.shares_memory(first, stateful_engine.scratch)
    assert first.shape == (3,) and first.dtype == np.float32
    with pytest.raises(ValueError):
        first[0] = 1.0


def test_sizes_are_exposed(stateful_engine):
    assert (stateful_engine.input_size, stateful_engine.output_size) == (5, 3)


@pytest.mark.parametrize("frame,reason", [
    (np.zeros(4, np.float32), "shape"),
    (np.zeros((1, 5), np.float32), "shape"),
    (np.zeros(5, np.float64), "float32"),
    (np.zeros(5, np.int32), "float32"),
    ([0.0] * 5, "float32"),
], ids=["too-short", "two-d", "float64", "int32", "list"])
def test_forward_refuses_a_malformed_frame(stateful_engine, frame, reason):
    with pytest.raises(InputError, match=reason):
        stateful_engine.forward(frame)


@pytest.mark.parametrize("frames,reason", [
    (np.zeros((3, 4), np.float32), "shape"),
    (np.zeros(5, np.float32), "shape"),
    (np.zeros((3, 5), np.float64), "float32"),
], ids=["wrong-width", "one-d", "float64"])
def test_run_refuses_malformed_frames(stateful_engine, frames, reason):
    with pytest.raises(InputError, match=reason):
        stateful_engine.run(frames)


def test_strided_and_byte_swapped_float32_frames_are_accepted(stateful_engine, rng):
    frames = random_frames(rng, 8, 5)
    stateful_engine.reset()
    expected = stateful_engine.run(frames)
    stateful_engine.reset()
    strided = np.zeros((8, 10), np.float32)
    strided[:, ::2] = frames
    swapped = frames.astype(">f4")
    outputs = [stateful_engine.forward(strided[t, ::2]).copy() for t in range(4)]
    outputs += [stateful_engine.forward(swapped[t]).copy() for t in range(4, 8)]
    np.testing.assert_array_equal(np.array(outputs), expected)
    stateful_engine.reset()
    np.testing.assert_array_equal(stateful_engine.run(np.asfortranarray(frames)), expected)
    stateful_engine.reset()
    np.testing.assert_array_equal(stateful_engine.run(swapped), expected)


def test_run_over_zero_frames_returns_an_empty_array(stateful_engine):
    assert stateful_engine.run(np.zeros((0, 5), np.float32)).shape == (0, 3)


def test_nan_input_propagates_and_poisons_recurrent_state_until_reset(rng):
    """Documented behaviour (model.py): like RTNeural, the engine does not filter NaN."""
    engine = Engine(synthetic.model(3, [synthetic.lstm(rng, 3, 5), synthetic.dense(rng, 5, 2)]))
    frames = random_frames(rng, 6, 3)
    engine.reset()
    clean = engine.run(frames)
    frames_with_nan = frames.copy()
    frames_with_nan[2, 1] = np.nan
    engine.reset()
    poisoned = engine.run(frames_with_nan)
    np.testing.assert_array_equal(poisoned[:2], clean[:2])
    assert np.isnan(poisoned[2:]).all()
    engine.reset()
    np.testing.assert_array_equal(engine.run(frames), clean)


def test_relu_maps_nan_to_zero_like_std_max(rng):
    engine = Engine(synthetic.model(3, [synthetic.activation(3, "relu")]))
    output = engine.forward(np.array([np.nan, -1.0, 2.0], np.float32))
    np.testing.assert_array_equal(output, [0.0, 0.0, 2.0])


def test_softmax_does_not_subtract_the_maximum_so_large_inputs_give_nan(rng):
    engine = Engine(synthetic.model(2, [synthetic.activation(2, "softmax")]))
    assert np.isnan(engine.forward(np.array([100.0, 1.0], np.float32))).any()
    np.testing.assert_allclose(engine.forward(np.array([1.0, 1.0], np.float32)), [0.5, 0.5])


def test_infinite_input_saturates_tanh_and_sigmoid(rng):
    engine = Engine(synthetic.model(2, [synthetic.activation(2, "sigmoid")]))
    np.testing.assert_array_equal(engine.forward(np.array([np.inf, -np.inf], np.float32)), [1.0, 0.0])


def test_memory_report_counts_the_arrays_the_engine_holds(rng):
    inputs, hidden, outputs = 6, 10, 4
    model = synthetic.model(inputs, [synthetic.conv1d(rng, inputs, 8, 3, 2), synthetic.lstm(rng, 8, hidden),
                                     synthetic.dense(rng, hidden, outputs)])
    engine = Engine(model, block=5)
    report = engine.memory()
    parameters = model.parameter_count()
    # Padding to 64-byte boundaries adds at most 15 floats per array (7 arrays); the opcode table is apart.
    assert parameters * 4 <= report.weight_bytes <= parameters * 4 + 7 * 15 * 4
    assert report.program_bytes == 3 * 16 * 8  # three rows of 16 int64 fields
    ring = ((3 - 1) * 2 + 1) * inputs
    assert report.state_bytes == (ring + 2 * hidden) * 4 + 8  # conv ring + LSTM h, c + one cursor
    # ping-pong, LSTM work, input row, then the block of 5 frames in and out
    assert report.scratch_bytes == 2 * 10 * 4 + (8 + hidden + 4 * hidden) * 4 + inputs * 4 + 5 * (inputs + outputs) * 4
    assert report.total_bytes == report.weight_bytes + report.program_bytes + report.state_bytes + report.scratch_bytes


def test_load_engine_reads_rtneural_json(tmp_path, rng):
    from toolchain.rtneural_json import write_model

    model = synthetic.model(4, [synthetic.gru(rng, 4, 7), synthetic.dense(rng, 7, 2)])
    path = write_model(model, tmp_path / "model.json")
    frames = random_frames(rng, 12, 4)
    np.testing.assert_array_equal(load_engine(path).run(frames), Engine(model).run(frames))
