"""``kelly-tc bench``: the report, the exit codes, the JSON and the plot. No timing is asserted: budgets
below are either impossible to miss (10 s per frame) or impossible to meet (1 ns per frame)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import require_modules
from typer.testing import CliRunner

from reference_engine import synthetic
from toolchain.rtneural_json import write_model

FRAMES = ["--frames", "300", "--warmup", "20"]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    import numpy as np

    rng = np.random.default_rng(7)
    folder = tmp_path_factory.mktemp("bench_models")
    small = synthetic.model(5, [synthetic.dense(rng, 5, 9, "relu"), synthetic.lstm(rng, 9, 7), synthetic.dense(rng, 7, 3)])
    other = synthetic.model(4, [synthetic.conv1d(rng, 4, 6, 3, 2), synthetic.gru(rng, 6, 5)])
    return write_model(small, folder / "small.json"), write_model(other, folder / "other.json")


def invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, ["bench", *map(str, arguments)])


def test_generous_budgets_pass_with_a_row_per_model_and_the_pipeline(model_files, tmp_path):
    report = tmp_path / "report.json"
    result = invoke(*model_files, *FRAMES, "--budget", "10s", "--memory-budget", "1GB", "--json", report)
    assert result.exit_code == 0, result.output
    for name in ("small", "other", "pipeline"):
        assert name in result.stdout
    document = json.loads(report.read_text())
    assert document["within_budget"] is True and document["violations"] == []
    assert [m["name"] for m in document["models"]] == ["small", "other"]
    assert document["pipeline"]["models"] == ["small", "other"]


def test_the_json_report_holds_every_figure_the_machine_and_the_versions(model_files, tmp_path):
    report = tmp_path / "report.json"
    assert invoke(model_files[0], *FRAMES, "--json", report).exit_code == 0
    document = json.loads(report.read_text())
    entry = document["models"][0]
    assert set(entry["latency_us"]) >= {"p50", "p99", "p99.9", "max"}
    assert entry["latency_us"]["p50"] <= entry["latency_us"]["p99"] <= entry["latency_us"]["p99.9"] <= entry["latency_us"]["max"]
    assert entry["frames"] == 300 and entry["frames_per_second"] > 0 and entry["headroom"] > 0
    assert set(entry["memory"]) == {"weight_bytes", "program_bytes", "state_bytes", "scratch_bytes", "total_bytes"}
    assert entry["compile_seconds"] > 0 and entry["compiled_from"] in ("compiled", "disk cache", "in memory")
    assert document["pipeline"] is None  # one model: no pipeline
    assert {"cpu", "cores", "versions"} <= set(document["machine"])
    assert {"numpy", "numba", "python", "kelly-tc"} <= set(document["machine"]["versions"])
    assert document["budget"] == {"latency_seconds": 0.01, "memory_bytes": None, "statistic": "p99"}


def test_an_impossible_latency_budget_exits_1_naming_the_model_and_the_excess(model_files, tmp_path):
    result = invoke(*model_files, *FRAMES, "--budget", "1ns", "--json", tmp_path / "report.json")
    assert result.exit_code == 1
    for name in ("small", "other", "pipeline"):
        assert f"{name}: p99 latency" in result.stderr
    assert "over the 1 ns budget by" in result.stderr
    assert json.loads((tmp_path / "report.json").read_text())["within_budget"] is False  # written anyway


def test_a_memory_budget_below_the_model_exits_1(model_files):
    result = invoke(model_files[0], *FRAMES, "--memory-budget", "100B")
    assert result.exit_code == 1 and "small: memory" in result.stderr and "100 B budget" in result.stderr


@pytest.mark.parametrize("arguments,reason", [
    (["--budget", "10"], "--budget: add a unit"),
    (["--memory-budget", "4 parsecs"], "--memory-budget: unknown unit"),
    (["--frames", "0"], "--frames: must be between"),
    (["--statistic", "p95"], "--statistic"),
])
def test_bad_options_exit_2_with_one_line(model_files, arguments, reason):
    result = invoke(model_files[0], *arguments)
    assert result.exit_code == 2 and reason in result.stderr


def test_a_bad_model_exits_2_naming_the_file(rtneural_testdata):
    result = invoke(rtneural_testdata / "models" / "bad_lstm.json", *FRAMES)
    assert result.exit_code == 2 and "bad_lstm.json: layers[0] (lstm)" in result.stderr


def test_the_plot_is_a_png(model_files, tmp_path):
    require_modules("matplotlib")
    plot = tmp_path / "latency.png"
    assert invoke(*model_files, *FRAMES, "--plot", plot).exit_code == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
