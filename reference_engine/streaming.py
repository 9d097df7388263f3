"""Run a frame file through a model file block by block, the way a plugin would (``kelly-tc run``)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from reference_engine.frames import _suffix, default_output_path, read_frames, write_frames
from reference_engine.model import Engine, load_engine

#: Frames between progress reports; each chunk streams through ``Engine.run`` in blocks of the engine's
#: capacity (the state carries across blocks and chunks, so neither changes the result).
CHUNK_FRAMES = 4096


@dataclass(frozen=True)
class RunResult:
    output_path: Path
    frames: int
    input_size: int
    output_size: int
    seconds: float  # the frames' processing time, steady state: compilation excluded
    non_finite_outputs: int
    compile_seconds: float = 0.0  # the first call's compilation (or cache load) of the engine's code

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / max(self.frames, 1)


def run_stream(engine: Engine, frames: np.ndarray, on_progress: Callable[[int], None] | None = None) -> np.ndarray:
    """``engine.run`` in chunks of :data:`CHUNK_FRAMES`, calling ``on_progress(frames_done)`` after each."""
    outputs = np.empty((frames.shape[0], engine.output_size), dtype=np.float32)
    for start in range(0, frames.shape[0], CHUNK_FRAMES):
        stop = min(start + CHUNK_FRAMES, frames.shape[0])
        outputs[start:stop] = engine.run(frames[start:stop])
        if on_progress is not None:
            on_progress(stop)
    return outputs


def run_file(model_path: str | Path, input_path: str | Path, output_path: str | Path | None = None,
             on_progress: Callable[[int], None] | None = None,
             on_start: Callable[[int], None] | None = None) -> RunResult:
    """Reset the engine once, run every frame of ``input_path`` in order, write ``[frames, out]`` atomically."""
    engine = load_engine(model_path)
    frames = read_frames(input_path, engine.input_size)
    output_path = Path(output_path) if output_path is not None else default_output_path(input_path)
    _suffix(output_path)  # a bad output type is refused before any work, not after the run
    if on_start is not None:
        on_start(frames.shape[0])
    compile_seconds = warm_up(engine, frames)
    started = time.perf_counter()
    outputs = run_stream(engine, frames, on_progress)
    seconds = time.perf_counter() - started
    write_frames(output_path, outputs)
    return RunResult(output_path, frames.shape[0], engine.input_size, engine.output_size, seconds,
                     int(np.count_nonzero(~np.isfinite(outputs))), compile_seconds)


def warm_up(engine: Engine, frames: np.ndarray) -> float:
    """Run one frame (numba compiles, or loads its cache, on the first call), then reset: the timed run
    that follows measures the per-frame cost a plugin pays, not a one-off compile of seconds. Returns
    the seconds the first call took."""
    started = time.perf_counter()
    engine.run(frames[:1])
    engine.reset()
    return time.perf_counter() - started
