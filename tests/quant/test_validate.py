"""The weight-shape validator names the node whose weights disagree."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from toolchain.errors import InputError

from quant.validate import check_weight_shapes
from tests.quant.models import conv_model, dense_stack, recurrent_model


def _resize(model: onnx.ModelProto, name: str, array: np.ndarray) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    tensor = next(t for t in model.graph.initializer if t.name == name)
    tensor.CopyFrom(numpy_helper.from_array(array, name))
    return model


def _weight(model, op, index):
    node = next(n for n in model.graph.node if n.op_type == op)
    return node.input[index], numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == node.input[index]))


def test_consistent_models_pass(catalog):
    for model in catalog.values():
        check_weight_shapes(model)


def test_a_dense_layer_reading_the_wrong_number_of_features_is_named():
    model = dense_stack(np.random.default_rng(0))
    name, weight = _weight(model, "Gemm", 1)
    broken = _resize(model, name, weight[:, :-1])
    with pytest.raises(InputError, match=r"node 'Gemm\d+' \(Gemm\): A gives 7 input features but B \[13, 6\] expects 6"):
        check_weight_shapes(broken)


def test_a_gru_bias_with_a_missing_gate_block_is_named():
    model = recurrent_model(np.random.default_rng(0), "GRU")
    name, bias = _weight(model, "GRU", 3)
    with pytest.raises(InputError, match=r"\(GRU\): B has shape \[1, 55\], expected \[1, 66\]"):
        check_weight_shapes(_resize(model, name, bias[:, :55]))


def test_a_conv_with_too_few_input_channels_is_named():
    model = conv_model(np.random.default_rng(0))
    node = [n for n in model.graph.node if n.op_type == "Conv"][1]
    weight = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == node.input[1]))
    with pytest.raises(InputError, match=r"\(Conv\): X has 9 channels but W \[7, 8, 3\]"):
        check_weight_shapes(_resize(model, node.input[1], weight[:, :-1]))
