"""INT8 models of every layer kind: standard ONNX that onnxruntime runs, with the intended numbers."""
from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from toolchain.errors import UnsupportedError

from quant import calibration, int8, report
from quant.onnx_graph import Graph, weight_bytes
from tests.quant.conftest import max_difference, outputs
from tests.quant.models import KINDS, dense_stack, recurrent_model


def _dequantized_float_model(model: onnx.ModelProto, result: int8.QuantizeResult) -> onnx.ModelProto:
    """``model`` with each quantized weight replaced by numpy's ``q * scale``: what the QDQ graph must compute."""
    graph = Graph(result.model, shapes=False)
    restored = {}
    for node in result.model.graph.node:
        if node.op_type == "DequantizeLinear" and graph.is_initializer(node.input[0]):
            axis = next((a.i for a in node.attribute if a.name == "axis"), None)
            scale = graph.array(node.input[1])
            restored[node.input[0].removesuffix("_quantized")] = int8.dequantize(graph.array(node.input[0]), scale, axis if scale.ndim else None)
    expected = copy.deepcopy(model)
    for tensor in expected.graph.initializer:
        if tensor.name in restored:
            tensor.CopyFrom(numpy_helper.from_array(restored[tensor.name], tensor.name))
    return expected


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_quantized_model_runs_in_onnxruntime_and_computes_the_dequantized_weights(catalog, kind):
    model = catalog[kind]
    result = int8.quantize_weights(model)
    samples = calibration.random_samples(model, count=2)
    # Same weights (q * scale) in float vs through DequantizeLinear: only float rounding differs.
    assert max_difference(outputs(result.model, samples), outputs(_dequantized_float_model(model, result), samples)) < 1e-5


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_quantized_outputs_stay_close_to_float(catalog, kind):
    model = catalog[kind]
    samples = calibration.random_samples(model, count=2)
    errors = report.output_errors(outputs(model, samples), outputs(int8.quantize_weights(model).model, samples))
    assert report.worst(errors)["cosine"] >= 0.999


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_recurrent_weights_get_one_scale_per_gate_row(catalog, op):
    model = catalog[op.lower()]
    result = int8.quantize_weights(model)
    nodes = [n for n in result.model.graph.node if n.op_type == "DequantizeLinear"]
    graph = Graph(result.model, shapes=False)
    recurrent = next(n for n in result.model.graph.node if n.op_type == op)
    hidden, gates = 11, 4 if op == "LSTM" else 3
    for index in (1, 2):  # W and R
        dq = next(n for n in nodes if n.output[0] == recurrent.input[index])
        assert graph.array(dq.input[1]).shape == (gates * hidden,)
        assert [a.i for a in dq.attribute if a.name == "axis"] == [1]
        assert graph.array(dq.input[0]).dtype == np.int8


def test_per_tensor_mode_uses_one_scalar_scale_per_weight(catalog):
    result = int8.quantize_weights(catalog["mixed"], per_channel=False)
    graph = Graph(result.model, shapes=False)
    scales = [graph.array(n.input[1]) for n in result.model.graph.node if n.op_type == "DequantizeLinear"]
    assert scales and all(s.shape == () for s in scales)


def test_weight_bytes_shrink_to_about_a_quarter_for_a_realistically_sized_model():
    # 64 inputs, 96 hidden: the share of float biases and per-row scales is what a Kelly model has.
    model = recurrent_model(np.random.default_rng(5), "LSTM", inputs=64, hidden=96, outputs=32)
    quantized = int8.quantize_weights(model).model
    assert weight_bytes(quantized) <= 0.30 * weight_bytes(model)


def test_an_old_opset_is_upgraded_for_per_axis_dequantize():
    model = dense_stack(np.random.default_rng(3))
    model.opset_import[0].version = 11  # Gemm and Relu read the same at opset 11
    onnx.checker.check_model(model)
    result = int8.quantize_weights(model)
    assert (result.opset_before, result.opset_after) == (11, 13)
    samples = calibration.random_samples(model, count=1)
    assert report.worst(report.output_errors(outputs(model, samples), outputs(result.model, samples)))["cosine"] > 0.999


