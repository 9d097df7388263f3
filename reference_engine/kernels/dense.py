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
    """``y = weight @ x + bias`` for ``weight [rows, cols]`` (float32), without allocating."""
    for row in range(weight.shape[0]):
        total = np.float32(0)
        for col in range(weight.shape[1]):
            total += weight[row, col] * x[col]
        y[row] = total + bias[row]


@njit(**JIT)
def dense(weight, bias, x, y):
    """RTNeural ``Dense::forward``: ``y[j] = sum_i W[j, i] x[i] + b[j]`` (activation applied by the caller)."""
    matvec_bias(weight, bias, x, y)
