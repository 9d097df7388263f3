"""conv2d: RTNeural's streaming ``Conv2D::forward`` -- causal over time, "valid"/"same" over features.

A frame is a 2-D map flattened feature-major, ``x[f * Ci + c]`` (RTNeural's layout). Per frame:

    y[fo * Co + o] = b[o] + sum_kt sum_kf sum_c W[o, c, kt, kf] * x_{t - (Kt-1-kt) d}[(fo s - pad_left + kf) * Ci + c]

where taps outside ``0 <= fo s - pad_left + kf < Fi`` read zeros ("same" padding, TensorFlow's rule,
``toolchain.layers.conv2d_pads``) and frames before the first call after ``reset()`` are zero.
RTNeural keeps ``(Kt-1) d + 1`` partial OUTPUT sums; we keep the last ``(Kt-1) d + 1`` INPUT frames in a
ring buffer (as ``conv1d.py`` does) -- the same function, summed in another order (float32 rounding).

Engine layout: ``weight [Co, Kt, Kf * Ci]`` (index ``kf * Ci + c``): because a frame is feature-major,
the ``Kf`` features under the kernel are ONE contiguous run of the frame, so each (output, tap) is one
dot product over a contiguous slice, clipped at the frame's edges.
The geometry that does not fit the table's three PARAM fields (``Ci``, ``Kf``, ``pad_left``, ``Co``) travels as
a small float32 array (exact: every value is below 2**24).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed
from toolchain.layers import Conv2D, conv2d_pads, f32


def pack(layer: Conv2D) -> Packed:
    history = (layer.kernel_size_time - 1) * layer.dilation + 1
    pad_left, _ = conv2d_pads(layer.num_features_in, layer.kernel_size_feature, layer.stride, layer.valid_pad)
    geometry = np.array([layer.filters_in, layer.kernel_size_feature, pad_left, layer.filters_out], np.float32)
    return Packed(arrays=[f32(layer.weight.transpose(0, 2, 3, 1)), layer.bias, geometry],
                  state_size=history * layer.in_size, cursors=1,
                  params=(layer.kernel_size_time, layer.dilation, layer.stride))


@njit(**JIT)
def conv2d(weight, bias, history, cursor, dilation, stride, pad_left, filters_in, x, y):
    """One frame: ``weight [Co, Kt, Kf * Ci]``; state ``history [(Kt-1)d+1, Fi * Ci]``, ``cursor [1]``."""
    conv2d_frame(weight, bias, False, bias, history, cursor, dilation, stride, pad_left, filters_in, x, y)


@njit(**JIT, inline="always")
def conv2d_frame(weight, scale, scaled, bias, history, cursor, dilation, stride, pad_left, filters_in, x, y):
    """The frame of :func:`conv2d` and of the INT8 ``kernels/int8.py::conv2d_int8``: ``weight`` float32 or
    int8 (each weight widened to float32 before its multiply-add, a no-op for float32); when ``scaled``, filter
    ``o``'s sum is multiplied by ``scale[o]`` before the bias (one scale per output filter)."""
    slots = history.shape[0]
    filters_out, taps, window = weight.shape
    kernel_features = window // filters_in
    features_in = x.shape[0] // filters_in
    features_out = y.shape[0] // filters_out
    current = cursor[0]
    for i in range(x.shape[0]):
        history[current, i] = x[i]
    for fo in range(features_out):
        start = fo * stride - pad_left  # first input feature under the kernel (negative: left zeros)
        first = max(0, -start) * filters_in
        last = min(kernel_features, features_in - start) * filters_in
        offset = start * filters_in
        for o in range(filters_out):
            total = np.float32(0)
            for kt in range(taps):  # tap kt reads the frame (Kt-1-kt)*d back; tap Kt-1 is the current frame
                slot = current - (taps - 1 - kt) * dilation
                if slot < 0:
                    slot += slots
                for j in range(first, last):
                    total += np.float32(weight[o, kt, j]) * history[slot, offset + j]
            y[fo * filters_out + o] = (total * scale[o] if scaled else total) + bias[o]
    cursor[0] = current + 1 if current + 1 < slots else 0
