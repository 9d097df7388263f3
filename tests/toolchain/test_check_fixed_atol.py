"""``kelly-tc check --atol``, by behaviour: a model whose output is off by a known amount passes or fails the
fixed bound exactly where it says, and the default judgment (a float64 run of the ONNX graph,
``tests/toolchain/test_check_tolerance.py``) passes the exact conversion and fails a 4e-5 shift as well."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from toolchain.cli import app
from toolchain.convert import convert_file


@pytest.fixture
def linear_model(tmp_path):
    """x [time, 5] -> Gemm (7 x 5, linear output): a bias shifted by d moves that output by exactly d."""
    rng = np.random.default_rng(31)
    node = helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="dense", transB=1)
    graph = helper.make_graph([node], "linear", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["time", 7])],
                              [numpy_helper.from_array(rng.uniform(-1, 1, (7, 5)).astype(np.float32), "W"),
                               numpy_helper.from_array(rng.uniform(-1, 1, 7).astype(np.float32), "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    convert_file(tmp_path / "m.onnx", tmp_path / "m.json")
    return tmp_path / "m.onnx", tmp_path / "m.json"


def shifted(json_path, shift: float):
    document = json.loads(json_path.read_text())
    document["layers"][0]["weights"][1][3] += shift  # RTNeural dense: weights = [kernel [in][out], bias [out]]
    path = json_path.with_name(f"shifted_{shift:g}.json")
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("shift,exit_code", [(0.0, 0), (4e-6, 0), (-4e-6, 0), (4e-5, 1), (-4e-5, 1)])
def test_a_fixed_atol_passes_errors_below_it_and_fails_errors_above(linear_model, shift, exit_code):
    onnx_path, json_path = linear_model
    result = CliRunner().invoke(app, ["check", str(onnx_path), str(shifted(json_path, shift)), "--atol", "1e-5"])
    assert result.exit_code == exit_code, result.output


@pytest.mark.parametrize("shift,exit_code", [(0.0, 0), (4e-5, 1), (-4e-5, 1)])
def test_the_default_judgment_passes_the_exact_conversion_and_fails_a_small_shift(linear_model, shift, exit_code):
    onnx_path, json_path = linear_model
    result = CliRunner().invoke(app, ["check", str(onnx_path), str(shifted(json_path, shift))])
    assert result.exit_code == exit_code, result.output


def test_an_explicit_atol_moves_the_line(linear_model):
    onnx_path, json_path = linear_model
    assert CliRunner().invoke(app, ["check", str(onnx_path), str(shifted(json_path, 4e-5)), "--atol", "1e-4"]).exit_code == 0
