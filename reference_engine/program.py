"""The compiled form of a model: one opcode table, one weight buffer, and the sizes of state and scratch.

A :class:`toolchain.layers.Model` becomes a :class:`Program` that a single Numba function
(``reference_engine.runner.run_frame``) executes per frame, so a frame is ONE call from Python into
compiled code, with no Python per layer and no allocation.

Design (extend it by adding a row kind, not by changing the others):

``table``  int64 ``[rows, FIELDS]`` -- one row per layer (an n-ary add or a concat: one row per input):
    ``OP``          opcode (``DENSE``, ``LSTM``, ...; see ``OPCODES``)
    ``IN``, ``OUT`` the layer's input and output sizes
    ``ACTIVATION``  activation code applied to the output (``kernels.activation.CODES``; 0 = none)
    ``STATE``       offset of the layer's persistent floats in the ``state`` buffer
    ``CURSOR``      index of the layer's first persistent integer in the ``cursors`` buffer
    ``PARAM0..2``   kind-specific integers (conv1d: kernel size, dilation, groups)
    ``ARRAY0..3``   offsets of the layer's weight arrays in ``weights``, in the order its kernel
                    module's ``pack`` returned them (shapes follow from IN/OUT/PARAMs)
    ``SRC``, ``SRC2``, ``DST``  the scratch slots read (``SRC2``: a binary merge's second input) and written
``weights`` float32, every array starting on a 64-byte boundary (a cache line, one AVX-512 vector).
``state``   float32 (recurrent h/c, conv1d ring buffers) + ``cursors`` int64 (ring positions);
            ``reset()`` zeroes both.
``scratch`` float32 ``[slots, width]``: one slot per value alive at once, chosen at compile time by a
            liveness pass (:func:`assign_slots`): the frame is copied into slot 0, a layer writes a slot
            no live value holds, a value's slot is freed after its last reader. A stack uses two slots
            (ping-pong); the model output ends in slot ``output_row``.
            Merge rows (``kernels/merge.py``: ADD, SUB, MUL, COPY_INTO for concat, SLICE) route values.
``work``    float32 per-frame temporaries of the widest layer (LSTM [x; h] and gates, GRU partial
            sums, the conv1d tap window).
The engine (``model.py``) allocates state, cursors, scratch, work and a ``frame`` input row once and
hands all of them, with ``table`` and ``weights``, to compiled code as ONE ``runner.Buffers`` struct.

Adding a layer kind (e.g. an INT8 dense): give it an opcode here, a kernel module with ``pack`` and an
``@njit`` kernel in ``kernels/``, and one branch in ``runner.run_layer``. Arrays of another dtype get
their own buffer (a new ``Buffers`` field) and offsets in the free ``ARRAY`` fields; per-layer scales
can go in ``weights`` as float32 like any other array.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference_engine.kernels import activation, batchnorm, batchnorm2d, conv1d, conv2d, dense, gru, int8, lstm, merge, prelu
from toolchain.layers import Concat, Layer, Merge, Model, Slice

# Table columns.
OP, IN, OUT, ACTIVATION, STATE, CURSOR, PARAM0, PARAM1, PARAM2, ARRAY0, ARRAY1, ARRAY2, ARRAY3, SRC, SRC2, DST = range(16)
FIELDS = 16
MAX_ARRAYS = 4

# Opcodes (0 is never used, so a zeroed row cannot pass for a layer).
DENSE, LSTM, GRU, CONV1D, BATCHNORM, PRELU, ACTIVATION_LAYER = range(1, 8)
OPCODES = {"dense": DENSE, "lstm": LSTM, "gru": GRU, "conv1d": CONV1D,
           "batchnorm": BATCHNORM, "prelu": PRELU, "activation": ACTIVATION_LAYER}
PACKERS = {"dense": dense.pack, "lstm": lstm.pack, "gru": gru.pack, "conv1d": conv1d.pack,
           "batchnorm": batchnorm.pack, "prelu": prelu.pack, "activation": activation.pack}
# INT8 layers (``quant.int8_json.Int8Model``): int8 weight matrices in ``qweights``, the rest float.
DENSE_INT8, LSTM_INT8, GRU_INT8, CONV1D_INT8 = range(8, 12)
INT8_OPCODES = {"dense": DENSE_INT8, "lstm": LSTM_INT8, "gru": GRU_INT8, "conv1d": CONV1D_INT8}
# The 2-D layers (RTNeural's conv2d/batchnorm2d; frames are feature-major [features x channels] maps).
# Numbered apart from the rows above so that other additions cannot collide with them.
CONV2D, BATCHNORM2D, CONV2D_INT8 = 40, 41, 42
OPCODES.update(conv2d=CONV2D, batchnorm2d=BATCHNORM2D)
INT8_OPCODES.update(conv2d=CONV2D_INT8)
PACKERS.update(conv2d=conv2d.pack, batchnorm2d=batchnorm2d.pack)
# Merge rows (weightless; ``kernels/merge.py``). An n-ary add is a chain of ADD rows; a concat, COPY_INTO rows.
MERGE_OPCODES = {"add": merge.ADD, "sub": merge.SUB, "mul": merge.MUL, "concat": merge.COPY_INTO, "slice": merge.SLICE}

#: Weight arrays start on multiples of this many floats (64 bytes).
ALIGN_FLOATS = 16


@dataclass(eq=False)
class Program:
    table: np.ndarray  # int64 [layers, FIELDS]
    weights: np.ndarray  # float32 [total], 64-byte aligned
    state_size: int  # floats
    cursor_count: int  # int64 ring positions
    scratch_width: int  # floats per ping-pong row
    work_size: int  # floats
    input_size: int
    output_size: int
    layer_names: tuple[str, ...]  # "dense 128->64", for profiles and messages
    qweights: np.ndarray  # int8 [total], 64-byte aligned: the INT8 layers' matrices (one unused byte if none)
    slots: int = 2  # scratch rows (see the module docstring)

    @property
    def output_row(self) -> int:
        """The scratch slot holding the model's output after a frame (the last row writes it)."""
        return int(self.table[-1, DST])


