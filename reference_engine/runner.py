"""The fused whole-model frame: one ``@njit`` call runs every layer of a :class:`~reference_engine.program.Program`.

``run_frame`` walks the opcode table and calls each layer's kernel on views of the packed buffers
(slicing and reshaping a contiguous buffer makes a view: no allocation). ``run_block`` does the same
for a block of N frames in one call (in and out through preallocated buffers, state carried), so a
plugin's audio callback -- or a whole file, block after block -- costs one Python->Numba transition per block.

Why the buffers travel in one :class:`Buffers` struct: numba wraps every numpy array passed from
Python in a freshly malloc'ed MemInfo (one per array argument per call, measured with NUMBA_NRT_STATS).
A StructRef built once per engine crosses the boundary without that, so ``run_frame(buffers)`` -- after
the frame has been copied into ``buffers.frame`` by numpy -- allocates nothing at all.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit
from numba.core import types
from numba.experimental import structref

from reference_engine.kernels import JIT, JIT_STRUCT
from reference_engine.kernels.activation import activation
from reference_engine.kernels.batchnorm import batchnorm
from reference_engine.kernels.batchnorm2d import batchnorm2d
from reference_engine.kernels.conv1d import conv1d
from reference_engine.kernels.conv2d import conv2d
from reference_engine.kernels.dense import dense
from reference_engine.kernels.gru import gru
from reference_engine.kernels.int8 import conv1d_int8, conv2d_int8, dense_int8, gru_int8, lstm_int8
from reference_engine.kernels.lstm import lstm
from reference_engine.kernels.merge import ADD, SLICE, merge
from reference_engine.kernels.prelu import prelu
from reference_engine.program import (
    ACTIVATION, ACTIVATION_LAYER, ARRAY0, ARRAY1, ARRAY2, ARRAY3, BATCHNORM, BATCHNORM2D, CONV1D, CONV1D_INT8, CONV2D, CONV2D_INT8,
    CURSOR, DENSE, DENSE_INT8, DST, GRU, GRU_INT8, IN, LSTM, LSTM_INT8, OP, OUT, PARAM0, PARAM1, PARAM2, PRELU, SRC, SRC2, STATE,
)


@structref.register
class BuffersType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


class Buffers(structref.StructRefProxy):
    """Everything a frame touches: ``table`` (int64 [layers, FIELDS]), ``weights``, ``state``, ``cursors``,
    ``scratch`` ([slots, width]), ``work``, ``frame`` (the input row, written by the caller) and ``qweights``
    (int8 matrices of INT8 layers)."""


BUFFER_FIELDS = ("table", "weights", "state", "cursors", "scratch", "work", "frame", "qweights")
structref.define_proxy(Buffers, BuffersType, list(BUFFER_FIELDS))


@structref.register
class BlockType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(kind)) for name, kind in fields)


class Block(structref.StructRefProxy):
    """A block's frames: ``inputs`` [capacity, in] (written by the caller), ``outputs`` [capacity, out]
    (written by :func:`run_block`), and ``output_row``: where a frame's output is left in ``scratch``.
    Kept apart from :class:`Buffers` so the per-frame program does not change to add blocks."""


BLOCK_FIELDS = ("inputs", "outputs", "output_row")
structref.define_proxy(Block, BlockType, list(BLOCK_FIELDS))


@njit(**JIT, inline="always")
def vector(buffer, offset, size):
    return buffer[offset:offset + size]


@njit(**JIT, inline="always")
def int16_vector(qweights, offset, size):
    """``size`` int16 values stored as byte pairs in the int8 buffer from ``offset`` (even: arrays there start
    on 64-byte lines)."""
    return qweights[offset:offset + 2 * size].view(np.int16)


@njit(**JIT, inline="always")
def matrix(buffer, offset, rows, cols):
    return buffer[offset:offset + rows * cols].reshape((rows, cols))


@njit(**JIT)
def run_layer(row, weights, state, cursors, work, x, y, qweights):
    """Run the layer described by table ``row`` from ``x`` [IN] into ``y`` [OUT]."""
    op, inputs, outputs = row[OP], row[IN], row[OUT]
    if op == CONV2D or op == BATCHNORM2D or op == CONV2D_INT8:
        run_2d_layer(row, weights, state, cursors, x, y, qweights)
    elif op >= DENSE_INT8:
        run_int8_layer(row, weights, state, cursors, work, x, y, qweights)
    elif op == DENSE:
        dense(matrix(weights, row[ARRAY0], outputs, inputs), vector(weights, row[ARRAY1], outputs), x, y)
    elif op == LSTM:
        hidden = outputs
        columns = row[PARAM0] != 0  # the matrix is stored transposed (kernels/dense.py: use_columns)
        weight = (matrix(weights, row[ARRAY0], inputs + hidden, 4 * hidden) if columns
                  else matrix(weights, row[ARRAY0], 4 * hidden, inputs + hidden))
        lstm(weight, vector(weights, row[ARRAY1], 4 * hidden), x,
             vector(state, row[STATE], hidden), vector(state, row[STATE] + hidden, hidden),
             vector(work, 0, inputs + hidden), vector(work, inputs + hidden, 4 * hidden), y, columns)
    elif op == GRU:
        hidden = outputs
        columns_ih, columns_hh = row[PARAM0] != 0, row[PARAM1] != 0
        weight_ih = (matrix(weights, row[ARRAY0], inputs, 3 * hidden) if columns_ih
                     else matrix(weights, row[ARRAY0], 3 * hidden, inputs))
        weight_hh = (matrix(weights, row[ARRAY1], hidden, 3 * hidden) if columns_hh
                     else matrix(weights, row[ARRAY1], 3 * hidden, hidden))
        gru(weight_ih, weight_hh, vector(weights, row[ARRAY2], 3 * hidden), vector(weights, row[ARRAY3], 3 * hidden), x,
            vector(state, row[STATE], hidden), vector(work, 0, 3 * hidden), vector(work, 3 * hidden, 3 * hidden), y,
            columns_ih, columns_hh)
    elif op == CONV1D:
        taps, dilation, groups = row[PARAM0], row[PARAM1], row[PARAM2]
        window = taps * (inputs // groups)
        history = (taps - 1) * dilation + 1
        conv1d(matrix(weights, row[ARRAY0], outputs, window), vector(weights, row[ARRAY1], outputs),
               matrix(state, row[STATE], history, inputs), cursors[row[CURSOR]:row[CURSOR] + 1], dilation, groups,
               x, y, vector(work, 0, window))
    elif op == BATCHNORM:
        batchnorm(vector(weights, row[ARRAY0], inputs), vector(weights, row[ARRAY1], inputs),
                  vector(weights, row[ARRAY2], inputs), x, y)
    elif op == PRELU:
        prelu(vector(weights, row[ARRAY0], inputs), x, y)
    elif op == ACTIVATION_LAYER:
        for i in range(inputs):
            y[i] = x[i]
    activation(row[ACTIVATION], y)


@njit(**JIT)
def run_2d_layer(row, weights, state, cursors, x, y, qweights):
    """conv2d (float and INT8) and batchnorm2d (``kernels/conv2d.py``, ``kernels/int8.py``,
    ``kernels/batchnorm2d.py``); the caller applies the activation."""
    op, inputs = row[OP], row[IN]
    if op == CONV2D_INT8:  # ARRAY0: int8 values in qweights; ARRAY1 scale, ARRAY2 bias, ARRAY3 geometry
        taps, dilation, stride = row[PARAM0], row[PARAM1], row[PARAM2]
        geometry = weights[row[ARRAY3]:row[ARRAY3] + 4]
        filters_in, kernel_features, pad_left, filters_out = int(geometry[0]), int(geometry[1]), int(geometry[2]), int(geometry[3])
        window = kernel_features * filters_in
        history = (taps - 1) * dilation + 1
        conv2d_int8(qweights[row[ARRAY0]:row[ARRAY0] + filters_out * taps * window].reshape((filters_out, taps, window)),
                    vector(weights, row[ARRAY1], filters_out), vector(weights, row[ARRAY2], filters_out),
                    matrix(state, row[STATE], history, inputs), cursors[row[CURSOR]:row[CURSOR] + 1], dilation, stride,
                    pad_left, filters_in, x, y)
    elif op == CONV2D:
        taps, dilation, stride = row[PARAM0], row[PARAM1], row[PARAM2]
        geometry = weights[row[ARRAY2]:row[ARRAY2] + 4]  # [Ci, Kf, pad_left, Co], exact small integers
        filters_in, kernel_features, pad_left, filters_out = int(geometry[0]), int(geometry[1]), int(geometry[2]), int(geometry[3])
        window = kernel_features * filters_in
        history = (taps - 1) * dilation + 1
        conv2d(weights[row[ARRAY0]:row[ARRAY0] + filters_out * taps * window].reshape((filters_out, taps, window)),
               vector(weights, row[ARRAY1], filters_out), matrix(state, row[STATE], history, inputs),
               cursors[row[CURSOR]:row[CURSOR] + 1], dilation, stride, pad_left, filters_in, x, y)
    else:
        channels = row[PARAM0]
        batchnorm2d(vector(weights, row[ARRAY0], channels), vector(weights, row[ARRAY1], channels),
                    vector(weights, row[ARRAY2], channels), x, y)


@njit(**JIT)
def run_int8_layer(row, weights, state, cursors, work, x, y, qweights):
    """The INT8 layers (``kernels/int8.py``): ARRAY fields list the int8 arrays (in ``qweights``) first.
    The caller applies the activation."""
    op, inputs, outputs = row[OP], row[IN], row[OUT]
    # Compact layers (kernels/int8.py): PARAM0/PARAM1 rows per stored scale, PARAM2 = 1 for int8 biases, 2 for
    # biases on a 16-bit grid (int16 pairs of qweights bytes); the integer biases follow the int8 matrices, and
    # their scales follow the weight scales. (Two calls where the bias type differs: numba types each view.)
    int8_bias, wide = row[PARAM2] != 0, row[PARAM2] == 2
    if op == DENSE_INT8:
        group = row[PARAM0]
        scales = outputs // group
        if int8_bias:  # ARRAY0 q, ARRAY1 bias q (int8 or int16), ARRAY2 scales + bias scale
            scale = vector(weights, row[ARRAY2], scales + 1)
            values = matrix(qweights, row[ARRAY0], outputs, inputs)
            if wide:
                dense_int8(values, scale[:scales], group, scale[:outputs], int16_vector(qweights, row[ARRAY1], outputs),
                           scale[scales], True, x, y)
            else:
                dense_int8(values, scale[:scales], group, scale[:outputs], vector(qweights, row[ARRAY1], outputs),
                           scale[scales], True, x, y)
        else:  # ARRAY0 q, ARRAY1 scales, ARRAY2 bias
            scale = vector(weights, row[ARRAY1], scales)
            dense_int8(matrix(qweights, row[ARRAY0], outputs, inputs), scale, group, vector(weights, row[ARRAY2], outputs),
                       vector(qweights, row[ARRAY0], outputs), np.float32(0), False, x, y)
    elif op == LSTM_INT8:
        hidden = outputs
        group_ih, group_hh = row[PARAM0], row[PARAM1]
        count_ih, count_hh = 4 * hidden // group_ih, 4 * hidden // group_hh
        values_ih, values_hh = matrix(qweights, row[ARRAY0], 4 * hidden, inputs), matrix(qweights, row[ARRAY1], 4 * hidden, hidden)
        h, c = vector(state, row[STATE], hidden), vector(state, row[STATE] + hidden, hidden)
        if int8_bias:  # ARRAY2 bias q, ARRAY3 scales (ih, hh) + bias scale
            scale = vector(weights, row[ARRAY3], count_ih + count_hh + 1)
            if wide:
                lstm_int8(values_ih, values_hh, scale[:count_ih], group_ih, scale[count_ih:count_ih + count_hh], group_hh,
                          scale[:4 * hidden], int16_vector(qweights, row[ARRAY2], 4 * hidden), scale[count_ih + count_hh],
                          True, x, h, c, vector(work, 0, 4 * hidden), y)
            else:
                lstm_int8(values_ih, values_hh, scale[:count_ih], group_ih, scale[count_ih:count_ih + count_hh], group_hh,
                          scale[:4 * hidden], vector(qweights, row[ARRAY2], 4 * hidden), scale[count_ih + count_hh],
                          True, x, h, c, vector(work, 0, 4 * hidden), y)
        else:  # ARRAY2 scales (ih, hh), ARRAY3 bias
            scale = vector(weights, row[ARRAY2], count_ih + count_hh)
            lstm_int8(values_ih, values_hh, scale[:count_ih], group_ih, scale[count_ih:], group_hh,
                      vector(weights, row[ARRAY3], 4 * hidden), vector(qweights, row[ARRAY0], 4 * hidden), np.float32(0),
                      False, x, h, c, vector(work, 0, 4 * hidden), y)
    elif op == GRU_INT8:
        hidden = outputs
        group_ih, group_hh = row[PARAM0], row[PARAM1]
        count_ih, count_hh = 3 * hidden // group_ih, 3 * hidden // group_hh
        values_ih, values_hh = matrix(qweights, row[ARRAY0], 3 * hidden, inputs), matrix(qweights, row[ARRAY1], 3 * hidden, hidden)
        if int8_bias:  # ARRAY2 biases q [2, 3H], ARRAY3 scales (ih, hh) + the two bias scales
            scale = vector(weights, row[ARRAY3], count_ih + count_hh + 2)
            h = vector(state, row[STATE], hidden)
            if wide:
                biases_q16 = int16_vector(qweights, row[ARRAY2], 6 * hidden)
                gru_int8(values_ih, values_hh, scale[:count_ih], group_ih, scale[count_ih:count_ih + count_hh], group_hh,
                         scale[:3 * hidden], scale[:3 * hidden], biases_q16[:3 * hidden], biases_q16[3 * hidden:],
                         scale[count_ih + count_hh], scale[count_ih + count_hh + 1], True, x, h,
                         vector(work, 0, 3 * hidden), vector(work, 3 * hidden, 3 * hidden), y)
            else:
                biases_q = vector(qweights, row[ARRAY2], 6 * hidden)
                gru_int8(values_ih, values_hh, scale[:count_ih], group_ih, scale[count_ih:count_ih + count_hh], group_hh,
                         scale[:3 * hidden], scale[:3 * hidden], biases_q[:3 * hidden], biases_q[3 * hidden:],
                         scale[count_ih + count_hh], scale[count_ih + count_hh + 1], True, x, h,
                         vector(work, 0, 3 * hidden), vector(work, 3 * hidden, 3 * hidden), y)
        else:  # ARRAY2 scales (ih, hh), ARRAY3 biases [2, 3H]
            scale = vector(weights, row[ARRAY2], count_ih + count_hh)
            biases = vector(weights, row[ARRAY3], 6 * hidden)
            unused = vector(qweights, row[ARRAY0], 3 * hidden)
            gru_int8(values_ih, values_hh, scale[:count_ih], group_ih, scale[count_ih:], group_hh,
                     biases[:3 * hidden], biases[3 * hidden:], unused, unused, np.float32(0), np.float32(0), False,
                     x, vector(state, row[STATE], hidden), vector(work, 0, 3 * hidden), vector(work, 3 * hidden, 3 * hidden), y)
    elif op == CONV1D_INT8:
        taps, dilation, groups = row[PARAM0], row[PARAM1], row[PARAM2]
        window = taps * (inputs // groups)
        history = (taps - 1) * dilation + 1
        conv1d_int8(matrix(qweights, row[ARRAY0], outputs, window), vector(weights, row[ARRAY1], outputs),
                    vector(weights, row[ARRAY2], outputs), matrix(state, row[STATE], history, inputs),
                    cursors[row[CURSOR]:row[CURSOR] + 1], dilation, groups, x, y, vector(work, 0, window))


@njit(**JIT_STRUCT)
def run_frame(buffers):
    """One frame (``buffers.frame``, copied into slot 0) through every row, each reading scratch slots
    ``SRC`` (and ``SRC2``) and writing slot ``DST``; the output is left in the last row's ``DST`` slot."""
    frame_program(buffers.table, buffers.weights, buffers.state, buffers.cursors, buffers.scratch, buffers.work,
                  buffers.frame, buffers.qweights)


