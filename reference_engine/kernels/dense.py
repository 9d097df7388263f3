"""dense (and time-distributed-dense): ``y = W x + b``, then the layer's activation.

Engine layout: ``weight [out, in]`` row-major, so each output is one dot product over a contiguous row
(RTNeural's JSON stores the transpose ``[in][out]``; the JSON reader already turned it around).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from toolchain.layers import Dense


def pack(layer: Dense) -> Packed:
    return Packed(arrays=[layer.weight, layer.bias])


@njit(**JIT)
def matvec_bias(weight, bias, x, y):
    """``y = weight @ x + bias`` for ``weight [rows, cols]`` (float32), without allocating.

    Four rows at a time: each ``x[col]`` load then feeds four multiply-adds, and the vector loop's
    set-up and final horizontal sums are shared by four rows -- measured 1.2-2.3x faster than one row
    at a time on the engine's shapes (e.g. [176, 44]: 1.04 -> 0.45 us), and level with OpenBLAS sgemv.
    """
    rows, cols = weight.shape
    blocked = rows - rows % 4
    for row in range(0, blocked, 4):
        total0 = total1 = total2 = total3 = np.float32(0)
        for col in range(cols):
            value = x[col]
            total0 += weight[row, col] * value
            total1 += weight[row + 1, col] * value
            total2 += weight[row + 2, col] * value
            total3 += weight[row + 3, col] * value
        y[row] = total0 + bias[row]
        y[row + 1] = total1 + bias[row + 1]
        y[row + 2] = total2 + bias[row + 2]
        y[row + 3] = total3 + bias[row + 3]
    for row in range(blocked, rows):
        total = np.float32(0)
        for col in range(cols):
            total += weight[row, col] * x[col]
        y[row] = total + bias[row]


#: A matrix with at most this many columns (and at least twice as many rows) is stored transposed and
#: multiplied column by column (:func:`matvec_bias_columns`): a row of 13 floats is shorter than one
#: AVX-512 vector, so the row-dot form runs scalar. Measured on a per-sample LSTM-12's [48, 13] matrix:
#: 95-140 ns by rows, 56-62 ns by columns; GRU-8's [24, 1]: 23-35 -> 11-19 ns; from [64, 32] up the
#: row form wins (bench/results/profile_frame.md).
COLUMNS_MAX_COLS = 16


def use_columns(rows: int, cols: int) -> bool:
    """Whether a ``[rows, cols]`` matrix is packed transposed for :func:`matvec_bias_columns`."""
    return cols <= COLUMNS_MAX_COLS and rows >= 2 * cols


def packed_matrix(weight: np.ndarray) -> tuple[np.ndarray, bool]:
    """``weight [rows, cols]`` laid out for the kernel: (the array, whether it is transposed)."""
    columns = use_columns(*weight.shape)
    return np.ascontiguousarray(weight.T if columns else weight, dtype=np.float32), columns


@njit(**JIT)
def matvec_bias_columns(weight_t, bias, x, y):
    """``y = weight @ x + bias`` from the transpose ``weight_t [cols, rows]``: one vectorised pass over
    the rows per input value (an axpy per column), for short rows (see :data:`COLUMNS_MAX_COLS`)."""
    cols, rows = weight_t.shape
    for row in range(rows):
        y[row] = bias[row]
    for col in range(cols):
        value = x[col]
        for row in range(rows):
            y[row] += weight_t[col, row] * value


@njit(**JIT)
def matvec_any(weight, bias, x, y, columns):
    """:func:`matvec_bias_columns` on a transposed ``weight`` (``columns``), else :func:`matvec_bias`."""
    if columns:
        matvec_bias_columns(weight, bias, x, y)
    else:
        matvec_bias(weight, bias, x, y)


@njit(**JIT)
def dense(weight, bias, x, y):
    """RTNeural ``Dense::forward``: ``y[j] = sum_i W[j, i] x[i] + b[j]`` (activation applied by the caller)."""
    matvec_bias(weight, bias, x, y)
