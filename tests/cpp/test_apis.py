"""The library behind ``check --rtneural`` and ``bench --rtneural``: outputs and timings per RTNeural API."""
from __future__ import annotations

import numpy as np
import pytest

from tests.cpp.conftest import TOLERANCE
from tests.cpp.test_dynamic_api import engine_outputs
from toolchain.cpp.apis import APIS, rtneural_check, time_rtneural
from toolchain.cpp.runner import run_rtneural
from toolchain.errors import InputError


@pytest.fixture(scope="module")
def mixed_stack(layer_kind_models):
    return next(case for case in layer_kind_models if case.name == "mixed_stack")


@pytest.mark.cpp
def test_every_api_gives_the_engines_outputs(mixed_stack, rtneural_src):
    outputs = rtneural_check(mixed_stack.json_path, mixed_stack.frames, rtneural_src, apis=APIS)
    assert list(outputs) == list(APIS)
    expected = engine_outputs(mixed_stack)
    for api, values in outputs.items():
        assert values.dtype == np.float32
        np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE, err_msg=api)


@pytest.mark.cpp
def test_reset_every_restarts_the_state_at_each_chunk(mixed_stack, rtneural_src):
    chunked = rtneural_check(mixed_stack.json_path, mixed_stack.frames, rtneural_src, APIS, reset_every=20)
    for api, values in chunked.items():
        for start in range(0, len(mixed_stack.frames), 20):
            alone = run_rtneural(mixed_stack.json_path, mixed_stack.frames[start:start + 20], rtneural_src)
            np.testing.assert_allclose(values[start:start + 20], alone, rtol=0, atol=TOLERANCE, err_msg=f"{api} chunk {start}")


@pytest.mark.cpp
def test_run_rtneural_is_the_dynamic_api(mixed_stack, rtneural_src, backend):
    np.testing.assert_array_equal(run_rtneural(mixed_stack.json_path, mixed_stack.frames, rtneural_src, backend),
                                  rtneural_check(mixed_stack.json_path, mixed_stack.frames, rtneural_src, ("dynamic",), backend)["dynamic"])


@pytest.mark.cpp
def test_timing_reports_per_frame_percentiles_for_each_api(mixed_stack, rtneural_src):
    timings = time_rtneural(mixed_stack.json_path, mixed_stack.frames, rtneural_src, APIS, repeats=3)
    assert set(timings) == set(APIS)
    for timing in timings.values():
        assert timing.frames == 3 * len(mixed_stack.frames)
        assert 0 < timing.min_ns <= timing.p50_ns <= timing.p99_ns


def test_an_unknown_api_is_refused(mixed_stack):
    with pytest.raises(InputError, match="unknown RTNeural API"):
        rtneural_check(mixed_stack.json_path, mixed_stack.frames, apis=("xsimd",))


@pytest.mark.cpp
def test_a_model_rtneural_cannot_read_is_a_one_line_error(rtneural_testdata, rtneural_src):
    """bad_lstm.json (sizes contradict its weights) makes RTNeural's parser throw: reported, not a crash."""
    with pytest.raises(InputError, match=r"bad_lstm.json: RTNeural could not run the model: harness: .*range"):
        run_rtneural(rtneural_testdata / "models" / "bad_lstm.json", np.zeros((3, 1), np.float32), rtneural_src)
