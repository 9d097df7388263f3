"""``kelly-tc run MODEL.json --input X [-o Y]``: frame by frame through the engine, npy and csv."""
from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.reference_engine.conftest import RTNEURAL_CASES, rtneural_case


def invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


def test_run_reproduces_rtneural_outputs_from_its_csv_test_vectors(rtneural_testdata, tmp_path):
    model_path, _, expected = rtneural_case(rtneural_testdata, "lstm")
    output = tmp_path / "lstm_y.csv"
    result = invoke("run", model_path, "--input", rtneural_testdata / "test_data" / "lstm_x_python.csv", "-o", output)
    assert result.exit_code == 0, result.output
    outputs = np.loadtxt(output, delimiter=",", ndmin=2)
    assert np.abs(outputs - expected).max() <= RTNEURAL_CASES["lstm"]


def test_run_npy_in_npy_out_beside_the_input_by_default(rtneural_testdata, tmp_path):
    model_path, frames, expected = rtneural_case(rtneural_testdata, "gru")
    np.save(tmp_path / "x.npy", frames.astype(np.float64))  # float64 input is converted explicitly
    result = invoke("run", model_path, "--input", tmp_path / "x.npy")
    assert result.exit_code == 0, result.output
    outputs = np.load(tmp_path / "x.out.npy")
    assert outputs.dtype == np.float32 and outputs.shape == expected.shape
    assert np.abs(outputs - expected).max() <= RTNEURAL_CASES["gru"]
    assert "100 frames" in result.stdout


@pytest.mark.parametrize("content,reason", [
    (np.zeros((4, 3), np.float32), "expected frames of shape [frames, 1], got [4, 3]"),
    (np.array(["a", "b"]), "expected numbers"),
], ids=["wrong-width", "strings"])
def test_run_refuses_frames_that_do_not_fit_the_model(rtneural_testdata, tmp_path, content, reason):
    np.save(tmp_path / "x.npy", content)
    result = invoke("run", rtneural_testdata / "models" / "lstm.json", "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npy")
    assert result.exit_code == 2
    assert reason in result.stderr and "x.npy" in result.stderr
    assert not (tmp_path / "y.npy").exists()


def test_run_refuses_an_unreadable_csv_and_writes_nothing(rtneural_testdata, tmp_path):
    (tmp_path / "x.csv").write_text("0.1\nnot-a-number\n")
    result = invoke("run", rtneural_testdata / "models" / "lstm.json", "--input", tmp_path / "x.csv", "-o", tmp_path / "y.csv")
    assert result.exit_code == 2 and "x.csv" in result.stderr
    assert not (tmp_path / "y.csv").exists()


def test_run_refuses_a_bad_model_with_one_line(rtneural_testdata, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 1), np.float32))
    result = invoke("run", rtneural_testdata / "models" / "bad_lstm.json", "--input", tmp_path / "x.npy")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "bad_lstm.json: layers[0] (lstm)" in result.stderr


def test_run_refuses_an_unknown_output_format(rtneural_testdata, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 1), np.float32))
    result = invoke("run", rtneural_testdata / "models" / "lstm.json", "--input", tmp_path / "x.npy", "-o", tmp_path / "y.txt")
    assert result.exit_code == 2 and "use .npy or .csv" in result.stderr
