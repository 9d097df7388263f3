"""Converter behaviours on small hand-built graphs: folding, merging, shape-only removal, layouts.

Numerical claims are checked with ``check_files`` against onnxruntime (or onnx.reference where
onnxruntime refuses the model), tolerance 1e-5 absolute.
"""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from tests.fixtures import onnx_graphs as graphs
from toolchain import gates
from toolchain.check import check_files
from toolchain.convert import convert_file
from toolchain.onnx_import import import_model_proto
from toolchain.rtneural_json import model_to_json

ATOL = 1e-5


def kinds(model) -> list[str]:
    return [layer.kind + (f":{layer.activation}" if getattr(layer, "activation", "") else "") for layer in model.layers]


def converted_and_checked(proto, tmp_path, name="model"):
    """Save, convert, check against the ONNX runtime; return (model, report)."""
    onnx_path = graphs.save(proto, tmp_path / f"{name}.onnx")
    model = convert_file(onnx_path, tmp_path / f"{name}.json")
    report = check_files(onnx_path, tmp_path / f"{name}.json", frames=24)
    assert report.passed, report.to_json()
    return model, report


def test_constant_gate_shuffle_is_folded_like_plain_weights(rng, tmp_path):
    """The dynamo exporter (unoptimised) slices torch's i,f,g,o blocks and concatenates them in ONNX's
    i,o,f,c order: the converter must evaluate that subgraph, not refuse it as a dynamic weight."""
    hidden, features = 5, 3
    torch_order_w = graphs.random(rng, 1, 4 * hidden, features)
    r, b = graphs.random(rng, 1, 4 * hidden, hidden), graphs.random(rng, 1, 8 * hidden)
    starts = {gate: np.array([index * hidden], np.int64) for index, gate in enumerate(gates.LSTM_TORCH)}
    nodes = [helper.make_node("Slice", ["W_torch", f"start_{g}", f"end_{g}", "axis1"], [f"block_{g}"], name=f"slice_{g}")
             for g in gates.LSTM_TORCH]
    nodes.append(helper.make_node("Concat", [f"block_{g}" for g in gates.LSTM_ONNX], ["W"], name="concat", axis=1))
    nodes.append(helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], name="lstm", hidden_size=hidden))
    initializers = {"W_torch": torch_order_w, "R": r, "B": b, "axis1": np.array([1], np.int64)}
    initializers.update({f"start_{g}": s for g, s in starts.items()})
    initializers.update({f"end_{g}": s + hidden for g, s in starts.items()})
    proto = graphs.model(nodes, [graphs.value("x", ["time", "batch", features])], [graphs.value("y", ["time", 1, "batch", hidden])],
                         initializers)
    model, _ = converted_and_checked(proto, tmp_path)
    direct = graphs.lstm(gates.reorder_gates(torch_order_w, gates.LSTM_TORCH, gates.LSTM_ONNX, axis=1), r, b)
    assert model_to_json(model)["layers"] == model_to_json(import_model_proto(direct).model)["layers"]


def test_dequantized_int8_weights_fold_to_their_float_values(rng, tmp_path):
    quantized = rng.integers(-127, 128, size=(7, 5), dtype=np.int8)
    scale, zero_point = np.float32(0.0123), np.int8(3)
    nodes = [helper.make_node("DequantizeLinear", ["W_q", "scale", "zero"], ["W"], name="dequantize"),
             helper.make_node("MatMul", ["x", "W"], ["xw"], name="matmul"),
             helper.make_node("Add", ["xw", "b"], ["y"], name="add")]
    proto = graphs.model(nodes, [graphs.value("x", ["batch", "time", 7])], [graphs.value("y", ["batch", "time", 5])],
                         {"W_q": quantized, "scale": scale, "zero": zero_point, "b": graphs.random(rng, 5)})
    model, _ = converted_and_checked(proto, tmp_path)
    expected = ((quantized.astype(np.float32) - np.float32(zero_point)) * scale).T
    np.testing.assert_array_equal(model.layers[0].weight, expected)


def test_activation_folds_into_a_linear_dense_and_stands_alone_after_it(rng, tmp_path):
    proto = graphs.dense(graphs.random(rng, 13, 6), graphs.random(rng, 6), activation="Tanh")
    proto.graph.node.append(helper.make_node("Relu", ["y"], ["y2"], name="relu"))
    proto.graph.output[0].name = "y2"
    model, _ = converted_and_checked(proto, tmp_path)
    assert kinds(model) == ["dense:tanh", "activation:relu"]


