"""Fixtures of the compression tests: one model of every layer kind, built once per session."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_modules

from quant import calibration
from tests.quant.models import KINDS


@pytest.fixture(scope="session")
def catalog() -> dict:
    """Kind name -> ONNX model with seeded random weights (odd sizes)."""
    return {kind: build(np.random.default_rng(index + 1)) for index, (kind, build) in enumerate(KINDS.items())}


@pytest.fixture(scope="session")
def kelly_dynamics(tmp_path_factory):
    """An (untrained) DynamicsEngine exported by the Kelly exporter (with its JSON and reference pair),
    and its 50% structured prune."""
    require_modules("torch")
    from quant import prune
    from quant.onnx_graph import load_model, save_model
    from toolchain.kelly.export import export_model
    from toolchain.kelly.models import build_model

    folder = tmp_path_factory.mktemp("kelly")
    exported = export_model(build_model("DynamicsEngine", seed=3), folder / "models")
    pruned = save_model(prune.structured_prune(load_model(exported.onnx_path), 0.5).model, folder / "pruned.onnx")
    return exported.onnx_path, pruned


def outputs(model, samples) -> list[dict]:
    """onnxruntime's outputs of ``model`` on every sample."""
    return calibration.run(model, samples)


def max_difference(first: list[dict], second: list[dict]) -> float:
    return max(float(np.max(np.abs(a[name] - b[name]))) for a, b in zip(first, second) for name in a)


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict:
    """Linear stack, Gemm stack, LSTM, GRU and causal Conv1d models exported with both torch exporters
    (``tests/quant/exported.py``): ``{"KIND-EXPORTER": Exported}``."""
    from tests.conftest import require_modules

    require_modules("torch", "onnxscript")  # the exporters
    from tests.quant.exported import export_all

    return export_all(tmp_path_factory.mktemp("exported"))
