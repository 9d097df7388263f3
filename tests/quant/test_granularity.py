"""``--auto`` (``quant.granularity``): one scale per tensor, and int8 biases, only where accuracy allows."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from typer.testing import CliRunner

from quant import calibration, granularity, int8, int8_json, report
from quant.onnx_graph import Graph, save_model, weight_bytes
from tests.quant.models import dense_stack, recurrent_model

#: The INT8 JSON of a quantized model against onnxruntime on that model: float32 rounding only.
CHECK_ATOL = 1e-5


def _gemm_weights(model: onnx.ModelProto) -> list[str]:
    return [node.input[1] for node in model.graph.node if node.op_type == "Gemm"]


def _set(model: onnx.ModelProto, name: str, array: np.ndarray) -> None:
    Graph(model, shapes=False).set_initializer(name, array.astype(np.float32))


def uneven_and_even_stack() -> tuple[onnx.ModelProto, str, str]:
    """A Gemm stack whose first weight has rows of very different magnitude (one scale for all of them
    would round the small rows away) and whose second has rows of equal peak (one scale is exact)."""
    model = dense_stack(np.random.default_rng(11), sizes=(7, 13, 11, 5))
    graph = Graph(model, shapes=False)
    first, second, _ = _gemm_weights(model)
    _set(model, first, graph.array(first) * np.logspace(-3, 0, 13, dtype=np.float32)[:, None])
    rows = graph.array(second)
    _set(model, second, rows / np.max(np.abs(rows), axis=1, keepdims=True))
    return model, first, second


def _choose(model, count=3):
    samples = calibration.random_samples(model, count=count)
    return granularity.choose(model, samples, calibration.run(model, samples)), samples


def test_auto_keeps_per_channel_scales_where_one_scale_would_lose_small_rows():
    model, uneven, even = uneven_and_even_stack()
    chosen, _ = _choose(model)
    assert uneven not in chosen.per_tensor
    assert even in chosen.per_tensor  # its rows share one peak: per tensor computes exactly the same


def test_auto_form_stays_within_its_error_budget_on_the_calibration_input():
    model = recurrent_model(np.random.default_rng(4), "LSTM", inputs=9, hidden=17, outputs=5)
    chosen, samples = _choose(model)
    quantized = int8.quantize_weights(model, True, chosen.biases, chosen.per_tensor).model
    figures = report.worst(report.output_errors(calibration.run(model, samples), calibration.run(quantized, samples)))
    assert figures["error_to_signal"] <= granularity.MAX_ERROR_GROWTH * chosen.baseline["error_to_signal"]
    assert figures["cosine"] >= granularity.MIN_COSINE
    assert len(chosen.trials) == 1 + 3  # int8 biases, then W, R and the head's weight


def test_auto_model_has_fewer_weight_bytes_than_per_channel_when_something_was_switched():
    model, _, _ = uneven_and_even_stack()
    chosen, _ = _choose(model)
    assert chosen.per_tensor
    auto = int8.quantize_weights(model, True, chosen.biases, chosen.per_tensor).model
    assert weight_bytes(auto) < weight_bytes(int8.quantize_weights(model).model)


def test_int8_json_of_an_auto_model_checks_against_its_onnx(tmp_path):
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    # a mixed form: the GRU's W and the head per tensor, its R per gate row, int8 biases
    model = recurrent_model(np.random.default_rng(6), "GRU", inputs=9, hidden=17, outputs=5)
    per_tensor = frozenset(node.input[1] for node in model.graph.node if node.op_type in ("GRU", "MatMul"))
    quantized = int8.quantize_weights(model, True, True, per_tensor).model
    onnx_path = save_model(quantized, tmp_path / "auto.onnx")
    int8_json.write_int8_model(int8_json.quantize_model(convert_file(onnx_path, tmp_path / "auto.json")), tmp_path / "auto.int8.json")
    assert check_files(onnx_path, tmp_path / "auto.int8.json", atol=CHECK_ATOL).passed


def _invoke(*arguments):
    from toolchain.cli import app

    return CliRunner().invoke(app, [str(a) for a in arguments])


def test_quantize_auto_reports_its_choice_and_every_trial(tmp_path):
    model, _, even = uneven_and_even_stack()
    onnx.save(model, str(tmp_path / "m.onnx"))
    result = _invoke("quantize", tmp_path / "m.onnx", "--int8", "--auto", "--no-compare", "-o", tmp_path / "q.onnx",
                     "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "r.json").read_text())
    assert even in figures["granularity"]["per_tensor"]
    assert [t["change"] for t in figures["granularity"]["trials"]][0] == "int8 biases"
    scales = {numpy_helper.to_array(t).shape for t in onnx.load(str(tmp_path / "q.onnx")).graph.initializer if t.name.startswith(even)}
    assert () in scales  # the even weight got a scalar scale


@pytest.mark.parametrize("flag", ["--per-tensor", "--quantize-biases"])
def test_quantize_auto_refuses_a_fixed_granularity_with_a_one_line_error(tmp_path, flag):
    model, _, _ = uneven_and_even_stack()
    onnx.save(model, str(tmp_path / "m.onnx"))
    result = _invoke("quantize", tmp_path / "m.onnx", "--int8", "--auto", flag, "--no-compare")
    assert result.exit_code == 2
    assert "--auto chooses the scales and the bias format itself" in result.output
