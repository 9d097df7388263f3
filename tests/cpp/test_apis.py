"""The library behind ``check --rtneural`` and ``bench --rtneural``: outputs and timings per RTNeural API."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.cpp.conftest import TOLERANCE
from tests.cpp.test_dynamic_api import engine_outputs
from toolchain.cli import app
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


@pytest.fixture(scope="module")
def small_model(layer_kind_models):
    return next(case for case in layer_kind_models if case.name == "prelu_per_channel")


@pytest.mark.cpp
def test_the_bench_command_adds_rtneurals_two_apis(small_model, rtneural_src, tmp_path):
    report = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", str(small_model.json_path), "--frames", "300", "--warmup", "10",
                                      "--rtneural", str(rtneural_src), "--json", str(report)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    written = json.loads(report.read_text())["settings"]["rtneural"]
    (figures,) = written["models"].values()
    assert set(figures) == {"rtneural", "rtneural-modelt"}
    assert all(0 < api["p50"] <= api["p99"] <= api["p99.9"] <= api["max"] and api["agreement"] <= TOLERANCE
               for api in figures.values())
    assert all(api["block"] == 1 and len(api["first"]) == 8 for api in figures.values())  # first calls timed apart
    line = next(line for line in result.stdout.splitlines() if "prelu_per_channel" in line and "engine" not in line and line.count("us") >= 5)
    assert "the real RTNeural" in result.stdout and "engine / ModelT" in result.stdout
    # model, block, engine, dynamic p50/p99, ModelT p50/p99, per frame engine/ModelT, three ratios
    assert len(line.split("│")) == 14


@pytest.mark.cpp
def test_rtneural_is_timed_per_block_of_n_forward_calls(small_model, rtneural_src):
    from toolchain.cpp.apis import time_rtneural

    timings = time_rtneural(small_model.json_path, np.tile(small_model.frames, (8, 1))[:64 * 5], rtneural_src,
                            ("dynamic",), repeats=2, block=64)
    timing = timings["dynamic"]
    assert timing.block == 64 and timing.frames == 2 * 5  # 5 blocks per pass, 2 steady passes (the first apart)
    assert 0 < timing.min_ns <= timing.p50_ns <= timing.p99_ns <= timing.p999_ns <= timing.max_ns
    assert len(timing.first_ns) == 5


@pytest.mark.cpp
def test_the_runtime_comparison_row_gains_rtneural_latency_and_agreement(small_model, rtneural_src):
    from toolchain.cpp.bench import add_to_row

    row = {"agreement_max_abs_error": {}, "latency_us": {}}
    add_to_row(row, small_model.model(), small_model.frames, rtneural_src)
    assert set(row["latency_us"]) == {"rtneural", "rtneural-modelt"}
    assert all(error <= TOLERANCE for error in row["agreement_max_abs_error"].values())
    assert all(0 < figures["p50"] <= figures["p99"] for figures in row["latency_us"].values())
    add_to_row(empty := {"agreement_max_abs_error": {}, "latency_us": {}}, small_model.model(), small_model.frames, None)
    assert empty == {"agreement_max_abs_error": {}, "latency_us": {}}  # no RTNeural source: no columns
