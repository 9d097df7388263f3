"""Run frames through the real RTNeural: the dynamic-API harness, or a compiled compile-time program.

Frames go to the C++ program as raw float32 and come back as raw float64 (see ``harness_io.h``), in a
temporary folder removed afterwards.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from toolchain.cpp.build import harness_binary
from toolchain.errors import InputError

#: A model that has not answered after this long is hung (our largest models run ~10^5 frames/s).
TIMEOUT_SECONDS = 600


def _frames(frames: np.ndarray) -> np.ndarray:
    frames = np.ascontiguousarray(frames, dtype=np.float32)
    if frames.ndim != 2:
        raise InputError(f"frames must be a 2-D array [frames, inputs], got shape {list(frames.shape)}")
    return frames


def invoke(command: Sequence[str], file: str | Path | None) -> str:
    """Run a harness; a failure or a crash becomes an :class:`InputError` naming ``file``."""
    try:
        result = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise InputError(f"RTNeural did not finish within {TIMEOUT_SECONDS} s", file=file) from None
    if result.returncode < 0:
        raise InputError(f"RTNeural crashed (signal {-result.returncode}) on this model", file=file)
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"RTNeural could not run the model: {message[:300]}", file=file)
    return result.stdout


def run_program(binary: Path, arguments: Sequence[str], frames: np.ndarray, file: str | Path | None = None) -> np.ndarray:
    """Stream ``frames`` [T, in] through a harness binary; return its outputs [T, out] as float64."""
    frames = _frames(frames)
    with tempfile.TemporaryDirectory(prefix="kelly-tc-rtneural-") as folder:
        inputs, outputs = Path(folder) / "input.f32", Path(folder) / "output.f64"
        frames.tofile(inputs)
        invoke([binary, *arguments, "--input", inputs, "--output", outputs], file)
        values = np.fromfile(outputs, dtype=np.float64)
    count = frames.shape[0]
    if count == 0:
        return values.reshape(0, 0)
    if values.size % count:
        raise InputError(f"RTNeural returned {values.size} values for {count} frames", file=file)
    return values.reshape(count, values.size // count)


def time_program(binary: Path, arguments: Sequence[str], frames: np.ndarray, repeats: int,
                 file: str | Path | None = None, block: int = 1) -> dict:
    """Time each block of ``block`` forward() calls in C++ (see ``harness_io.h``); the program's JSON line as a dict."""
    frames = _frames(frames)
    with tempfile.TemporaryDirectory(prefix="kelly-tc-rtneural-") as folder:
        inputs = Path(folder) / "input.f32"
        frames.tofile(inputs)
        output = invoke([binary, *arguments, "--input", inputs, "--time", str(int(repeats)), "--block", str(int(block))], file)
    return json.loads(output.strip().splitlines()[-1])


def run_rtneural(json_path: str | Path, frames: np.ndarray, src: str | Path | None = None,
                 backend: str = "stl") -> np.ndarray:
    """Outputs [T, out] (float32) of RTNeural's dynamic API (``parseJson<float>``) on ``frames`` [T, in].

    The model is reset once, then fed one frame per ``forward()`` call with state kept, exactly as
    a plugin runs it. ``src`` is an RTNeural checkout (default: ``RTNEURAL_SRC``).
    """
    binary = harness_binary(src, backend)
    return run_program(binary, ["--json", Path(json_path)], frames, file=json_path).astype(np.float32)
