"""``kelly-tc check`` (and ``convert --check``): exit 0 within the bound, 1 beyond it, 2 on bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.fixtures import onnx_graphs as graphs
from toolchain.check import check_files
from toolchain.convert import convert_file


def invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


@pytest.fixture
def lstm_pair(rng, tmp_path):
    """An LSTM ONNX model (hidden 7, 3 inputs, free time length) and its converted JSON."""
    hidden = 7
    proto = graphs.lstm(graphs.random(rng, 1, 4 * hidden, 3), graphs.random(rng, 1, 4 * hidden, hidden), graphs.random(rng, 1, 8 * hidden),
                        squeeze=True)
    onnx_path = graphs.save(proto, tmp_path / "lstm.onnx")
    json_path = tmp_path / "lstm.json"
    convert_file(onnx_path, json_path)
    return onnx_path, json_path


def swap_first_two_gate_columns(json_path):
    """Tamper with the JSON as a wrong gate order would: swap the i and f column blocks of W."""
    document = json.loads(json_path.read_text())
    kernel = np.array(document["layers"][0]["weights"][0])
    hidden = kernel.shape[1] // 4
    kernel[:, : 2 * hidden] = np.concatenate([kernel[:, hidden: 2 * hidden], kernel[:, :hidden]], axis=1)
    document["layers"][0]["weights"][0] = kernel.tolist()
    json_path.write_text(json.dumps(document))


def test_check_passes_and_writes_a_json_report(lstm_pair, tmp_path):
    onnx_path, json_path = lstm_pair
    result = invoke("check", onnx_path, json_path, "--frames", 40, "--json", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is True and report["frames"] == 40 and report["seed"] == 0
    assert [c["label"] for c in report["comparisons"]] == ["stream", "after reset at frame 20"]
    assert all(c["max_abs_error"] <= 1e-5 and c["cosine_similarity"] > 0.999999 for c in report["comparisons"])


def test_check_fails_with_exit_1_on_a_wrong_gate_order(lstm_pair, tmp_path):
    onnx_path, json_path = lstm_pair
    swap_first_two_gate_columns(json_path)
    result = invoke("check", onnx_path, json_path, "--json", tmp_path / "report.json")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {json_path}: worst error vs the float64 run ") and "exceeded" in result.stderr
    assert json.loads((tmp_path / "report.json").read_text())["passed"] is False
    fixed = invoke("check", onnx_path, json_path, "--atol", "1e-5")  # the fixed bound, as before
    assert fixed.exit_code == 1
    assert fixed.stderr.startswith(f"error: {json_path}: max abs error ") and "(atol 1e-05): exceeded" in fixed.stderr


def test_half_way_reset_comparison_catches_an_engine_that_keeps_state(lstm_pair, monkeypatch):
    from reference_engine.model import Engine

    onnx_path, json_path = lstm_pair
    monkeypatch.setattr(Engine, "reset", lambda self: None)  # a fresh engine starts at zero anyway
    stream, after_reset = check_files(onnx_path, json_path, frames=40).comparisons
    assert stream.within(1e-5)
    assert not after_reset.within(1e-5)


def test_check_uses_the_given_input_frames(lstm_pair, tmp_path):
    onnx_path, json_path = lstm_pair
    np.save(tmp_path / "x.npy", np.random.default_rng(5).standard_normal((30, 3)).astype(np.float32))
    report = check_files(onnx_path, json_path, inputs=tmp_path / "x.npy")
    assert report.passed and report.frames == 30 and report.seed is None


@pytest.mark.parametrize("content,reason", [
    (np.zeros((10, 4), np.float32), "expected frames of shape [frames, 3], got [10, 4]"),
    (np.full((10, 3), np.nan, np.float32), "must hold finite float32 numbers (NaN, Inf or a value beyond +-3.4e38 found)"),
    (np.full((10, 3), 1e39, np.float64), "must hold finite float32 numbers (NaN, Inf or a value beyond +-3.4e38 found)"),
], ids=["wrong-width", "nan", "float64-beyond-float32"])
def test_check_refuses_bad_input_frames_with_exit_2(lstm_pair, tmp_path, content, reason):
    onnx_path, json_path = lstm_pair
    np.save(tmp_path / "x.npy", content)
    result = invoke("check", onnx_path, json_path, "--input", tmp_path / "x.npy")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'x.npy'}: {reason}\n"


def test_check_refuses_a_json_of_another_model_with_exit_2(lstm_pair, rng, tmp_path):
    onnx_path, _ = lstm_pair
    other = graphs.save(graphs.dense(graphs.random(rng, 3, 2), graphs.random(rng, 2)), tmp_path / "dense.onnx")
    convert_file(other, tmp_path / "dense.json")
    result = invoke("check", onnx_path, tmp_path / "dense.json")
    assert result.exit_code == 2
    assert "the JSON maps 3 -> 2 features but the ONNX model 3 -> 7" in result.stderr


def test_fixed_time_length_is_fed_in_chunks_from_reset(rng, tmp_path):
    """A model whose input declares 6 frames (as dynamo exports) is checked in chunks of 6."""
    hidden = 5
    proto = graphs.gru(graphs.random(rng, 1, 3 * hidden, 2), graphs.random(rng, 1, 3 * hidden, hidden), graphs.random(rng, 1, 6 * hidden))
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 6  # time
    proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 1  # batch
    onnx_path = graphs.save(proto, tmp_path / "fixed.onnx")
    convert_file(onnx_path, tmp_path / "fixed.json")
    report = check_files(onnx_path, tmp_path / "fixed.json", frames=17)
    assert report.chunk == 6 and report.passed
    assert [c.frames for c in report.comparisons] == [17, 9]


def test_convert_with_check_reports_and_exits_0(lstm_pair, tmp_path):
    onnx_path, _ = lstm_pair
    result = invoke("convert", onnx_path, "-o", tmp_path / "again.json", "--check")
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'again.json'}: lstm 3->7" in result.stdout and "passed" in result.stdout


def test_convert_writes_beside_the_model_by_default(lstm_pair):
    onnx_path, json_path = lstm_pair
    json_path.unlink()
    assert invoke("convert", onnx_path).exit_code == 0
    assert json.loads(json_path.read_text())["kelly_tc"]["source"] == "lstm.onnx"
