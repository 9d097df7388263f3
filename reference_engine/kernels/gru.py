"""gru: RTNeural's ``GRULayer::forward`` (Keras ``reset_after=True`` == ONNX ``linear_before_reset=1``).

    a = W_ih x + b_ih,   b = W_hh h + b_hh       (3H values each, blocks z, r, h)
    z = sigmoid32(a_z + b_z);  r = sigmoid32(a_r + b_r)
    n = tanh(a_h + r * b_h)                      (the recurrent candidate bias sits INSIDE r * (...))
    h' = (1 - z) * n + z * h                     (h persists between frames)

Engine layout: ``weight_ih [3H, in]`` and ``weight_hh [3H, H]`` row-major; the two biases stay apart.
Matrices with short rows (<= 16 columns, a per-sample model) are stored transposed and multiplied column
by column (``dense.use_columns``; the table's PARAM0 and PARAM1 say which).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from reference_engine.kernels.dense import matvec_any, packed_matrix
from reference_engine.kernels.maths import sigmoid32, tanh32
from toolchain.layers import GRU


def pack(layer: GRU) -> Packed:
    hidden = layer.hidden_size
    weight_ih, columns_ih = packed_matrix(layer.weight_ih)
    weight_hh, columns_hh = packed_matrix(layer.weight_hh)
    return Packed(arrays=[weight_ih, weight_hh, layer.bias_ih, layer.bias_hh],
                  state_size=hidden, work_size=6 * hidden,  # state h; work a, b
                  params=(int(columns_ih), int(columns_hh)))


@njit(**JIT)
def gru(weight_ih, weight_hh, bias_ih, bias_hh, x, h, input_part, hidden_part, y, columns_ih, columns_hh):
    """One frame; state ``h`` [H]; work ``input_part``, ``hidden_part`` [3H]; ``columns_*``: that matrix is transposed."""
    matvec_any(weight_ih, bias_ih, x, input_part, columns_ih)
    matvec_any(weight_hh, bias_hh, h, hidden_part, columns_hh)
    gru_cell(input_part, hidden_part, h, y)


@njit(**JIT)
def gru_cell(input_part, hidden_part, h, y):
    """The gate nonlinearities and state update from both partial sums [3H] (shared with the INT8 kernel)."""
    hidden = h.shape[0]
    for j in range(hidden):
        update = sigmoid32(input_part[j] + hidden_part[j])
        reset = sigmoid32(input_part[hidden + j] + hidden_part[hidden + j])
        candidate = tanh32(input_part[2 * hidden + j] + reset * hidden_part[2 * hidden + j])
        y[j] = (np.float32(1) - update) * candidate + update * h[j]
    for j in range(hidden):
        h[j] = y[j]
