"""Gate-split invariants of the LSTM/GRU conversion, for random sizes and random weights.

- The converter's gate permutation and bias folding, run by the reference engine frame by frame,
  equal onnxruntime on the ONNX model (the independent implementation of ONNX's semantics).
- The layout mapping inverts: RTNeural JSON -> ONNX weights -> JSON gives back the same file.
- Permuting the ONNX gate blocks changes the output, so the first property can fail.

Tolerance 1e-5 absolute: float32 recurrences over <= 12 frames with outputs of magnitude <= 1 differ
between two correct implementations by ~1e-7 (measured); a gate-order or bias bug gives ~1e-1.
"""
from __future__ import annotations

import numpy as np
import onnxruntime
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx.reference import ReferenceEvaluator

from reference_engine.model import Engine
from tests.fixtures import onnx_graphs as graphs
from toolchain import gates
from toolchain.layers import GRU, LSTM, Model
from toolchain.onnx_import import import_model_proto
from toolchain.rtneural_json import model_to_json

ATOL = 1e-5
SIZES = st.integers(1, 9)
SEEDS = st.integers(0, 2**32 - 1)
PROPERTY = settings(max_examples=30, deadline=None)


def onnxruntime_frames(proto, frames: np.ndarray, layout: int) -> np.ndarray:
    """Run the one-RNN-node model on ``frames [T, in]`` (batch 1); return Y as ``[T, H]``.

    onnxruntime's CPU LSTM/GRU refuse ``layout=1``; those cases run in onnx's reference evaluator
    (also independent of kelly-tc; it agrees with onnxruntime on layout 0 to ~6e-8)."""
    if layout == 0:
        session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    else:
        session = ReferenceEvaluator(proto)
    x = frames[:, None, :] if layout == 0 else frames[None]
    y = session.run(["y"], {"x": x})[0]
    return y[:, 0, 0, :] if layout == 0 else y[0, :, 0, :]


def engine_frames(proto, frames: np.ndarray) -> np.ndarray:
    """Convert the model and run it one ``forward()`` per frame from a reset."""
    engine = Engine(import_model_proto(proto).model)
    engine.reset()
    return np.stack([engine.forward(frame).copy() for frame in frames])


def rnn_weights(seed: int, gate_count: int, input_size: int, hidden: int):
    rng = np.random.default_rng(seed)
    w = graphs.random(rng, 1, gate_count * hidden, input_size)
    r = graphs.random(rng, 1, gate_count * hidden, hidden)
    b = graphs.random(rng, 1, 2 * gate_count * hidden)
    frames = graphs.random(rng, 12, input_size, scale=1.0)
    return w, r, b, frames


def permute_blocks(array: np.ndarray, order, axis: int) -> np.ndarray:
    blocks = np.split(array, len(order), axis=axis)
    return np.concatenate([blocks[i] for i in order], axis=axis)


# ----------------------------------------------------------------------------- engine == onnxruntime
@PROPERTY
@given(input_size=SIZES, hidden=SIZES, count=st.integers(1, 12), layout=st.sampled_from([0, 1]), with_bias=st.booleans(), seed=SEEDS)
def test_lstm_gate_order_and_bias_sum_match_onnxruntime(input_size, hidden, count, layout, with_bias, seed):
    w, r, b, frames = rnn_weights(seed, 4, input_size, hidden)
    proto = graphs.lstm(w, r, b if with_bias else None, layout=layout)
    frames = frames[:count]
    np.testing.assert_allclose(engine_frames(proto, frames), onnxruntime_frames(proto, frames, layout), atol=ATOL, rtol=0)


