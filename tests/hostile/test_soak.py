"""Long runs (reference_engine/soak.py): 10^5 frames through every recurrent model stay finite, with
bounded state and flat memory; and the soak's checks do catch a drifting state and a leak."""
from __future__ import annotations

import numpy as np
import pytest

from reference_engine import synthetic
from reference_engine.model import Engine
from reference_engine.soak import run_soak, soak
from toolchain.kelly.spec import MODEL_NAMES
from toolchain.layers import LSTM

FRAMES = 100_000


@pytest.fixture(scope="module")
def results():
    return {result.name: result for result in run_soak(FRAMES, seed=3)}


def test_the_soak_covers_an_lstm_a_gru_and_the_five_kelly_shapes(results):
    assert any(name.startswith("lstm") for name in results) and any(name.startswith("gru") for name in results)
    assert set(MODEL_NAMES) <= set(results)


@pytest.mark.parametrize("check", ["finite", "state_bounded", "memory_flat"])
def test_every_model_streams_100k_frames_finite_with_bounded_state_and_flat_memory(results, check):
    failing = {name: r.as_dict() for name, r in results.items() if not getattr(r, check) or r.frames != FRAMES}
    assert not failing, failing


def saturated_lstm() -> Engine:
    """Input, forget and candidate gates pinned open (bias +20): the cell state grows by 1 every frame."""
    hidden, inputs = 3, 2
    bias = np.zeros(4 * hidden, np.float32)
    bias[: 3 * hidden] = 20.0  # gate blocks i, f, c (toolchain.gates canonical order i, f, c, o)
    layer = LSTM(np.zeros((4 * hidden, inputs), np.float32), np.zeros((4 * hidden, hidden), np.float32), bias)
    return Engine(synthetic.model(inputs, [layer]))


def test_a_cell_state_that_grows_every_frame_is_reported_as_unbounded():
    result = soak(saturated_lstm(), "saturated", FRAMES)
    assert result.finite  # h = o * tanh(c) stays in [-1, 1]
    assert result.max_abs_state_late > 2 * result.max_abs_state_early
    assert not result.state_bounded and not result.passed


def test_memory_that_grows_with_every_chunk_is_reported():
    engine = Engine(synthetic.model(3, [synthetic.gru(np.random.default_rng(0), 3, 5)]))
    kept, run = [], engine.run

    def leaking_run(frames):
        kept.append(np.ones(1 << 18))  # 2 MiB per chunk, touched
        return run(frames)

    engine.run = leaking_run
    result = soak(engine, "leaking", FRAMES)
    assert result.rss_growth > 20 << 20
    assert not result.memory_flat and not result.passed