@njit(**JIT)
def frame_program(table, weights, state, cursors, scratch, work, frame, qweights):
    """:func:`run_frame` on the buffers taken out of the struct (a block takes them out once, not per frame:
    each field read of a struct is a reference-count round trip)."""
    for i in range(frame.shape[0]):
        scratch[0, i] = frame[i]
    for layer in range(table.shape[0]):
        row = table[layer]
        x, y = scratch[row[SRC], :row[IN]], scratch[row[DST], :row[OUT]]
        if ADD <= row[OP] <= SLICE:  # a merge row (kernels/merge.py)
            merge(row[OP], row[PARAM0], x, scratch[row[SRC2], :row[IN]], y)
        else:
            run_layer(row, weights, state, cursors, work, x, y, qweights)


@njit(**JIT_STRUCT)
def run_block(buffers, block, count):
    """The first ``count`` frames of ``block.inputs`` -> ``block.outputs``: one :func:`frame_program` per frame
    (the same compiled frame routine, so a block equals ``count`` single-frame calls to the bit)."""
    table, weights, state, cursors, work, qweights = (buffers.table, buffers.weights, buffers.state, buffers.cursors,
                                                      buffers.work, buffers.qweights)
    frame, scratch, inputs, outputs, row = buffers.frame, buffers.scratch, block.inputs, block.outputs, block.output_row
    for t in range(count):
        for i in range(frame.shape[0]):
            frame[i] = inputs[t, i]
        frame_program(table, weights, state, cursors, scratch, work, frame, qweights)
        for j in range(outputs.shape[1]):
            outputs[t, j] = scratch[row, j]


