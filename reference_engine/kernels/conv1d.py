"""conv1d: RTNeural's streaming, causal, stride-1 ``Conv1D::forward`` (dilation and groups).

    y[o] = b[o] + sum_k sum_i W[o, k, i] * x_{t - (K-1-k) d}[g(o) * in_g + i]

Tap ``K-1`` multiplies the current frame, tap 0 the frame ``(K-1) d`` back; frames before the first
call after ``reset()`` are zero. The layer keeps the last ``(K-1) d + 1`` input frames in a ring
buffer (state ``[(K-1) d + 1, in]``) plus one integer cursor: the slot the current frame goes to.

Engine layout: ``weight [out, K, in/groups]`` (canonical is ``[out, in/groups, K]``): the innermost
loop then runs over contiguous channels both in the weights and in the ring-buffer row.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from toolchain.layers import Conv1D, f32


def pack(layer: Conv1D) -> Packed:
    history = (layer.kernel_size - 1) * layer.dilation + 1
    return Packed(arrays=[f32(layer.weight.transpose(0, 2, 1)), layer.bias],
                  state_size=history * layer.in_size, cursors=1,
                  params=(layer.kernel_size, layer.dilation, layer.groups))


@njit(**JIT)
def conv1d(weight, bias, history, cursor, dilation, groups, x, y):
    """One frame: ``weight [out, K, in_g]``; state ``history [(K-1)d+1, in]`` and ``cursor [1]``."""
    slots = history.shape[0]
    outputs, taps, group_inputs = weight.shape
    outputs_per_group = outputs // groups
    current = cursor[0]
    for i in range(x.shape[0]):
        history[current, i] = x[i]
    for o in range(outputs):
        y[o] = bias[o]
    for k in range(taps):  # taps outermost: one ring-buffer index computation per tap, not per output
        slot = (current - (taps - 1 - k) * dilation + slots) % slots
        for group in range(groups):
            first_input = group * group_inputs
            for o in range(group * outputs_per_group, (group + 1) * outputs_per_group):
                total = np.float32(0)
                for i in range(group_inputs):
                    total += weight[o, k, i] * history[slot, first_input + i]
                y[o] += total
    cursor[0] = (current + 1) % slots
