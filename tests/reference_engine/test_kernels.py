"""Each layer kind, alone and in stacks, against an independent float64 NumPy implementation of the
format document (numpy_reference.py), with random weights and odd sizes.

Tolerance: the engine computes in float32; over these sizes (sums of <= ~60 terms of magnitude <= ~1,
through saturating nonlinearities, 40 frames of recurrence) float32 rounding stays below ~2e-6, so we
allow 1e-5 absolute + 1e-5 relative -- a gate-order or tap-order mistake is off by ~1e-1.
"""
from __future__ import annotations

import numpy as np
import pytest

from reference_engine import synthetic
from reference_engine.model import Engine
from tests.reference_engine.conftest import random_frames
from tests.reference_engine.numpy_reference import reference_run
from toolchain.rtneural_json import model_to_json

FRAMES = 40
ATOL = RTOL = 1e-5


def assert_matches_reference(model, frames):
    engine = Engine(model)
    engine.reset()
    outputs = np.array([engine.forward(frame).copy() for frame in frames])
    expected = reference_run(model_to_json(model), frames)
    np.testing.assert_allclose(outputs, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("activation", ["", "tanh", "relu", "sigmoid", "softmax", "elu"])
def test_dense_with_each_activation(rng, activation):
    model = synthetic.model(7, [synthetic.dense(rng, 7, 11, activation)])
    assert_matches_reference(model, random_frames(rng, FRAMES, 7, scale=2.0))


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "softmax", "elu"])
def test_standalone_activation_layer(rng, activation):
    model = synthetic.model(9, [synthetic.dense(rng, 9, 9), synthetic.activation(9, activation)])
    assert_matches_reference(model, random_frames(rng, FRAMES, 9, scale=2.0))


def test_lstm_gates_i_f_c_o_with_single_bias_and_carried_state(rng):
    model = synthetic.model(5, [synthetic.lstm(rng, 5, 13)])
    assert_matches_reference(model, random_frames(rng, FRAMES, 5))


def test_gru_z_r_h_with_reset_applied_to_the_recurrent_candidate(rng):
    model = synthetic.model(6, [synthetic.gru(rng, 6, 11)])
    assert_matches_reference(model, random_frames(rng, FRAMES, 6))


@pytest.mark.parametrize("kernel_size,dilation,groups", [(3, 1, 1), (3, 2, 1), (1, 1, 1), (4, 3, 3), (2, 5, 1)])
def test_conv1d_is_causal_with_the_last_tap_on_the_current_frame(rng, kernel_size, dilation, groups):
    model = synthetic.model(6, [synthetic.conv1d(rng, 6, 9, kernel_size, dilation, groups, activation="tanh")])
    assert_matches_reference(model, random_frames(rng, FRAMES, 6))


def test_batchnorm_inference(rng):
    model = synthetic.model(7, [synthetic.batchnorm(rng, 7)])
    assert_matches_reference(model, random_frames(rng, FRAMES, 7))


@pytest.mark.parametrize("shared", [True, False], ids=["one-alpha", "per-channel"])
def test_prelu(rng, shared):
    model = synthetic.model(8, [synthetic.prelu(rng, 8, shared)])
    assert_matches_reference(model, random_frames(rng, FRAMES, 8))


def test_stack_of_every_kind(rng):
    layers = [synthetic.dense(rng, 3, 10, "tanh"), synthetic.conv1d(rng, 10, 12, 3, 2, 2, "relu"),
              synthetic.batchnorm(rng, 12), synthetic.prelu(rng, 12), synthetic.lstm(rng, 12, 9),
              synthetic.gru(rng, 9, 7), synthetic.activation(7, "elu"), synthetic.dense(rng, 7, 5, "softmax")]
    assert_matches_reference(synthetic.model(3, layers), random_frames(rng, FRAMES, 3))


def test_the_reference_catches_a_wrong_gate_order(rng):
    """Guard for the tests above: swapping two LSTM gate blocks must break the comparison."""
    model = synthetic.model(5, [synthetic.lstm(rng, 5, 13)])
    frames = random_frames(rng, FRAMES, 5)
    expected = reference_run(model_to_json(model), frames)
    layer = model.layers[0]
    hidden = layer.hidden_size
    swap = np.r_[hidden:2 * hidden, 0:hidden, 2 * hidden:4 * hidden]  # i <-> f
    layer.weight_ih, layer.weight_hh, layer.bias = (np.ascontiguousarray(a[swap]) for a in (layer.weight_ih, layer.weight_hh, layer.bias))
    engine = Engine(model)
    outputs = engine.run(frames)
    assert np.abs(outputs - expected).max() > 100 * ATOL