def block_entry(buffers: Buffers, block: Block):
    """``run_block`` compiled for these types, called without the dispatcher (as :func:`frame_entry`)."""
    entry = run_block.compile((numba.typeof(buffers), numba.typeof(block), types.intp))
    return entry if callable(entry) else run_block


def frame_entry(buffers: Buffers):
    """``run_frame`` compiled for ``buffers``' type (loaded from numba's disk cache when possible), as a
    callable that skips the dispatcher's per-call type resolution (measured: 0.58 us -> 0.14 us)."""
    entry = run_frame.compile((numba.typeof(buffers),))
    return entry if callable(entry) else run_frame


# ------------------------------------------------------------------------------------ cache guard
def _refresh_stale_caches() -> None:
    """Drop numba's on-disk caches of the engine when any engine source file changed.

    numba invalidates a cached function only when ITS OWN file changes, but the kernels are compiled
    into their callers (``run_frame`` embeds every kernel; ``lstm`` embeds ``maths``): after editing
    ``kernels/lstm.py`` a cached ``run_frame`` would silently keep the old LSTM. So we hash every
    source file of the engine and flush all engine caches when the hash moves.
    """
    import hashlib
    import sys
    from pathlib import Path

    from numba.core.dispatcher import Dispatcher

    from toolchain import atomic
    from toolchain.errors import InputError

    package = Path(__file__).resolve().parent
    sources = sorted(package.glob("kernels/*.py")) + [package / "program.py", package / "runner.py"]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()
    cache_path = getattr(getattr(run_frame, "_cache", None), "_cache_path", None)
    if cache_path is None:  # numba internals changed: caching still works, only this guard is off
        return
    stamp = Path(cache_path) / "reference_engine.sources.sha256"
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return
        for name, module in list(sys.modules.items()):
            if name.startswith("reference_engine."):
                for value in vars(module).values():
                    if isinstance(value, Dispatcher) and hasattr(value, "_cache"):
                        value._cache.flush()
        atomic.write_text(stamp, digest)  # atomic: engines starting in parallel never read half a stamp
    except (OSError, InputError):  # a read-only install (atomic reports OS errors as InputError): the
        pass  # cache cannot be stale relative to itself


_refresh_stale_caches()
