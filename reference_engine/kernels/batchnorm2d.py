"""batchnorm2d (inference): ``batchnorm`` per channel of a feature-major ``[features x channels]`` frame.

As RTNeural's ``BatchNorm2DLayer`` does, ``gamma / sqrt(var + eps)`` is folded at load into a float32
``scale`` per channel and the frame computes ``scale[c] * (x[f * C + c] - mean[c]) + beta[c]``.
Engine layout: ``scale [C], mean [C], beta [C]``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from toolchain.layers import BatchNorm2D


def pack(layer: BatchNorm2D) -> Packed:
    scale = layer.gamma / np.sqrt(layer.var + np.float32(layer.epsilon), dtype=np.float32)
    return Packed(arrays=[scale.astype(np.float32), layer.mean, layer.beta], params=(layer.channels,))


@njit(**JIT)
def batchnorm2d(scale, mean, beta, x, y):
    channels = scale.shape[0]
    for f in range(x.shape[0] // channels):
        for c in range(channels):
            i = f * channels + c
            y[i] = scale[c] * (x[i] - mean[c]) + beta[c]