def aligned_zeros(count: int, dtype=np.float32, alignment: int = 64) -> np.ndarray:
    """A zeroed 1-D array whose data starts on an ``alignment``-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(count * itemsize + alignment, dtype=np.uint8)
    start = (-raw.ctypes.data) % alignment
    return raw[start:start + count * itemsize].view(dtype)


def _round_up(value: int, multiple: int = ALIGN_FLOATS) -> int:
    return -(-value // multiple) * multiple


def assign_slots(model: Model) -> tuple[list[int], int]:
    """The scratch slot of every value (0 = the input) and the number of slots. Greedy liveness: a
    layer's output takes the lowest free slot BEFORE the slots of values it reads last are freed (a
    kernel never writes the row it reads), so a stack ping-pongs between slots 0 and 1."""
    wiring = model.wiring()
    last_reader = {value: index for index, inputs in enumerate(wiring) for value in inputs}
    slot, free, count = [0], [], 1
    for index, inputs in enumerate(wiring):
        if free:
            slot.append(free.pop(0))
        else:
            slot.append(count)
            count += 1
        free = sorted(free + [slot[value] for value in set(inputs) if last_reader[value] == index])
    return slot, count


def _merge_rows(layer: Merge, sources: list[int], target: int) -> list[np.ndarray]:
    """The rows of a merge: one per binary step (n-ary add accumulates in ``target``), one per concat input."""
    opcode = MERGE_OPCODES[layer.kind]

    def row(source, source2, size, param=0):
        values = np.zeros(FIELDS, dtype=np.int64)
        values[[OP, IN, OUT, PARAM0, SRC, SRC2, DST]] = opcode, size, layer.out_size, param, source, source2, target
        return values

    if isinstance(layer, Concat):
        offsets = np.cumsum((0,) + tuple(layer.sizes[:-1]))
        return [row(source, source, size, offset) for source, size, offset in zip(sources, layer.sizes, offsets)]
    if isinstance(layer, Slice):
        return [row(sources[0], sources[0], layer.sizes[0], layer.start)]
    return [row(sources[0], sources[1], layer.in_size)] + [row(target, source, layer.in_size) for source in sources[2:]]


def compile_program(model) -> Program:
    """Pack ``model`` (validated first) into a :class:`Program`: a :class:`toolchain.layers.Model`, or an
    INT8 model (``quant.int8_json.Int8Model``: ``.model`` plus per-layer ``.quantized`` int8 arrays)."""
    quantized = getattr(model, "quantized", None)
    model = getattr(model, "model", model)
    model.validate()
    quantized = quantized or [{}] * len(model.layers)
    slot, slots = assign_slots(model)
    rows, placed = [], []  # placed: (row, packed) of the weighted layers
    offset = qoffset = state = cursors = 0
    for index, (layer, inputs, arrays) in enumerate(zip(model.layers, model.wiring(), quantized)):
        sources, target = [slot[value] for value in inputs], slot[index + 1]
        if isinstance(layer, Merge):
            rows.extend(_merge_rows(layer, sources, target))
            continue
        packed = int8.PACKERS[layer.kind](layer, arrays) if arrays else PACKERS[layer.kind](layer)
        if len(packed.int8_arrays) + len(packed.arrays) > MAX_ARRAYS or len(packed.params) > 3:
            raise ValueError(f"{layer.kind}: too many arrays or parameters for one table row")
        row = np.zeros(FIELDS, dtype=np.int64)
        row[OP], row[IN], row[OUT] = (INT8_OPCODES if arrays else OPCODES)[layer.kind], layer.in_size, layer.out_size
        row[ACTIVATION] = activation.CODES[getattr(layer, "activation", "")]
        row[STATE], row[CURSOR] = state, cursors
        row[SRC], row[SRC2], row[DST] = sources[0], sources[0], target
        row[PARAM0:PARAM0 + len(packed.params)] = packed.params
        for position, array in enumerate(packed.int8_arrays):  # int8 arrays first, offsets in qweights
            row[ARRAY0 + position] = qoffset
            qoffset += _round_up(array.size, 64)  # int8: 64 values per 64-byte line
        for position, array in enumerate(packed.arrays, start=len(packed.int8_arrays)):
            row[ARRAY0 + position] = offset
            offset += _round_up(array.size)
        state += packed.state_size
        cursors += packed.cursors
        rows.append(row)
        placed.append((row, packed))
    # Each array starts on a 64-byte line; the buffers end with their last array (no padding after it).
    ends = [(row[ARRAY0 + position] + np.asarray(array).size, position < len(packed.int8_arrays))
            for row, packed in placed for position, array in enumerate(list(packed.int8_arrays) + list(packed.arrays))]
    float_end = max([end for end, is_int8 in ends if not is_int8], default=0)
    int8_end = max([end for end, is_int8 in ends if is_int8], default=0)
    weights, qweights = aligned_zeros(float_end), aligned_zeros(max(int8_end, 1), np.int8)
    for row, packed in placed:
        for position, array in enumerate(packed.int8_arrays):
            qweights[row[ARRAY0 + position]:row[ARRAY0 + position] + array.size] = array.ravel()
        for position, array in enumerate(packed.arrays, start=len(packed.int8_arrays)):
            weights[row[ARRAY0 + position]:row[ARRAY0 + position] + array.size] = np.asarray(array, np.float32).ravel()
    return Program(
        table=np.ascontiguousarray(np.stack(rows)), weights=weights, state_size=state, cursor_count=cursors,
        scratch_width=max([model.input_size] + [layer.out_size for layer in model.layers]),
        work_size=max([packed.work_size for _, packed in placed], default=1),
        input_size=model.input_size, output_size=model.output_size,
        layer_names=tuple(describe(layer) for layer in model.layers), qweights=qweights, slots=slots,
    )


def describe(layer: Layer) -> str:
    """A short label such as ``lstm 64->128``."""
    return f"{layer.kind} {layer.in_size}->{layer.out_size}"

