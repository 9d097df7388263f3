"""The streaming reference engine: runs an RTNeural model one frame per call, exactly as RTNeural does.

    engine = load_engine("model.json")      # or Engine(model) for a toolchain.layers.Model
    engine.reset()                          # zero all state (RTNeural: call before the first frame)
    y = engine.forward(frame)               # float32 [in] -> view of the internal [out] buffer
    Y = engine.run(frames)                  # float32 [T, in] -> new [T, out], continuing the state

A frame is one call into compiled code (``runner.run_frame``) over buffers allocated once here: the
packed weights, the state, the scratch slots (two ping-pong rows for a stack), a work area and the input row (``program.py``
documents them). Nothing is allocated per frame, in Python or in compiled code (tested with numba's
allocation counters and tracemalloc).

Non-finite input (NaN, Inf) is not rejected -- checking every frame would cost time on the audio path
and RTNeural does not check either. It propagates as in RTNeural's C++: a NaN reaching a recurrent or
conv1d layer poisons its state until ``reset()``; ``relu`` maps NaN to 0 (``std::max(0, x)``), and
softmax overflows to NaN for inputs above ~88 (RTNeural does not subtract the maximum).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_engine.program import Program, aligned_zeros, compile_program
from reference_engine.runner import Buffers, frame_entry, run_frames
from toolchain.errors import InputError
from toolchain.layers import Model
from toolchain.graph_json import read_model


@dataclass(frozen=True)
class MemoryReport:
    """Bytes the engine keeps resident, from the arrays it actually holds.

    ``weight_bytes``: the packed weight buffer (with its 64-byte alignment padding) and the opcode table;
    ``state_bytes``: recurrent/conv1d state and ring cursors; ``scratch_bytes``: scratch slots, work area, input row.
    """

    weight_bytes: int
    state_bytes: int
    scratch_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.state_bytes + self.scratch_bytes

    def as_dict(self) -> dict[str, int]:
        return {"weight_bytes": self.weight_bytes, "state_bytes": self.state_bytes,
                "scratch_bytes": self.scratch_bytes, "total_bytes": self.total_bytes}


class Engine:
    """A compiled model with its own state. Not thread-safe: one engine per audio thread."""

    def __init__(self, model: Model, name: str = ""):  # or a quant.int8_json.Int8Model (INT8 kernels)
        self.name = name
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
        self._run_frame = frame_entry(self.buffers)
        self._frame_shape = (self.input_size,)
        self._output = self.scratch[program.output_row, :self.output_size]
        self._output.flags.writeable = False  # a view for reading: the next frame overwrites it

    # ------------------------------------------------------------------------------------ streaming
    def reset(self) -> None:
        """Zero all state, as RTNeural's ``Model::reset()``."""
        self.state[:] = 0
        self.cursors[:] = 0

    def forward(self, frame: np.ndarray) -> np.ndarray:
        """Process one frame; return a read-only view of the output buffer (copy it to keep it)."""
        # The fast path is three attribute checks; a strided or byte-swapped float32 frame is fine
        # because numpy copies it into the engine's own contiguous input row.
        if type(frame) is not np.ndarray or frame.dtype.char != "f" or frame.shape != self._frame_shape:
            self._check(frame, 1)
        self.frame[...] = frame
        self._run_frame(self.buffers)
        return self._output

    def run(self, frames: np.ndarray) -> np.ndarray:
        """Process ``frames [T, in]`` one frame at a time (state carried); return a new ``[T, out]`` array."""
        self._check(frames, 2)
        frames = np.ascontiguousarray(frames, dtype=np.float32)  # native byte order, C layout (a copy only if needed)
        outputs = np.empty((frames.shape[0], self.output_size), dtype=np.float32)
        run_frames(self.buffers, frames, outputs)
        return outputs

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
        return MemoryReport(weight_bytes=p.weights.nbytes + p.table.nbytes + (p.qweights.nbytes if p.qweights.size > 1 else 0),
                            state_bytes=self.state.nbytes + self.cursors.nbytes,
                            scratch_bytes=self.scratch.nbytes + self.work.nbytes + self.frame.nbytes)

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
