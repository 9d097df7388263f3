"""``--auto`` (``quant.granularity``): one scale per tensor, and int8 biases, only where accuracy allows."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from hypothesis import given, settings
from hypothesis import strategies as st
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
    per_tensor_trials = [t for t in chosen.trials if t["change"].startswith("per-tensor ")]
    assert chosen.trials[0]["change"] == "int8 biases" and len(per_tensor_trials) == 3  # W, R and the head's weight
    for index, trial in enumerate(chosen.trials):  # grouped scales are tried only after per tensor was refused
        if "rows per scale" in trial["change"]:
            previous = next(t for t in reversed(chosen.trials[:index]) if not "rows per scale" in t["change"] or t["accepted"])
            assert previous["change"].startswith("per-tensor ") and not previous["accepted"]


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


# ------------------------------------------------------------------------------ grouped scales
def blocky_stack() -> tuple[onnx.ModelProto, str]:
    """A Gemm stack whose first weight's 12 output rows come in three blocks of 4 with peaks 1e-3, 3e-2 and 1
    (every row of a block has the same peak): one scale for all rounds the small blocks away; one scale per
    block of 4 rows is exactly what a scale per row computes."""
    model = dense_stack(np.random.default_rng(12), sizes=(7, 12, 9, 5))
    first = _gemm_weights(model)[0]
    rows = Graph(model, shapes=False).array(first)
    rows = rows / np.max(np.abs(rows), axis=1, keepdims=True)
    _set(model, first, rows * np.repeat(np.float32([1e-3, 3e-2, 1.0]), 4)[:, None])
    return model, first


def test_a_weight_that_cannot_take_one_scale_takes_one_per_block_of_rows():
    model, first = blocky_stack()
    chosen, _ = _choose(model)
    assert first not in chosen.per_tensor
    assert chosen.grouped == {first: 4}, chosen.trials  # 4 rows per scale, tried before 2
    assert granularity.group_sizes(12, "Gemm") == [4, 2]
    assert granularity.group_sizes(4 * 40, "LSTM") == [40, 8, 4, 2]  # a group never straddles two gate blocks
    assert granularity.group_sizes(3 * 8, "GRU") == [8, 4, 2]


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 24), cols=st.integers(1, 9), data=st.data())
def test_grouped_quantization_shares_the_largest_row_scale_of_each_group(rows, cols, data):
    group = data.draw(st.sampled_from([g for g in range(1, rows + 1) if rows % g == 0]))
    array = np.asarray(data.draw(st.lists(st.floats(-4, 4, width=32), min_size=rows * cols, max_size=rows * cols)),
                       np.float32).reshape(rows, cols)
    q, scale = int8.quantize_symmetric(array, 0, group)
    blocks = scale.reshape(-1, group)
    assert np.all(blocks == blocks[:, :1])  # one scale per group
    _, merged_scale = int8.quantize_symmetric(array.reshape(rows // group, group * cols), 0)
    np.testing.assert_array_equal(blocks[:, 0], merged_scale)  # the scale of the group's rows taken as one row
    assert np.all(np.abs(int8.dequantize(q, scale, 0) - array) <= scale[:, None] / 2 * (1 + 1e-6))
    if group == 1:
        np.testing.assert_array_equal(scale, int8.quantize_symmetric(array, 0)[1])
    # the INT8 JSON recovers the very same integers and scales from the dequantized floats
    recovered = int8_json._requantize(int8.dequantize(q, scale, 0))
    np.testing.assert_array_equal(int8.dequantize(recovered.values, recovered.scale, 0), int8.dequantize(q, scale, 0))


@pytest.mark.parametrize("build, group", [("dense", 4), ("lstm", 8), ("lstm", 2)])
def test_grouped_scales_reach_the_engine_exactly_and_store_one_scale_per_group(tmp_path, build, group):
    from reference_engine.model import Engine
    from reference_engine.program import DENSE_INT8, LSTM_INT8, OP, PARAM0, PARAM1
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    if build == "dense":
        model, name = blocky_stack()
        kind, field, rows = DENSE_INT8, PARAM0, 12
    else:  # an LSTM's recurrent matrix R [1, 4H, H], H = 8: RTNeural reorders its gate blocks
        model = recurrent_model(np.random.default_rng(8), "LSTM", inputs=5, hidden=8, outputs=3)
        name = next(node.input[2] for node in model.graph.node if node.op_type == "LSTM")
        kind, field, rows = LSTM_INT8, PARAM1, 32
    grouped = int8.quantize_weights(model, True, False, frozenset(), {name: group}).model
    per_row = int8.quantize_weights(model, True, False).model
    engines = {}
    for label, quantized in (("grouped", grouped), ("per_row", per_row)):
        onnx_path = save_model(quantized, tmp_path / f"{label}.onnx")
        json_path = tmp_path / f"{label}.int8.json"
        int8_json.write_int8_model(int8_json.quantize_model(convert_file(onnx_path, tmp_path / f"{label}.json")), json_path)
        assert check_files(onnx_path, json_path, atol=CHECK_ATOL).passed  # exactly the ONNX model's weights
        engines[label] = Engine(int8_json.read_int8_model(json_path))
    row = next(r for r in engines["grouped"].program.table if r[OP] == kind)
    assert row[field] == group  # rows per stored scale
    saved = (rows - rows // group) * 4  # bytes of the scales no longer stored
    assert engines["per_row"].memory().weight_bytes - engines["grouped"].memory().weight_bytes >= saved - 64  # 64: alignment


@pytest.mark.parametrize("op, bias_bits", [("LSTM", 16), ("GRU", 16), ("LSTM", 8)])
def test_integer_biases_reach_the_engine_exactly(tmp_path, op, bias_bits):
    """Biases quantized per tensor (8 or 16 bits) are stored as integers by the engine in every layer: the
    LSTM's two ONNX biases are folded into one before quantizing (RTNeural keeps their sum), a GRU's B keeps
    one scale for its two halves. The INT8 JSON checks against the quantized ONNX (exact weights)."""
    from reference_engine.model import Engine
    from reference_engine.program import INT8_OPCODES, OP, PARAM2
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    model = recurrent_model(np.random.default_rng(9), op, inputs=5, hidden=7, outputs=3)
    quantized = int8.quantize_weights(model, True, True, bias_bits=bias_bits)
    onnx_path = save_model(quantized.model, tmp_path / "q.onnx")
    json_path = tmp_path / "q.int8.json"
    int8_json.write_int8_model(int8_json.quantize_model(convert_file(onnx_path, tmp_path / "q.json")), json_path)
    assert check_files(onnx_path, json_path, atol=CHECK_ATOL).passed
    table = Engine(int8_json.read_int8_model(json_path)).program.table
    forms = table[np.isin(table[:, OP], list(INT8_OPCODES.values())), PARAM2]
    assert forms.tolist() == [1 if bias_bits == 8 else 2] * 2  # the recurrent layer and the head
    # the float model computes the same within the quantization error (the fold changed nothing else)
    samples = calibration.random_samples(model, count=2)
    figures = report.worst(report.output_errors(calibration.run(model, samples), calibration.run(quantized.model, samples)))
    assert figures["cosine"] > 0.999