def test_gemm_alpha_beta_and_transposed_weight_fold_into_dense(rng, tmp_path):
    nodes = [helper.make_node("Gemm", ["x", "B", "C"], ["y"], name="gemm", alpha=0.7, beta=-1.3, transB=1)]
    proto = graphs.model(nodes, [graphs.value("x", ["frames", 9])], [graphs.value("y", ["frames", 4])],
                         {"B": graphs.random(rng, 4, 9), "C": graphs.random(rng, 1, 4)})
    model, report = converted_and_checked(proto, tmp_path)
    assert kinds(model) == ["dense"] and report.chunk is None


def test_leaky_relu_becomes_a_shared_slope_prelu(rng, tmp_path):
    proto = graphs.dense(graphs.random(rng, 3, 4), graphs.random(rng, 4), activation="LeakyRelu")
    model, _ = converted_and_checked(proto, tmp_path)
    assert kinds(model) == ["dense", "prelu"]
    assert model.layers[1].alpha.tolist() == [pytest.approx(0.01)]


def test_both_causal_conv_patterns_give_the_same_layer(rng, tmp_path):
    weight, bias = graphs.random(rng, 6, 2, 3), graphs.random(rng, 6)
    in_conv, _ = converted_and_checked(graphs.conv(weight, bias, pads=[4, 0], dilations=[2], group=2), tmp_path, "pads")
    with_pad, _ = converted_and_checked(graphs.conv(weight, bias, left_pad_node=4, dilations=[2], group=2), tmp_path, "pad_node")
    assert model_to_json(in_conv)["layers"] == model_to_json(with_pad)["layers"]
    assert (in_conv.layers[0].dilation, in_conv.layers[0].groups) == (2, 2)


def test_batchwise_layout_runs_in_onnx_reference_when_onnxruntime_refuses_it(rng, tmp_path):
    hidden = 4
    proto = graphs.gru(graphs.random(rng, 1, 3 * hidden, 3), graphs.random(rng, 1, 3 * hidden, hidden),
                       graphs.random(rng, 1, 6 * hidden), layout=1, squeeze=True)
    model, report = converted_and_checked(proto, tmp_path)
    assert report.runtime == "onnx.reference"
    assert kinds(model) == ["gru"]


def test_identity_dropout_and_float_cast_are_removed(rng, tmp_path):
    proto = graphs.dense(graphs.random(rng, 3, 4), graphs.random(rng, 4))
    proto.graph.node.extend([helper.make_node("Identity", ["y"], ["same"], name="identity"),
                             helper.make_node("Dropout", ["same"], ["kept"], name="dropout"),
                             helper.make_node("Cast", ["kept"], ["cast"], name="cast", to=TensorProto.FLOAT)])
    proto.graph.output[0].name = "cast"
    model, _ = converted_and_checked(proto, tmp_path)
    assert kinds(model) == ["dense"]


def test_softmax_note_is_recorded_in_the_json_metadata(rng):
    proto = graphs.dense(graphs.random(rng, 3, 4), graphs.random(rng, 4), activation="Softmax")
    model = import_model_proto(proto).model
    assert kinds(model) == ["dense:softmax"]
    assert any("without subtracting the maximum" in note for note in model.metadata["kelly_tc"]["notes"])


def test_input_with_features_first_maps_axes_by_role(rng, tmp_path):
    """A conv model fed [batch, features, time] directly: the IO spec says so, check feeds it so."""
    proto = graphs.conv(graphs.random(rng, 5, 3, 2), graphs.random(rng, 5), pads=[1, 0])
    model, _ = converted_and_checked(proto, tmp_path)
    io = import_model_proto(proto).io
    assert io.input.roles == ("batch", "feature", "time") and io.output.roles == ("batch", "feature", "time")


def test_local_functions_are_inlined_before_conversion(rng, tmp_path):
    """Exporters may wrap ops in model-local functions (a custom domain): they are inlined first."""
    function = helper.make_function("local", "ScaledTanh", ["a"], ["b"], [helper.make_node("Tanh", ["a"], ["b"])],
                                    [helper.make_opsetid("", graphs.OPSET)])
    proto = graphs.dense(graphs.random(rng, 3, 4), graphs.random(rng, 4))
    proto.graph.node.append(helper.make_node("ScaledTanh", ["y"], ["out"], name="wrapped", domain="local"))
    proto.graph.output[0].name = "out"
    proto.functions.append(function)
    proto.opset_import.append(helper.make_opsetid("local", 1))
    model, _ = converted_and_checked(proto, tmp_path)
    assert kinds(model) == ["dense:tanh"]
