"""INT8 kernels: dense, lstm, gru, conv1d and conv2d with int8 weight matrices (``quant.int8_json``).

    y[r] = scale[r] * sum_c q[r, c] * x[c] + bias[r]

Weights are int8 with one float32 scale per row (per output unit, per LSTM/GRU gate row); the
activations, biases, state and the accumulation stay **float32** (each int8 weight is widened to
float32 and multiply-added into a float32 sum; the scale is applied once per row). So an INT8 layer
computes what the float layer with weights ``q * scale`` computes, up to float rounding order, and
needs a quarter of the weight memory. (Integer accumulation would need quantized activations, which
RTNeural-style streaming layers do not have.)

Engine layouts (``pack_*``): dense ``q [out, in]``, ``scale [out]``, ``bias [out]``; lstm ``q_ih [4H, in]``,
``q_hh [4H, H]``, ``scales [2, 4H]`` (ih, hh), ``bias [4H]``; gru ``q_ih [3H, in]``, ``q_hh [3H, H]``,
``scales [2, 3H]``, ``biases [2, 3H]``; conv1d ``q [out, K * in/groups]`` (taps gathered as in
``conv1d``), ``scale [out]``, ``bias [out]``; conv2d ``q [out, Kt, Kf * in]`` (as ``conv2d``), ``scale [out]``,
``bias [out]``, the float kernel's geometry. The gate math is the float kernels' own (``lstm_cell``,
``gru_cell``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from reference_engine.kernels import JIT, Packed, conv2d
from reference_engine.kernels.gru import gru_cell
from reference_engine.kernels.lstm import lstm_cell
from toolchain.layers import f32


def _i8(array) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.int8)


def pack_dense(layer, arrays) -> Packed:
    return Packed(arrays=[arrays["weight"].scale, layer.bias], int8_arrays=[_i8(arrays["weight"].values)])


def pack_lstm(layer, arrays) -> Packed:
    hidden = layer.hidden_size
    ih, hh = arrays["weight_ih"], arrays["weight_hh"]
    return Packed(arrays=[f32(np.stack([ih.scale, hh.scale])), layer.bias], int8_arrays=[_i8(ih.values), _i8(hh.values)],
                  state_size=2 * hidden, work_size=4 * hidden)  # h, c; gates


def pack_gru(layer, arrays) -> Packed:
    hidden = layer.hidden_size
    ih, hh = arrays["weight_ih"], arrays["weight_hh"]
    return Packed(arrays=[f32(np.stack([ih.scale, hh.scale])), f32(np.stack([layer.bias_ih, layer.bias_hh]))],
                  int8_arrays=[_i8(ih.values), _i8(hh.values)], state_size=hidden, work_size=6 * hidden)


def pack_conv1d(layer, arrays) -> Packed:
    history = (layer.kernel_size - 1) * layer.dilation + 1
    return Packed(arrays=[arrays["weight"].scale, layer.bias], int8_arrays=[_i8(arrays["weight"].values.transpose(0, 2, 1))],
                  state_size=history * layer.in_size, cursors=1, work_size=layer.kernel_size * (layer.in_size // layer.groups),
                  params=(layer.kernel_size, layer.dilation, layer.groups))


def pack_conv2d(layer, arrays) -> Packed:
    # q [Co, Kt, Kf * Ci] as the float conv2d kernel's weight; geometry as there (kernels/conv2d.py).
    floats = conv2d.pack(layer)
    return Packed(arrays=[arrays["weight"].scale, layer.bias, floats.arrays[2]],
                  int8_arrays=[_i8(arrays["weight"].values.transpose(0, 2, 3, 1))],
                  state_size=floats.state_size, cursors=1, params=floats.params)


PACKERS = {"dense": pack_dense, "lstm": pack_lstm, "gru": pack_gru, "conv1d": pack_conv1d, "conv2d": pack_conv2d}


@njit(**JIT)
def matvec_int8(values, scale, x, y, accumulate):
    """``y = scale * (values @ x)`` (``+=`` when ``accumulate``), four rows at a time as ``dense.matvec_bias``."""
    rows, cols = values.shape
    blocked = rows - rows % 4
    for row in range(0, blocked, 4):
        total0 = total1 = total2 = total3 = np.float32(0)
        for col in range(cols):
            value = x[col]
            total0 += np.float32(values[row, col]) * value
            total1 += np.float32(values[row + 1, col]) * value
            total2 += np.float32(values[row + 2, col]) * value
            total3 += np.float32(values[row + 3, col]) * value
        store(y, row, total0 * scale[row], accumulate)
        store(y, row + 1, total1 * scale[row + 1], accumulate)
        store(y, row + 2, total2 * scale[row + 2], accumulate)
        store(y, row + 3, total3 * scale[row + 3], accumulate)
    for row in range(blocked, rows):
        total = np.float32(0)
        for col in range(cols):
            total += np.float32(values[row, col]) * x[col]
        store(y, row, total * scale[row], accumulate)


@njit(**JIT, inline="always")
def store(y, row, value, accumulate):
    if accumulate:
        y[row] += value
    else:
        y[row] = value


@njit(**JIT)
def add_bias(bias, y):
    for row in range(y.shape[0]):
        y[row] += bias[row]


@njit(**JIT)
def dense_int8(values, scale, bias, x, y):
    matvec_int8(values, scale, x, y, False)
    add_bias(bias, y)


@njit(**JIT)
def lstm_int8(values_ih, values_hh, scales, bias, x, h, c, gates, y):
    """One frame; state ``h``, ``c`` [H]; work ``gates`` [4H]."""
    matvec_int8(values_ih, scales[0], x, gates, False)
    matvec_int8(values_hh, scales[1], h, gates, True)
    add_bias(bias, gates)
    lstm_cell(gates, c, h, y)


@njit(**JIT)
def gru_int8(values_ih, values_hh, scales, biases, x, h, input_part, hidden_part, y):
    """One frame; state ``h`` [H]; work ``input_part``, ``hidden_part`` [3H]."""
    matvec_int8(values_ih, scales[0], x, input_part, False)
    add_bias(biases[0], input_part)
    matvec_int8(values_hh, scales[1], h, hidden_part, False)
    add_bias(biases[1], hidden_part)
    gru_cell(input_part, hidden_part, h, y)


@njit(**JIT)
def conv1d_int8(values, scale, bias, history, cursor, dilation, groups, x, y, window):
    """One frame, as ``conv1d.conv1d`` (ring buffer of past frames, taps gathered per group) with int8 weights."""
    slots = history.shape[0]
    group_inputs, group_outputs = x.shape[0] // groups, y.shape[0] // groups
    taps = window.shape[0] // group_inputs
    current = cursor[0]
    history[current, :] = x
    for group in range(groups):
        first_input, first_output = group * group_inputs, group * group_outputs
        for k in range(taps):  # tap K-1 is the current frame, tap k the frame (K-1-k)*d back
            slot = (current - (taps - 1 - k) * dilation) % slots
            window[k * group_inputs:(k + 1) * group_inputs] = history[slot, first_input:first_input + group_inputs]
        outputs = slice(first_output, first_output + group_outputs)
        matvec_int8(values[outputs], scale[outputs], window, y[outputs], False)
    add_bias(bias, y)
    cursor[0] = (current + 1) % slots


@njit(**JIT)
def conv2d_int8(values, scale, bias, history, cursor, dilation, stride, pad_left, filters_in, x, y):
    """One frame, as ``conv2d.conv2d`` (ring buffer of input frames, clipped feature windows) with int8
    weights ``values [Co, Kt, Kf * Ci]`` and one scale per output filter."""
    slots = history.shape[0]
    filters_out, taps, window = values.shape
    kernel_features = window // filters_in
    features_in = x.shape[0] // filters_in
    features_out = y.shape[0] // filters_out
    current = cursor[0]
    for i in range(x.shape[0]):
        history[current, i] = x[i]
    for fo in range(features_out):
        start = fo * stride - pad_left
        first = max(0, -start) * filters_in
        last = min(kernel_features, features_in - start) * filters_in
        offset = start * filters_in
        for o in range(filters_out):
            total = np.float32(0)
            for kt in range(taps):
                slot = current - (taps - 1 - kt) * dilation
                if slot < 0:
                    slot += slots
                for j in range(first, last):
                    total += np.float32(values[o, kt, j]) * history[slot, offset + j]
            y[fo * filters_out + o] = total * scale[o] + bias[o]
    cursor[0] = current + 1 if current + 1 < slots else 0
