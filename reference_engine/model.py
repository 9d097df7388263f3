"""The streaming reference engine: runs an RTNeural model one frame per call, exactly as RTNeural does.

    engine = load_engine("model.json")      # or Engine(model) for a toolchain.layers.Model
    engine.reset()                          # zero all state (RTNeural: call before the first frame)
    y = engine.forward(frame)               # float32 [in] -> view of the internal [out] buffer
    engine.prepare(64)                      # the largest block to come (allocates; the default is 64)
    Y = engine.process(block)               # float32 [N <= 64, in] -> view of the internal [N, out] buffer
    Y = engine.run(frames)                  # float32 [T, in] -> new [T, out], continuing the state

A frame is one call into compiled code (``runner.run_frame``) over buffers allocated once here: the
packed weights, the state, the scratch slots (two ping-pong rows for a stack), a work area and the input
row (``program.py`` documents them). A block (what a plugin's audio callback hands over) is one call too:
``runner.run_block`` loops over its frames in compiled code, running the same per-frame program per frame,
so a block computes exactly what N ``forward`` calls compute. Nothing is allocated per frame or per block,
in Python or in compiled code (tested with numba's allocation counters and tracemalloc).

Non-finite input (NaN, Inf) is not rejected -- checking every frame would cost time on the audio path
and RTNeural does not check either. It propagates as in RTNeural's C++: a NaN reaching a recurrent or
conv1d layer poisons its state until ``reset()``; ``relu`` maps NaN to 0 (``std::max(0, x)``), and
softmax overflows to NaN for inputs above ~88 (RTNeural does not subtract the maximum).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_engine import specialise
from reference_engine.program import Program, aligned_zeros, compile_program
from reference_engine.runner import Block, Buffers, block_entry, frame_entry
from toolchain.errors import InputError
from toolchain.layers import Model
from toolchain.graph_json import read_model


#: Block capacity an engine starts with: a common plugin buffer (``prepare`` changes it).
DEFAULT_BLOCK = 64
#: The native float32 dtype (``forward``'s fast path compares by identity).
FLOAT32 = np.dtype(np.float32)


@dataclass(frozen=True)
class MemoryReport:
    """Bytes the engine keeps resident, from the arrays it actually holds.

    ``weight_bytes``: the packed weight buffers, float32 and int8 (with their 64-byte alignment padding);
    ``program_bytes``: the opcode table (128 bytes a row: layer kinds, sizes, offsets -- the same for a float model
    and its INT8 form, so it is not counted as weights); ``state_bytes``: recurrent/conv1d state and ring
    cursors; ``scratch_bytes``: scratch slots, work area, input row and the block input/output buffers.
    """

    weight_bytes: int
    state_bytes: int
    scratch_bytes: int
    program_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.program_bytes + self.state_bytes + self.scratch_bytes

    def as_dict(self) -> dict[str, int]:
        return {"weight_bytes": self.weight_bytes, "program_bytes": self.program_bytes, "state_bytes": self.state_bytes,
                "scratch_bytes": self.scratch_bytes, "total_bytes": self.total_bytes}


class Engine:
    """A compiled model with its own state. Not thread-safe: one engine per audio thread."""

    def __init__(self, model: Model, name: str = "", block: int = DEFAULT_BLOCK,  # or a quant.int8_json.Int8Model
                 specialised: bool = True):
        """``specialised=False`` keeps the table program even for a small model (``specialise.py``; for comparisons)."""
        self.name = name
        self.specialised = specialised
        self.program: Program = compile_program(model)
        program = self.program
        self.input_size, self.output_size = program.input_size, program.output_size
        self.state = aligned_zeros(max(program.state_size, 1))
        self.cursors = np.zeros(max(program.cursor_count, 1), dtype=np.int64)
        self.scratch = aligned_zeros(program.slots * program.scratch_width).reshape(program.slots, program.scratch_width)
        self.work = aligned_zeros(max(program.work_size, 1))
        self.frame = aligned_zeros(self.input_size)
        self.buffers = Buffers(program.table, program.weights, self.state, self.cursors, self.scratch, self.work, self.frame,
                               program.qweights)
        self._frame_shape = (self.input_size,)
        self._output = self.scratch[program.output_row, :self.output_size]
        self._output.flags.writeable = False  # a view for reading: the next frame overwrites it
        self.prepare(block)

    def prepare(self, block: int) -> None:
        """Allocate the block buffers for blocks of up to ``block`` frames (a plugin's prepareToPlay);
        state is kept. The only allocation on the block path: call it before streaming, not per block."""
        if not isinstance(block, (int, np.integer)) or isinstance(block, bool) or block < 1:
            raise InputError(f"a block holds at least one frame, got {block!r}", where=self.name or None)
        self.block_inputs = aligned_zeros(block * self.input_size).reshape(block, self.input_size)
        self._block_outputs = aligned_zeros(block * self.output_size).reshape(block, self.output_size)
        self.block = Block(self.block_inputs, self._block_outputs, self.program.output_row)
        # A small model runs its own straight-line program (specialise.py), else the table program.
        entries = self.specialised and specialise.entries(self.program, self.buffers, self.block)
        self._run_frame, self._run_block = entries or (frame_entry(self.buffers), block_entry(self.buffers, self.block))
        self.forward = self._bound_forward()  # the per-frame fast path, bound to this engine's buffers
        self._full_block = self._block_outputs.view()
        self._full_block.flags.writeable = False

    @property
    def block_capacity(self) -> int:
        return self.block_inputs.shape[0]

    # ------------------------------------------------------------------------------------ streaming
    def reset(self) -> None:
        """Zero all state, as RTNeural's ``Model::reset()``."""
        self.state[:] = 0
        self.cursors[:] = 0

    def forward(self, frame: np.ndarray) -> np.ndarray:
        """Process one frame; return a read-only view of the output buffer (copy it to keep it).

        (Each engine replaces this method by the same steps bound to its own buffers, :meth:`_bound_forward`.)"""
        return self._bound_forward()(frame)

    def _bound_forward(self):
        """:meth:`forward` as a closure over this engine's buffers and compiled entry: a single-frame call is
        mostly Python, and the attribute look-ups and a dtype comparison were ~85 ns of a DynamicsEngine
        frame's ~2.2 us (measured). The fast path is three checks; a strided or byte-swapped float32 frame
        takes the slow one and is fine, because numpy copies it into the engine's contiguous input row."""
        row, run, buffers, output, shape, check = self.frame, self._run_frame, self.buffers, self._output, self._frame_shape, self._check
        ndarray = np.ndarray

        def forward(frame: np.ndarray) -> np.ndarray:
            if type(frame) is not ndarray or frame.dtype is not FLOAT32 or frame.shape != shape:
                check(frame, 1)
            row[...] = frame
            run(buffers)
            return output

        forward.__doc__ = Engine.forward.__doc__
        return forward

    def process(self, frames: np.ndarray) -> np.ndarray:
        """Process a block ``frames [N, in]`` (N up to :attr:`block_capacity`) in one compiled call, state
        carried; return a read-only view of the engine's ``[N, out]`` output buffer (the next block
        overwrites it). Equal to N :meth:`forward` calls."""
        if type(frames) is not np.ndarray or frames.dtype.char != "f" or frames.ndim != 2 \
                or frames.shape[1] != self.input_size or frames.shape[0] > self.block_inputs.shape[0]:
            self._check(frames, 2)
            self._check_block(frames.shape[0])
        count = frames.shape[0]
        if count == self.block_inputs.shape[0]:  # the steady state: whole buffers, no view objects made
            self.block_inputs[...] = frames
            self._run_block(self.buffers, self.block, count)
            return self._full_block
        self.block_inputs[:count] = frames
        self._run_block(self.buffers, self.block, count)
        return self._full_block[:count]

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Process ``frames [T, in]`` block after block (state carried); return a new ``[T, out]`` array."""
        self._check(frames, 2)
        outputs = np.empty((frames.shape[0], self.output_size), dtype=np.float32)
        capacity = self.block_inputs.shape[0]
        for start in range(0, frames.shape[0], capacity):
            stop = min(start + capacity, frames.shape[0])
            self.block_inputs[:stop - start] = frames[start:stop]  # numpy converts byte order and layout here
            self._run_block(self.buffers, self.block, stop - start)
            outputs[start:stop] = self._block_outputs[:stop - start]
        return outputs

    def _check_block(self, count: int) -> None:
        if count > self.block_inputs.shape[0]:
            raise InputError(f"a block of {count} frames is larger than the {self.block_inputs.shape[0]} prepared "
                             f"(call prepare({count}) before streaming)", where=self.name or None)

    def _check(self, array, ndim: int) -> None:
        if not isinstance(array, np.ndarray) or array.dtype.char != "f":
            kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise InputError(f"expected a float32 numpy array, got {kind} (convert with np.float32 first)",
                             where=self.name or None)
        if array.ndim != ndim or array.shape[-1] != self.input_size:
            expected = f"[{self.input_size}]" if ndim == 1 else f"[frames, {self.input_size}]"
            raise InputError(f"expected shape {expected}, got {list(array.shape)}", where=self.name or None)

    # ------------------------------------------------------------------------------------ accounting
    def memory(self) -> MemoryReport:
        p = self.program
        return MemoryReport(weight_bytes=p.weights.nbytes + (p.qweights.nbytes if p.qweights.size > 1 else 0),
                            program_bytes=p.table.nbytes,
                            state_bytes=self.state.nbytes + self.cursors.nbytes,
                            scratch_bytes=self.scratch.nbytes + self.work.nbytes + self.frame.nbytes
                            + self.block_inputs.nbytes + self._block_outputs.nbytes)

    def __repr__(self) -> str:
        return f"Engine({self.name or 'model'}: {self.input_size}->{self.output_size}, {len(self.program.table)} layers)"


def read_engine_model(path: str | Path):
    """The model in an RTNeural JSON, in_skip or graph file (read strictly by ``toolchain.graph_json``), or in an INT8
    JSON file (``quant.int8_json``, run with the INT8 kernels)."""
    from quant.int8_json import is_int8_json, read_int8_model

    return read_int8_model(path) if is_int8_json(path) else read_model(path)


def load_engine(path: str | Path) -> Engine:
    """Read a model file (:func:`read_engine_model`) and build its engine."""
    return Engine(read_engine_model(path), name=str(path))
