"""Activation functions, applied in place, exactly as RTNeural's C++ computes them in float32.

RTNeural facts reproduced here (RTNeural/activation/activation.h, maths/maths_stl.h):
- ``sigmoid(x) = 1 / (1 + exp(-x))``; ``tanh`` is ``std::tanh``.
- ``relu(x) = std::max(0, x)``, which returns 0 for NaN (``max(a, b)`` is ``a < b ? b : a``).
- ``elu(x) = x > 0 ? x : exp(x) - 1`` (alpha fixed at 1 by the JSON loader).
- ``softmax`` does NOT subtract the maximum before ``exp``: inputs above ~88 overflow to Inf and the
  result is NaN. We reproduce that (a stable softmax would disagree with the deployed plugin).

exp, tanh and sigmoid come from ``maths.py`` (vectorisable float32 versions, within ~2 ulp of libm's).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT
from reference_engine.kernels.maths import exp32, sigmoid32, tanh32

#: Activation codes in the program table; the names are RTNeural's ("" = linear).
NONE, TANH, RELU, SIGMOID, SOFTMAX, ELU = range(6)
CODES = {"": NONE, "tanh": TANH, "relu": RELU, "sigmoid": SIGMOID, "softmax": SOFTMAX, "elu": ELU}


@njit(**JIT)
def softmax(values):
    """In place; no max subtraction, on purpose (RTNeural's behaviour, see the module docstring)."""
    total = np.float32(0)
    for i in range(values.shape[0]):
        values[i] = exp32(values[i])
        total += values[i]
    reciprocal = np.float32(1) / total
    for i in range(values.shape[0]):
        values[i] *= reciprocal


@njit(**JIT)
def activation(code, values):
    """Apply activation ``code`` to ``values`` (float32 [n]) in place."""
    if code == TANH:
        for i in range(values.shape[0]):
            values[i] = tanh32(values[i])
    elif code == RELU:
        for i in range(values.shape[0]):
            values[i] = values[i] if values[i] > np.float32(0) else np.float32(0)
    elif code == SIGMOID:
        for i in range(values.shape[0]):
            values[i] = sigmoid32(values[i])
    elif code == SOFTMAX:
        softmax(values)
    elif code == ELU:
        for i in range(values.shape[0]):
            if not values[i] > np.float32(0):
                values[i] = exp32(values[i]) - np.float32(1)


def pack(layer) -> "Packed":
    """A standalone activation layer has no weights; its function is the table's activation code."""
    from reference_engine.kernels import Packed

    return Packed(arrays=[])
