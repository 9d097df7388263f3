"""lstm: RTNeural's ``LSTMLayer::forward`` (gate blocks i, f, c, o; ONE bias; no peepholes).

    gates = W_ih x + W_hh h + b                 (4H values, blocks i, f, c, o)
    i, f, o = sigmoid32(.);  g = tanh(.)
    c' = f * c + i * g;    h' = o * tanh(c')    (h and c persist between frames)

Engine layout: the two matrices are packed side by side as ``weight [4H, in + H] = [W_ih | W_hh]``, so
one contiguous dot product per gate row over the concatenated ``[x; h]`` computes both products. A
matrix with short rows (a per-sample model: ``in + H`` <= 16) is stored transposed and multiplied column by
column instead (``dense.use_columns``; the table's PARAM0 says which).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from reference_engine.kernels.dense import matvec_any, packed_matrix
from reference_engine.kernels.maths import sigmoid32, tanh32
from toolchain.layers import LSTM, f32


def pack(layer: LSTM) -> Packed:
    hidden = layer.hidden_size
    weight, columns = packed_matrix(f32(np.hstack([layer.weight_ih, layer.weight_hh])))
    return Packed(arrays=[weight, layer.bias],
                  state_size=2 * hidden,  # h, c
                  work_size=layer.in_size + hidden + 4 * hidden,  # [x; h], gates
                  params=(int(columns),))


@njit(**JIT)
def lstm(weight, bias, x, h, c, xh, gates, y, columns):
    """One frame: ``weight [4H, in+H]`` (``[in+H, 4H]`` if ``columns``), ``bias [4H]``; state ``h``, ``c`` [H];
    work ``xh`` [in+H], ``gates`` [4H]."""
    inputs, hidden = x.shape[0], h.shape[0]
    for k in range(inputs):
        xh[k] = x[k]
    for k in range(hidden):
        xh[inputs + k] = h[k]
    matvec_any(weight, bias, xh, gates, columns)
    lstm_cell(gates, c, h, y)


@njit(**JIT)
def lstm_cell(gates, c, h, y):
    """The gate nonlinearities and state update from the summed ``gates`` [4H] (shared with the INT8 kernel)."""
    hidden = h.shape[0]
    for j in range(hidden):
        input_gate = sigmoid32(gates[j])
        forget_gate = sigmoid32(gates[hidden + j])
        candidate = tanh32(gates[2 * hidden + j])
        output_gate = sigmoid32(gates[3 * hidden + j])
        c[j] = forget_gate * c[j] + input_gate * candidate
        y[j] = output_gate * tanh32(c[j])
    for j in range(hidden):
        h[j] = y[j]
