"""INT8 kernels: dense, lstm, gru, conv1d and conv2d with int8 weight matrices (``quant.int8_json``).

    y[r] = scale[r] * sum_c q[r, c] * x[c] + bias[r]

Weights are int8 with one float32 scale per row (per output unit, per LSTM/GRU gate row); the
activations, biases, state and the accumulation stay **float32** (each int8 weight is widened to
float32 and multiply-added into a float32 sum; the scale is applied once per row). So an INT8 layer
computes what the float layer with weights ``q * scale`` computes, up to float rounding order, and
needs a quarter of the weight memory. (Integer accumulation would need quantized activations, which
RTNeural-style streaming layers do not have.)

Engine layouts (``pack_*``): dense ``q [out, in]``, ``scales``, ``bias [out]``; lstm ``q_ih [4H, in]``,
``q_hh [4H, H]``, ``scales`` (ih's, then hh's), ``bias [4H]``; gru ``q_ih [3H, in]``, ``q_hh [3H, H]``,
``scales``, ``biases [2, 3H]``; conv1d ``q [out, K * in/groups]`` (taps gathered as in ``conv1d``),
``scale [out]``, ``bias [out]``; conv2d ``q [out, Kt, Kf * in]`` (as ``conv2d``), ``scale [out]``,
``bias [out]``, the float kernel's geometry. The gate math is the float kernels' own (``lstm_cell``,
``gru_cell``).

Compact forms (dense, lstm, gru), chosen at pack time only where they are EXACT, so the engine computes
the same numbers either way: a matrix whose row scales are all equal (quantized per tensor, e.g. by
``kelly-tc quantize --auto``) stores ONE scale, one whose scales repeat in groups of consecutive rows (``--auto``'s
grouped scales) one per group (the table's PARAM0/PARAM1: rows per stored scale); a bias
that is exactly ``q * s`` for int8 ``q`` and one float32 ``s`` (``--quantize-biases``/``--auto``) is stored as
int8 with ``s`` after the weight scales (PARAM2 = 1), one on a 16-bit grid (``--auto`` where int8 rounds too
coarsely) as int16 byte pairs in the same place (PARAM2 = 2). On a 40-unit model the per-row scales and float
biases are ~10% of the INT8 bytes.
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


def compact_scale(scale: np.ndarray) -> tuple[np.ndarray, int]:
    """(the scales to store, rows per stored scale): the largest group of consecutive rows that share one
    scale everywhere -- all rows (quantized per tensor), a gate block or a few rows (``--auto``'s grouped
    scales, ``quant/granularity.py``) -- else one scale per row. Exact: the kernels read ``scale[row // group]``."""
    scale = f32(scale)
    rows = scale.shape[0]
    for group in range(rows, 1, -1):
        if rows % group == 0:
            blocks = scale.reshape(-1, group)
            if np.all(blocks == blocks[:, :1]):
                return np.ascontiguousarray(blocks[:, 0]), group
    return scale, 1


def exact_integers(bias: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.float32] | None:
    """(q, scale s) when ``bias`` is exactly ``q * s`` in float32 for one float32 ``s`` and integers ``q`` on a
    ``bits``-bit grid (a bias quantized per tensor: int8, or 16-bit by ``--auto``), else None. ``q`` is int8
    or int16."""
    from quant.int8 import quantize_symmetric

    bias = f32(bias)
    q, s = quantize_symmetric(bias, None, bits=bits)
    s = np.float32(s)
    if not np.array_equal(q.astype(np.float32) * s, bias):
        return None
    return (_i8(q), s) if bits == 8 else (np.ascontiguousarray(q, dtype=np.int16), s)


def _with_biases(weight_scales: list[np.ndarray], biases: list[np.ndarray], int8_arrays: list[np.ndarray]) -> tuple[list, int]:
    """The float arrays of a compact layer (scales, then float biases) and the bias form (0 float, 1 int8,
    2 int16); integer biases (all of the layer's, or none) are appended to ``int8_arrays`` (int16 ones as
    their byte pairs) and their scales to the scale array."""
    for bits, form in ((8, 1), (16, 2)):
        exact = [exact_integers(bias, bits) for bias in biases]
        if len(biases) > 1 and not all(e is not None for e in exact):  # one tensor split in two (a GRU's B =
            joint = exact_integers(np.concatenate([f32(b) for b in biases]), bits)  # [Wb, Rb]): its one scale
            if joint is not None:
                values, scale = joint
                exact = [(part, scale) for part in np.split(values, np.cumsum([b.size for b in biases])[:-1])]
        if all(e is not None for e in exact):
            values = np.concatenate([q for q, _ in exact])
            int8_arrays.append(values if bits == 8 else values.view(np.int8))
            return [np.concatenate(weight_scales + [np.array([s for _, s in exact], np.float32)])], form
    return [np.concatenate(weight_scales), f32(np.concatenate([f32(b) for b in biases]))], 0


def pack_dense(layer, arrays) -> Packed:
    scale, group = compact_scale(arrays["weight"].scale)
    int8_arrays = [_i8(arrays["weight"].values)]
    floats, int8_bias = _with_biases([scale], [layer.bias], int8_arrays)
    return Packed(arrays=floats, int8_arrays=int8_arrays, params=(group, 0, int8_bias))


def pack_lstm(layer, arrays) -> Packed:
    hidden = layer.hidden_size
    ih, hh = arrays["weight_ih"], arrays["weight_hh"]
    (scale_ih, group_ih), (scale_hh, group_hh) = compact_scale(ih.scale), compact_scale(hh.scale)
    int8_arrays = [_i8(ih.values), _i8(hh.values)]
    floats, int8_bias = _with_biases([scale_ih, scale_hh], [layer.bias], int8_arrays)
    return Packed(arrays=floats, int8_arrays=int8_arrays, state_size=2 * hidden, work_size=4 * hidden,  # h, c; gates
                  params=(group_ih, group_hh, int8_bias))


def pack_gru(layer, arrays) -> Packed:
    hidden = layer.hidden_size
    ih, hh = arrays["weight_ih"], arrays["weight_hh"]
    (scale_ih, group_ih), (scale_hh, group_hh) = compact_scale(ih.scale), compact_scale(hh.scale)
    int8_arrays = [_i8(ih.values), _i8(hh.values)]
    floats, int8_bias = _with_biases([scale_ih, scale_hh], [layer.bias_ih, layer.bias_hh], int8_arrays)
    return Packed(arrays=floats, int8_arrays=int8_arrays, state_size=hidden, work_size=6 * hidden,
                  params=(group_ih, group_hh, int8_bias))


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
def matvec_int8(values, scale, group, x, y, accumulate):
    """``y = scale * (values @ x)`` (``+=`` when ``accumulate``), four rows at a time as ``dense.matvec_bias``;
    row ``r`` uses ``scale[r // group]`` (``group``: rows per stored scale, 1 = a scale per row)."""
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
        store(y, row, total0 * scale[row // group], accumulate)
        store(y, row + 1, total1 * scale[(row + 1) // group], accumulate)
        store(y, row + 2, total2 * scale[(row + 2) // group], accumulate)
        store(y, row + 3, total3 * scale[(row + 3) // group], accumulate)
    for row in range(blocked, rows):
        total = np.float32(0)
        for col in range(cols):
            total += np.float32(values[row, col]) * x[col]
        store(y, row, total * scale[row // group], accumulate)


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
def add_bias_int8(bias_q, bias_scale, y):
    for row in range(y.shape[0]):
        y[row] += np.float32(bias_q[row]) * bias_scale


@njit(**JIT, inline="always")
def add_any_bias(bias, bias_q, bias_scale, int8_bias, y):
    """The float ``bias``, or (``int8_bias``) ``bias_q * bias_scale`` computed in float32 as the dequantized float bias was."""
    if int8_bias:
        add_bias_int8(bias_q, bias_scale, y)
    else:
        add_bias(bias, y)


@njit(**JIT)
def dense_int8(values, scale, group, bias, bias_q, bias_scale, int8_bias, x, y):
    """``scale``: the stored weight scales (``group`` rows each); the bias float, or int8 with ``bias_scale``."""
    matvec_int8(values, scale, group, x, y, False)
    add_any_bias(bias, bias_q, bias_scale, int8_bias, y)


@njit(**JIT)
def lstm_int8(values_ih, values_hh, scale_ih, group_ih, scale_hh, group_hh, bias, bias_q, bias_scale, int8_bias,
              x, h, c, gates, y):
    """One frame; state ``h``, ``c`` [H]; work ``gates`` [4H]."""
    matvec_int8(values_ih, scale_ih, group_ih, x, gates, False)
    matvec_int8(values_hh, scale_hh, group_hh, h, gates, True)
    add_any_bias(bias, bias_q, bias_scale, int8_bias, gates)
    lstm_cell(gates, c, h, y)


@njit(**JIT)
def gru_int8(values_ih, values_hh, scale_ih, group_ih, scale_hh, group_hh, bias_ih, bias_hh, bias_q_ih, bias_q_hh,
             bias_scale_ih, bias_scale_hh, int8_bias, x, h, input_part, hidden_part, y):
    """One frame; state ``h`` [H]; work ``input_part``, ``hidden_part`` [3H]."""
    matvec_int8(values_ih, scale_ih, group_ih, x, input_part, False)
    add_any_bias(bias_ih, bias_q_ih, bias_scale_ih, int8_bias, input_part)
    matvec_int8(values_hh, scale_hh, group_hh, h, hidden_part, False)
    add_any_bias(bias_hh, bias_q_hh, bias_scale_hh, int8_bias, hidden_part)
    gru_cell(input_part, hidden_part, h, y)


@njit(**JIT)
def conv1d_int8(values, scale, bias, history, cursor, dilation, groups, x, y, window):
    """One frame, as ``conv1d.conv1d`` (ring buffer of past frames, taps gathered per group) with int8 weights."""
    slots = history.shape[0]
    group_inputs, group_outputs = x.shape[0] // groups, y.shape[0] // groups
    taps = window.shape[0] // group_inputs
    current = cursor[0]
    for i in range(x.shape[0]):  # element loops: a slice assignment may copy through a temporary
        history[current, i] = x[i]
    for group in range(groups):
        first_input, first_output = group * group_inputs, group * group_outputs
        for k in range(taps):  # tap K-1 is the current frame, tap k the frame (K-1-k)*d back
            slot = (current - (taps - 1 - k) * dilation) % slots
            for i in range(group_inputs):
                window[k * group_inputs + i] = history[slot, first_input + i]
        outputs = slice(first_output, first_output + group_outputs)
        matvec_int8(values[outputs], scale[outputs], 1, window, y[outputs], False)
    add_bias(bias, y)
    cursor[0] = (current + 1) % slots


@njit(**JIT)
def conv2d_int8(values, scale, bias, history, cursor, dilation, stride, pad_left, filters_in, x, y):
    """One frame, as ``conv2d.conv2d`` (ring buffer of input frames, clipped feature windows; the same frame
    routine) with int8 weights ``values [Co, Kt, Kf * Ci]`` and one scale per output filter."""
    conv2d.conv2d_frame(values, scale, True, bias, history, cursor, dilation, stride, pad_left, filters_in, x, y)
