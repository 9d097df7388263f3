"""``kelly-tc bench --block N --sample-rate SR`` and the latency statistics behind every figure.

No timing is asserted: the statistics are tested on samples whose percentiles are known, the command on
its report's structure and on budgets impossible to miss or to meet."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from reference_engine import synthetic
from reference_engine.benchmark import latency_statistics, nearest_rank
from reference_engine.budget import block_deadline, declared_sample_rate, parse_sample_rate
from toolchain.errors import InputError
from toolchain.rtneural_json import model_to_json, write_model

FRAMES = ["--frames", "640", "--warmup", "64"]


def test_percentiles_of_1_to_1000_in_any_order_are_the_known_ranks():
    samples = np.random.default_rng(0).permutation(np.arange(1, 1001, dtype=np.float64))
    stats = latency_statistics(samples)
    assert (stats["p50"], stats["p99"], stats["p99.9"], stats["max"], stats["min"]) == (500, 990, 999, 1000, 1)
    assert stats["mean"] == 500.5


def test_percentiles_are_samples_that_were_measured_never_interpolations():
    stats = latency_statistics(np.array([1.0, 2.0, 10.0, 1000.0]))
    assert stats["p50"] == 2.0  # numpy's default interpolation would say 6.0, a time no call took
    assert stats["p99"] == stats["p99.9"] == stats["max"] == 1000.0  # 4 samples: the tail is the worst one
    assert latency_statistics(np.array([7.0]))["p50"] == 7.0
    with pytest.raises(ValueError):
        latency_statistics(np.array([]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300), st.sampled_from([0.5, 0.99, 0.999]))
def test_nearest_rank_has_at_least_q_of_the_samples_at_or_below_it_and_is_the_smallest_such(values, q):
    ordered = np.sort(np.array(values))
    value = nearest_rank(ordered, q)
    assert value in ordered
    assert np.mean(ordered <= value) >= q - 1e-12
    assert np.mean(ordered < value) < q  # any smaller sample has fewer than q at or below it


def test_sample_rates_parse_and_deadlines_follow():
    assert parse_sample_rate("48000") == parse_sample_rate("48kHz") == parse_sample_rate("48000Hz") == 48000.0
    assert block_deadline(64, 48000.0) == pytest.approx(64 / 48000)
    for bad in ("0", "-5", "48 parsecs", "fast"):
        with pytest.raises(InputError, match="--sample-rate"):
            parse_sample_rate(bad)


def test_a_model_file_declares_its_rate_in_kelly_tc_or_aida_x_metadata():
    assert declared_sample_rate({"kelly_tc": {"sample_rate": 44100}}) == (44100.0, "kelly_tc.sample_rate")
    assert declared_sample_rate({"metadata": {"samplerate": 48000}}) == (48000.0, "metadata.samplerate")
    assert declared_sample_rate({"kelly_tc": {"producer": "x"}}) is None
    for bad in (0, -1, "48000", True, float("nan")):
        with pytest.raises(InputError, match="sample_rate"):
            declared_sample_rate({"kelly_tc": {"sample_rate": bad}})


@pytest.fixture(scope="module")
def per_sample_files(tmp_path_factory):
    rng = np.random.default_rng(5)
    folder = tmp_path_factory.mktemp("per_sample")
    model = synthetic.model(1, [synthetic.lstm(rng, 1, 12), synthetic.dense(rng, 12, 1)])
    plain = write_model(model, folder / "amp.json")
    document = model_to_json(model)
    document["metadata"] = {"samplerate": 48000}  # as AIDA-X writes it
    aida = folder / "aida.json"
    aida.write_text(json.dumps(document))
    document["metadata"] = {"samplerate": 44100}
    other = folder / "other_rate.json"
    other.write_text(json.dumps(document))
    return plain, aida, other


def invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, ["bench", *map(str, arguments)])


def test_block_and_sample_rate_make_the_deadline_the_budget(per_sample_files, tmp_path):
    report = tmp_path / "report.json"
    result = invoke(per_sample_files[0], *FRAMES, "--block", "32", "--sample-rate", "48kHz", "--json", report)
    assert result.exit_code == 0, result.output
    assert "per block of 32 frames" in result.stdout and "deadline is 667 us" in result.stdout
    document = json.loads(report.read_text())
    assert document["settings"]["block"] == 32 and document["settings"]["sample_rate_hz"] == 48000
    assert document["budget"]["latency_seconds"] == pytest.approx(32 / 48000)
    entry = document["models"][0]
    assert entry["block"] == 32 and entry["frames"] == 640
    assert entry["latency_per_frame_us"]["p50"] == pytest.approx(entry["latency_us"]["p50"] / 32)
    assert len(entry["first_calls_us"]) == 8  # the first calls after loading, reported apart
    assert entry["frames_per_second"] == pytest.approx(32 / (entry["latency_us"]["mean"] * 1e-6))


def test_a_file_that_runs_per_sample_defaults_to_its_rate_and_block_64_and_says_so(per_sample_files, tmp_path):
    report = tmp_path / "report.json"
    result = invoke(per_sample_files[1], *FRAMES, "--json", report)
    assert result.exit_code == 0, result.output
    assert "says it runs per sample (metadata.samplerate = 48000 Hz): block 64" in result.stderr
    settings = json.loads(report.read_text())["settings"]
    assert settings["block"] == 64 and settings["sample_rate_hz"] == 48000
    assert settings["sample_rate_source"].endswith("aida.json: metadata.samplerate")


def test_an_impossible_deadline_fails_and_disagreeing_rates_are_refused(per_sample_files):
    result = invoke(per_sample_files[0], *FRAMES, "--block", "1", "--sample-rate", "1e12")  # a 1 ps deadline
    assert result.exit_code == 1 and "amp: p99 latency" in result.stderr
    result = invoke(per_sample_files[1], per_sample_files[2], *FRAMES)
    assert result.exit_code == 2 and "--sample-rate: the models declare different sample rates" in result.stderr
    result = invoke(per_sample_files[0], "--block", "0")
    assert result.exit_code == 2 and "--block: must be between" in result.stderr


def test_an_int8_model_is_timed_against_its_float_form_and_bench_says_which_to_ship(tmp_path):
    from quant.int8_json import quantize_model, write_int8_model

    rng = np.random.default_rng(9)
    model = synthetic.model(7, [synthetic.dense(rng, 7, 16, "relu"), synthetic.lstm(rng, 16, 9), synthetic.dense(rng, 9, 3)])
    path = write_int8_model(quantize_model(model), tmp_path / "small.int8.json")
    report = tmp_path / "report.json"
    result = invoke(path, *FRAMES, "--json", report)
    assert result.exit_code == 0, result.output
    (verdict,) = json.loads(report.read_text())["settings"]["int8_versus_float"]
    assert verdict["model"] == "small.int8" and verdict["recommend"] in ("int8", "float")
    assert verdict["recommend"] == ("int8" if verdict["latency_ratio"] <= 1.0 else "float")
    assert verdict["bytes_ratio"] < 1.0  # int8 weights are smaller whatever the timing says
    expected = "recommend float" if verdict["recommend"] == "float" else "INT8 pays here"
    assert f"small.int8: INT8 p50" in result.stdout and expected in result.stdout


def test_the_pipeline_notes_int8_bytes_and_the_models_slower_than_float_and_only_those():
    from reference_engine.benchmark import Measurement
    from toolchain.kelly.main_job import int8_latency_notes

    def measured(name, p50, weight_bytes):
        return Measurement(name, 10, {"p50": p50, "p99": p50, "p99.9": p50, "max": p50, "mean": p50, "min": p50},
                           {"weight_bytes": weight_bytes})

    float32 = {"Small": measured("Small", 1e-6, 4000), "Large": measured("Large", 20e-6, 400_000)}
    int8 = {"Small": measured("Small", 1.3e-6, 1030), "Large": measured("Large", 18e-6, 100_400),
            "Missing": measured("Missing", 1.0, 1)}
    small_bytes, small_latency, large_bytes = int8_latency_notes("int8", int8, float32)
    assert small_bytes == "int8 Small: engine weights 1,030 bytes vs float 4,000 (0.2575x)"
    assert small_latency.startswith("int8 Small: INT8 p50 1.30 us vs float 1.00 us (1.30x)") and "ship float" in small_latency
    assert large_bytes == "int8 Large: engine weights 100,400 bytes vs float 400,000 (0.2510x)"  # faster: no latency note
