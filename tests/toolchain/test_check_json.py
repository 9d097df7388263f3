"""``kelly-tc check MODEL.json``: a model file checked against the reference pair it ships.

AIDA-X files are built here as AIDA-X writes them: an RTNeural model (from a torch SimpleRNN via the
GuitarML converter, with ``in_skip``) plus ``input_batch``/``output_batch`` computed by torch (float32),
in the 1-D layout and in the ``[frames, inputs]`` layout of a knob model. Exit codes: 0 within the
bound, 1 beyond, 2 for no pair or a malformed one."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.toolchain.test_guitarml import simple_rnn_file
from toolchain.guitarml import check_input


def invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


def aidax_file(folder, unit, input_size, skip, layout_1d, frames=400):
    source, forward = simple_rnn_file(folder, unit, input_size, hidden=11, skip=skip, seed=3)
    target = folder / f"aidax_{unit}_{input_size}.json"
    assert invoke("convert", source, "-o", target).exit_code == 0
    document = json.loads(target.read_text())
    del document["kelly_tc"]  # an AIDA-X file carries only its own pair
    inputs = check_input(input_size, frames, seed=4)
    outputs = forward(inputs)
    document["input_batch"] = inputs[:, 0].tolist() if layout_1d else inputs.tolist()
    document["output_batch"] = outputs[:, 0].tolist() if layout_1d else outputs.tolist()
    target.write_text(json.dumps(document))
    return target


@pytest.mark.parametrize("unit,input_size,skip,layout_1d", [("GRU", 1, 1, True), ("LSTM", 2, 0, False)])
def test_an_aidax_file_passes_its_own_reference(tmp_path, unit, input_size, skip, layout_1d):
    path = aidax_file(tmp_path, unit, input_size, skip, layout_1d)
    result = invoke("check", path, "--json", tmp_path / "report.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["onnx_path"] == "input_batch/output_batch" and report["frames"] == 400
    assert [c["label"] for c in report["comparisons"]] == ["stream", "after reset (state left by noise)"]
    assert all(c["max_abs_error"] <= 1e-5 for c in report["comparisons"])  # measured <= 3e-7
    assert 0 < report["float32_spread"]["engine vs float64 evaluation"] < 1e-5


def test_a_wrong_model_for_the_reference_fails_with_exit_1(tmp_path):
    path = aidax_file(tmp_path, "GRU", 1, 1, True)
    document = json.loads(path.read_text())
    document["layers"][-1]["weights"][1][0] += 0.01  # the dense bias: the output moves by 0.01
    path.write_text(json.dumps(document))
    result = invoke("check", path)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}: max abs error 0.01") and "exceeded" in result.stderr


def test_a_kelly_tc_reference_pair_is_checked_too(tmp_path):
    from toolchain.cpp.reference_pair import set_reference_pair
    from toolchain.graph_json import read_model, write_model
    from toolchain.float64_eval import evaluate

    source, _ = simple_rnn_file(tmp_path, "LSTM", 1, hidden=5, skip=0)
    converted = tmp_path / "lstm.json"
    assert invoke("convert", source, "-o", converted).exit_code == 0
    model = read_model(converted).validate()
    inputs = check_input(1, 64)
    write_model(set_reference_pair(model, inputs, evaluate(model, inputs)), converted)
    result = invoke("check", converted)
    assert result.exit_code == 0, result.output
    assert "kelly_tc.reference" in result.stdout


def test_no_reference_pair_or_a_bad_one_is_exit_2(tmp_path):
    source, _ = simple_rnn_file(tmp_path, "LSTM", 1, hidden=5, skip=0)
    converted = tmp_path / "plain.json"
    assert invoke("convert", source, "-o", converted).exit_code == 0
    result = invoke("check", converted)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {converted}: no reference pair to check against: the file has neither kelly_tc.reference nor")
    document = json.loads(converted.read_text())
    document.update(input_batch=[0.1, 0.2, 0.3], output_batch=[0.1, 0.2])
    converted.write_text(json.dumps(document))
    result = invoke("check", converted)
    assert result.exit_code == 2
    assert result.stderr == f"error: {converted}: input_batch/output_batch: 3 input frames but 2 output frames\n"


def test_an_onnx_file_alone_is_refused(tmp_path):
    result = invoke("check", tmp_path / "model.onnx")
    assert result.exit_code == 2 and "give the RTNeural JSON to compare with" in result.stderr


def test_the_header_self_test_carries_the_aidax_pair(tmp_path):
    from toolchain.cpp.header import generate_header
    from toolchain.rtneural_json import read_model

    path = aidax_file(tmp_path, "LSTM", 2, 0, False, frames=37)
    text = generate_header(read_model(path), name="Amp", namespace="amp")
    assert "constexpr int reference_frames = 37;" in text
