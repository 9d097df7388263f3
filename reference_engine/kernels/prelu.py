"""prelu: ``y = x >= 0 ? x : alpha x`` (RTNeural's ``PReLUActivation``).

A single alpha is broadcast to every channel at pack time, so the kernel always reads ``alpha [n]``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from toolchain.layers import PRelu


def pack(layer: PRelu) -> Packed:
    return Packed(arrays=[np.broadcast_to(layer.alpha, (layer.size,)).astype(np.float32)])


@njit(**JIT)
def prelu(alpha, x, y):
    for i in range(x.shape[0]):
        y[i] = x[i] if x[i] >= np.float32(0) else x[i] * alpha[i]
