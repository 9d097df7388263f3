"""batchnorm (inference): ``y = gamma (x - mean) / sqrt(var + eps) + beta``, per feature.

As RTNeural does (batchnorm.tpp), ``gamma / sqrt(var + eps)`` is folded once at load time into a
float32 ``scale``, and the frame computes ``scale * (x - mean) + beta`` -- the same roundings.
Engine layout: ``scale [n], mean [n], beta [n]``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from toolchain.layers import BatchNorm


def pack(layer: BatchNorm) -> Packed:
    scale = layer.gamma / np.sqrt(layer.var + np.float32(layer.epsilon), dtype=np.float32)
    return Packed(arrays=[scale.astype(np.float32), layer.mean, layer.beta])


@njit(**JIT)
def batchnorm(scale, mean, beta, x, y):
    for i in range(x.shape[0]):
        y[i] = scale[i] * (x[i] - mean[i]) + beta[i]
