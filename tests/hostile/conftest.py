"""Fixtures of the hostile-input tests: one set of GOOD files per session (each command gets a good
file in every slot but the one under test) and a small trained checkpoint to corrupt."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import require_modules

from tests.fixtures import onnx_graphs as graphs
from tests.hostile.support import CHECKPOINT_MODEL


@dataclass(frozen=True)
class GoodFiles:
    folder: Path
    onnx: Path  # x [batch, time, 3] -> MatMul -> Add -> Tanh -> y [batch, time, 4]
    json: Path  # the same model converted
    frames: Path  # [10, 3] float32
    empty: Path  # an empty folder


@pytest.fixture(scope="session")
def good(tmp_path_factory) -> GoodFiles:
    from toolchain.convert import convert_file

    folder = tmp_path_factory.mktemp("good")
    rng = np.random.default_rng(11)
    onnx_path = graphs.save(graphs.dense(graphs.random(rng, 3, 4), graphs.random(rng, 4), "Tanh"), folder / "good.onnx")
    convert_file(onnx_path, folder / "good.json")
    np.save(folder / "frames.npy", rng.uniform(-1, 1, (10, 3)).astype(np.float32))
    (folder / "empty").mkdir()
    return GoodFiles(folder, onnx_path, folder / "good.json", folder / "frames.npy", folder / "empty")


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """A training output folder with a real CHECKPOINT_MODEL/{best,latest}.ckpt (one short epoch)."""
    require_modules("torch")
    from toolchain.kelly.config import load_config
    from toolchain.kelly.training import train_models

    folder = tmp_path_factory.mktemp("trained")
    config = load_config(models=[CHECKPOINT_MODEL], source="synthetic", epochs=1, seq_len=8, batch_size=16,
                         synthetic_sequences=48, output=str(folder), plot=False)
    train_models(config)
    return folder
