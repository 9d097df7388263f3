"""The engine reproduces RTNeural's own reference outputs, tested the way RTNeural's tests do it:
reset once, one call per frame with state carried, every frame compared from the first."""
from __future__ import annotations

import numpy as np
import pytest

from reference_engine.model import load_engine
from tests.reference_engine.conftest import RTNEURAL_CASES, rtneural_case
from toolchain.errors import InputError


@pytest.mark.parametrize("name", sorted(RTNEURAL_CASES))
def test_engine_reproduces_rtneural_reference_outputs_frame_by_frame(rtneural_testdata, name):
    model_path, frames, expected = rtneural_case(rtneural_testdata, name)
    engine = load_engine(model_path)
    engine.reset()
    outputs = np.array([engine.forward(frame).copy() for frame in frames])
    assert outputs.shape == expected.shape
    worst = np.abs(outputs - expected).max()
    assert worst <= RTNEURAL_CASES[name], f"{name}: worst error {worst:.3g}"


def test_bad_lstm_is_refused_naming_the_layer_and_the_mismatch(rtneural_testdata):
    path = rtneural_testdata / "models" / "bad_lstm.json"
    with pytest.raises(InputError) as caught:
        load_engine(path)
    message = str(caught.value)
    assert "bad_lstm.json" in message and "layers[0] (lstm)" in message
    assert "20" in message and "16" in message
