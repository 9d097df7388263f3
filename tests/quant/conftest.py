"""Fixtures of the compression tests: one model of every layer kind, built once per session."""
from __future__ import annotations

import numpy as np
import pytest

from quant import calibration
from tests.quant.models import KINDS


@pytest.fixture(scope="session")
def catalog() -> dict:
    """Kind name -> ONNX model with seeded random weights (odd sizes)."""
    return {kind: build(np.random.default_rng(index + 1)) for index, (kind, build) in enumerate(KINDS.items())}


def outputs(model, samples) -> list[dict]:
    """onnxruntime's outputs of ``model`` on every sample."""
    return calibration.run(model, samples)


def max_difference(first: list[dict], second: list[dict]) -> float:
    return max(float(np.max(np.abs(a[name] - b[name]))) for a, b in zip(first, second) for name in a)