@PROPERTY
@given(input_size=SIZES, hidden=SIZES, count=st.integers(1, 12), layout=st.sampled_from([0, 1]), with_bias=st.booleans(), seed=SEEDS)
def test_gru_gate_order_and_separate_biases_match_onnxruntime(input_size, hidden, count, layout, with_bias, seed):
    w, r, b, frames = rnn_weights(seed, 3, input_size, hidden)
    proto = graphs.gru(w, r, b if with_bias else None, layout=layout)
    frames = frames[:count]
    np.testing.assert_allclose(engine_frames(proto, frames), onnxruntime_frames(proto, frames, layout), atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- JSON -> ONNX -> JSON
def canonical_to_onnx(array: np.ndarray, source, target) -> np.ndarray:
    """The inverse of the converter's mapping: canonical (RTNeural) gate blocks to ONNX's, with the
    direction axis ONNX adds."""
    return gates.reorder_gates(array, source, target, axis=0)[None]


@PROPERTY
@given(input_size=SIZES, hidden=SIZES, seed=SEEDS)
def test_lstm_layout_mapping_inverts(input_size, hidden, seed):
    rng = np.random.default_rng(seed)
    layer = LSTM(graphs.random(rng, 4 * hidden, input_size), graphs.random(rng, 4 * hidden, hidden), graphs.random(rng, 4 * hidden))
    document = model_to_json(Model(input_size, [layer]))
    to_onnx = (gates.LSTM_CANONICAL, gates.LSTM_ONNX)
    # RTNeural's single bias goes to ONNX's input bias, the recurrent bias is zero: their sum is exact.
    bias = np.concatenate([canonical_to_onnx(layer.bias, *to_onnx), np.zeros((1, 4 * hidden), np.float32)], axis=1)
    proto = graphs.lstm(canonical_to_onnx(layer.weight_ih, *to_onnx), canonical_to_onnx(layer.weight_hh, *to_onnx), bias)
    assert model_to_json(import_model_proto(proto).model)["layers"] == document["layers"]


@PROPERTY
@given(input_size=SIZES, hidden=SIZES, seed=SEEDS)
def test_gru_layout_mapping_inverts(input_size, hidden, seed):
    rng = np.random.default_rng(seed)
    layer = GRU(graphs.random(rng, 3 * hidden, input_size), graphs.random(rng, 3 * hidden, hidden),
                graphs.random(rng, 3 * hidden), graphs.random(rng, 3 * hidden))
    document = model_to_json(Model(input_size, [layer]))
    to_onnx = (gates.GRU_CANONICAL, gates.GRU_ONNX)
    bias = np.concatenate([canonical_to_onnx(layer.bias_ih, *to_onnx), canonical_to_onnx(layer.bias_hh, *to_onnx)], axis=1)
    proto = graphs.gru(canonical_to_onnx(layer.weight_ih, *to_onnx), canonical_to_onnx(layer.weight_hh, *to_onnx), bias)
    assert model_to_json(import_model_proto(proto).model)["layers"] == document["layers"]


# ----------------------------------------------------------------------------- the test can fail
NOT_IDENTITY_4 = st.permutations(range(4)).filter(lambda p: list(p) != [0, 1, 2, 3])
NOT_IDENTITY_3 = st.permutations(range(3)).filter(lambda p: list(p) != [0, 1, 2])


@PROPERTY
@given(input_size=SIZES, hidden=SIZES, order=NOT_IDENTITY_4, seed=SEEDS)
def test_permuting_lstm_gate_blocks_changes_the_output(input_size, hidden, order, seed):
    w, r, b, frames = rnn_weights(seed, 4, input_size, hidden)
    original = engine_frames(graphs.lstm(w, r, b), frames)
    halves = np.split(b, 2, axis=1)  # input and recurrent biases are permuted alike
    permuted = graphs.lstm(permute_blocks(w, order, 1), permute_blocks(r, order, 1),
                           np.concatenate([permute_blocks(h, order, 1) for h in halves], axis=1))
    assert np.abs(original - onnxruntime_frames(permuted, frames, 0)).max() > 100 * ATOL


@PROPERTY
@given(input_size=SIZES, hidden=SIZES, order=NOT_IDENTITY_3, seed=SEEDS)
def test_permuting_gru_gate_blocks_changes_the_output(input_size, hidden, order, seed):
    w, r, b, frames = rnn_weights(seed, 3, input_size, hidden)
    original = engine_frames(graphs.gru(w, r, b), frames)
    halves = np.split(b, 2, axis=1)
    permuted = graphs.gru(permute_blocks(w, order, 1), permute_blocks(r, order, 1),
                          np.concatenate([permute_blocks(h, order, 1) for h in halves], axis=1))
    assert np.abs(original - onnxruntime_frames(permuted, frames, 0)).max() > 100 * ATOL
