"""The gate-order table and reorder_gates: permutations that invert and that really move blocks."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchain import gates

ORDERS = [(gates.LSTM_ONNX, gates.LSTM_RTNEURAL), (gates.GRU_TORCH, gates.GRU_RTNEURAL), (gates.GRU_ONNX, gates.GRU_RTNEURAL)]


@settings(max_examples=60, deadline=None)
@given(hidden=st.integers(1, 9), columns=st.integers(1, 5), pair=st.sampled_from(ORDERS), axis=st.sampled_from([0, 1]), seed=st.integers(0, 2**16))
def test_reordering_there_and_back_is_the_identity(hidden, columns, pair, axis, seed):
    source, target = pair
    shape = [len(source) * hidden, columns] if axis == 0 else [columns, len(source) * hidden]
    array = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    there = gates.reorder_gates(array, source, target, axis=axis)
    np.testing.assert_array_equal(gates.reorder_gates(there, target, source, axis=axis), array)


def test_onnx_lstm_blocks_land_in_rtneural_order():
    hidden = 2
    # Block b of the ONNX array is filled with the value b: i=0, o=1, f=2, c=3.
    onnx_array = np.repeat(np.arange(4, dtype=np.float32), hidden)
    reordered = gates.reorder_gates(onnx_array, gates.LSTM_ONNX, gates.LSTM_RTNEURAL)
    assert reordered.tolist() == [0, 0, 2, 2, 3, 3, 1, 1]  # i, f, c, o


def test_torch_gru_swaps_reset_and_update():
    torch_array = np.repeat(np.arange(3, dtype=np.float32), 1)  # r=0, z=1, n=2
    assert gates.reorder_gates(torch_array, gates.GRU_TORCH, gates.GRU_RTNEURAL).tolist() == [1, 0, 2]
