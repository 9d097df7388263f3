"""Fixtures for the reference-engine tests: RTNeural's test vectors, and random models."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: RTNeural's functional tests: model name -> absolute tolerance (rtneural-testdata/README.md).
RTNEURAL_CASES = {"dense": 1e-6, "lstm": 1e-6, "lstm_1d": 1e-6, "gru": 5e-6, "gru_1d": 1e-6, "conv": 1e-6}


def rtneural_case(testdata: Path, name: str):
    """(model path, input frames float32 [T, 1], expected outputs float64 [T, out])."""
    frames = np.loadtxt(testdata / "test_data" / f"{name}_x_python.csv", delimiter=",", ndmin=2)
    expected = np.loadtxt(testdata / "test_data" / f"{name}_y_python.csv", delimiter=",", ndmin=2)
    return testdata / "models" / f"{name}.json", frames.astype(np.float32), expected


def random_frames(rng: np.random.Generator, frames: int, size: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal((frames, size)) * scale).astype(np.float32)