def test_an_opset_that_cannot_be_upgraded_is_refused_with_a_clear_error():
    model = dense_stack(np.random.default_rng(3))
    model.opset_import[0].version = 7
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("not_an_attribute", 1))  # breaks conversion
    with pytest.raises(UnsupportedError, match="opset 7: per-channel DequantizeLinear needs opset >= 13"):
        int8.quantize_weights(model)


def test_activation_quantization_puts_a_qdq_pair_on_every_weighted_op_input(catalog):
    model = catalog["mixed"]
    samples = calibration.random_samples(model, count=3)
    result = int8.quantize_weights(model)
    tensors = int8.activation_tensors(model)
    int8.add_activation_qdq(result, calibration.collect_ranges(model, samples, tensors))
    weighted = [n for n in result.model.graph.node if n.op_type in ("Conv", "LSTM", "GRU", "MatMul")]
    producers = {o: n for n in result.model.graph.node for o in n.output}
    assert all(producers[n.input[0]].op_type == "DequantizeLinear" for n in weighted)
    errors = report.output_errors(outputs(model, samples), outputs(result.model, samples))
    assert report.worst(errors)["cosine"] >= 0.99  # 8-bit activations cost more than 8-bit weights


def test_minmax_calibration_finds_the_input_range_and_percentile_stays_inside_it(catalog):
    model = catalog["gemm"]
    samples = calibration.random_samples(model, count=3)
    every_value = np.concatenate([s["x"].ravel() for s in samples])
    minmax = calibration.collect_ranges(model, samples, ["x"], "minmax")["x"]
    percentile = calibration.collect_ranges(model, samples, ["x"], "percentile", 99.0)["x"]
    assert minmax == (float(every_value.min()), float(every_value.max()))
    assert minmax[0] < percentile[0] < percentile[1] < minmax[1]
    np.testing.assert_allclose(percentile, np.percentile(every_value, [1.0, 99.0]), rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.floats(-50, 50), st.floats(0, 50))
def test_activation_qdq_keeps_zero_exact_and_the_calibrated_range_within_half_a_scale(low, width):
    high = low + width
    scale, zero_point = int8.activation_qparams(low, high)
    values = np.concatenate([np.linspace(min(low, 0), max(high, 0), 101), [0.0]]).astype(np.float32)
    # onnx's reference evaluator is the independent implementation of QuantizeLinear/DequantizeLinear.
    node_q = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])
    node_dq = helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])
    graph = helper.make_graph([node_q, node_dq], "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
                              [numpy_helper.from_array(np.array(scale, np.float32), "s"),
                               numpy_helper.from_array(np.array(zero_point, np.int8), "z")])
    restored = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])).run(None, {"x": values})[0]
    assert restored[-1] == 0.0
    # half a step, plus float32 rounding of x / scale and of the product (a few ulps of the largest value)
    assert np.all(np.abs(restored - values) <= scale / 2 + 4 * np.spacing(np.float32(max(abs(low), abs(high), 1))))


def test_biases_are_quantized_per_tensor_only_on_request(catalog):
    model = catalog["mixed"]
    plain, compact = int8.quantize_weights(model), int8.quantize_weights(model, biases=True)
    biases = {r.name for r in compact.weights} - {r.name for r in plain.weights}
    # the conv's B, both recurrent B, and the two bias Adds after the MatMuls
    assert len(biases) == 5 and all(r.axis is None for r in compact.weights if r.name in biases)
    assert weight_bytes(compact.model) < weight_bytes(plain.model)
    samples = calibration.random_samples(model, count=2)
    assert max_difference(outputs(compact.model, samples), outputs(_dequantized_float_model(model, compact), samples)) < 1e-5
