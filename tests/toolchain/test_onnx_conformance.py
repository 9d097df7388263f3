"""onnx's own operator conformance cases for the ops kelly-tc converts, run in the reference engine.

Every case of a supported layer op is either accepted (converted, run frame by frame, compared
with onnx's expected output) or listed below as out of scope with the reason -- nothing is dropped
silently: the classification tests assert the exact sets. Tolerance: 1e-5 absolute + 1e-5 relative
(float32 engine against numpy-computed expectations with magnitudes up to ~12; measured <= 1e-6).

These cases use fixed weights, so they cannot catch a gate-order bug: the random-weight property
tests in tests/properties/ do that.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
from onnx import helper

from tests.conftest import unavailable

from reference_engine.model import Engine
from tests.fixtures.conformance import node_cases, pytorch_converted_cases, run_sequences, sequences
from toolchain.errors import KellyError
from toolchain.onnx_import import import_model_proto

ATOL = RTOL = 1e-5

NODE_ACCEPTED = (
    "test_batchnorm_example", "test_batchnorm_epsilon", "test_elu_default",
    "test_gemm_default_zero_bias", "test_gemm_default_no_bias", "test_gemm_default_scalar_bias",
    "test_gemm_default_single_elem_vector_bias", "test_gemm_default_vector_bias", "test_gemm_transposeA", "test_gemm_transposeB",
    "test_gemm_alpha", "test_gemm_beta", "test_gemm_all_attributes",
    "test_leakyrelu_example", "test_leakyrelu", "test_leakyrelu_default",
    "test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_batchwise",
    "test_matmul_2d", "test_prelu_broadcast", "test_relu", "test_sigmoid_example", "test_sigmoid",
    "test_softmax_example", "test_softmax_axis_0", "test_softmax_axis_1", "test_softmax_axis_2",
    "test_softmax_negative_axis", "test_softmax_default_axis", "test_tanh_example", "test_tanh",
)
#: Accepted, and different from ONNX by design of RTNeural (documented in rtneural-format.md).
NODE_DIVERGENT = {"test_softmax_large_number": "RTNeural's softmax does not subtract the maximum: exp(10000) overflows to NaN"}

LINEAR_BEFORE_RESET_0 = "GRU with linear_before_reset=0"
# 2-D convolutions convert to RTNeural's conv2d when causal over time (axis 2); these cases are not:
CONV2D_RIGHT_PAD = "pads the time axis (axis 2) with 1 frames on the right"
CONV2D_SHIFTED = "the output would be the streaming output shifted by 2 frames"
CONV2D_TIME_STRIDE = "stride 2 over time"
CONV2D_GROUPS = "RTNeural's conv2d has no groups"
BATCHED_MATMUL = "-D constant operand; a dense layer needs a 2-D matrix"
NODE_OUT_OF_SCOPE = {
    "test_batchnorm_example_training_mode": "the graph has 3 outputs",
    "test_batchnorm_epsilon_training_mode": "the graph has 3 outputs",
    "test_basic_conv_with_padding": CONV2D_RIGHT_PAD, "test_basic_conv_without_padding": CONV2D_SHIFTED,
    "test_conv_with_strides_padding": CONV2D_TIME_STRIDE, "test_conv_with_strides_no_padding": CONV2D_TIME_STRIDE,
    "test_conv_with_strides_and_asymmetric_padding": CONV2D_TIME_STRIDE,
    "test_conv_with_autopad_same": "auto_pad=SAME_LOWER: centres the kernel over time too",
    "test_elu_example": "Elu with alpha=2; RTNeural's elu has alpha fixed at 1",
    "test_elu": "Elu with alpha=2; RTNeural's elu has alpha fixed at 1",
    "test_gemm_default_matrix_bias": "bias C of shape [3, 4] varies along 2 axes",
    "test_gru_defaults": LINEAR_BEFORE_RESET_0, "test_gru_with_initial_bias": LINEAR_BEFORE_RESET_0,
    "test_gru_seq_length": LINEAR_BEFORE_RESET_0, "test_gru_batchwise": LINEAR_BEFORE_RESET_0,
    "test_gru_reverse": "GRU with direction 'reverse'", "test_gru_bidirectional": "bidirectional GRU",
    "test_lstm_with_peepholes": "LSTM with sequence_lens", "test_lstm_reverse": "LSTM with direction 'reverse'",
    "test_lstm_bidirectional": "bidirectional LSTM",
    "test_matmul_3d": BATCHED_MATMUL, "test_matmul_4d": BATCHED_MATMUL, "test_matmul_bcast": BATCHED_MATMUL,
    "test_matmul_1d_3d": BATCHED_MATMUL, "test_matmul_4d_1d": BATCHED_MATMUL, "test_matmul_1d_1d": BATCHED_MATMUL,
    "test_prelu_example": "slope of shape [3, 4, 5] varies along 3 axes",
}

PYTORCH_ACCEPTED = (
    "test_BatchNorm1d_3d_input_eval", "test_BatchNorm2d_eval", "test_BatchNorm2d_momentum_eval", "test_BatchNorm3d_eval",
    "test_BatchNorm3d_momentum_eval", "test_LeakyReLU", "test_LeakyReLU_with_negval", "test_Linear", "test_Linear_no_bias",
    "test_PReLU_1d", "test_PReLU_2d", "test_PReLU_3d", "test_ReLU", "test_Sigmoid", "test_Softmax", "test_Tanh",
    "test_softmax_functional_dim3", "test_softmax_lastdim",
    "test_GLU", "test_GLU_dim",  # Split of the features, sigmoid, Mul: a graph since issue 11
)
#: Refused as they are (their output is shifted against a streaming conv1d), and checked below
#: after rewriting their padding to the causal form, with the offset stated.
PYTORCH_SHIFTED_CONV = ("test_Conv1d", "test_Conv1d_dilated", "test_Conv1d_groups", "test_Conv1d_pad1", "test_Conv1d_pad1size1",
                        "test_Conv1d_pad2", "test_Conv1d_pad2size1")
#: The opset-6 -> 13 upgrade keeps opset 6's per-channel slope [C], which opset >= 7 broadcasts
#: against the last axis: the upgraded model is invalid (onnxruntime refuses it too).
OLD_PRELU = "slope has 3 values along axis"
UNSUPPORTED = "unsupported op"
PYTORCH_OUT_OF_SCOPE = {
    **{name: CONV2D_SHIFTED for name in ("test_Conv2d", "test_Conv2d_no_bias")},
    **{name: CONV2D_TIME_STRIDE for name in ("test_Conv2d_dilated", "test_Conv2d_padding", "test_Conv2d_strided")},
    **{name: CONV2D_GROUPS for name in ("test_Conv2d_depthwise", "test_Conv2d_depthwise_padded", "test_Conv2d_depthwise_strided",
                                        "test_Conv2d_depthwise_with_multiplier", "test_Conv2d_groups", "test_Conv2d_groups_thnn")},
    **{name: "3-D Conv" for name in ("test_Conv3d", "test_Conv3d_dilated", "test_Conv3d_dilated_strided", "test_Conv3d_groups",
                                     "test_Conv3d_no_bias", "test_Conv3d_stride", "test_Conv3d_stride_padding")},
    "test_Conv1d_stride": "Conv with stride 2",
    "test_ELU": "Elu with alpha=2",
    "test_Softmin": UNSUPPORTED + " Neg",
    "test_PReLU_1d_multiparam": OLD_PRELU, "test_PReLU_2d_multiparam": OLD_PRELU, "test_PReLU_3d_multiparam": OLD_PRELU,
}


def classify(cases) -> tuple[set[str], dict[str, str]]:
    accepted, refused = set(), {}
    for name, case in cases.items():
        try:
            import_model_proto(case.model)
            accepted.add(name)
        except KellyError as error:
            refused[name] = error.line()
    return accepted, refused


def engine_and_expected(case):
    """(engine outputs, expected outputs), both as [sequences, time, features]."""
    imported = import_model_proto(case.model)
    outputs = run_sequences(Engine(imported.model), sequences(case.input, imported.io.input))
    if case.final_state:  # Y_h is the output at the last frame
        return outputs[:, -1, :], case.expected.reshape(outputs.shape[0], -1)
    return outputs, sequences(case.expected, imported.io.output)


# ----------------------------------------------------------------------------- onnx node cases
def test_node_cases_are_accepted_or_refused_with_their_reason():
    accepted, refused = classify(node_cases())
    assert accepted == set(NODE_ACCEPTED) | set(NODE_DIVERGENT)
    assert len(NODE_ACCEPTED) == 32
    assert set(refused) == set(NODE_OUT_OF_SCOPE)
    for name, line in refused.items():
        assert NODE_OUT_OF_SCOPE[name] in line, (name, line)


@pytest.mark.parametrize("name", NODE_ACCEPTED)
def test_node_case_matches_onnx_expected_output(name):
    outputs, expected = engine_and_expected(node_cases()[name])
    np.testing.assert_allclose(outputs, expected, atol=ATOL, rtol=RTOL)


def test_softmax_of_large_inputs_overflows_as_in_rtneural():
    outputs, expected = engine_and_expected(node_cases()["test_softmax_large_number"])
    assert np.all(np.isfinite(expected))
    assert not np.all(np.isfinite(outputs))  # RTNeural's exp(x)/sum(exp(x)) without max subtraction


# ----------------------------------------------------------------------------- pytorch-converted
@pytest.fixture(scope="module")
def converted_cases():
    cases = pytorch_converted_cases()
    if not cases:
        unavailable("this onnx wheel does not ship backend/test/data/pytorch-converted")
    return cases


def test_pytorch_converted_cases_are_accepted_or_refused_with_their_reason(converted_cases):
    accepted, refused = classify(converted_cases)
    assert accepted == set(PYTORCH_ACCEPTED)
    assert set(refused) == set(PYTORCH_OUT_OF_SCOPE) | set(PYTORCH_SHIFTED_CONV)
    for name, line in refused.items():
        reason = PYTORCH_OUT_OF_SCOPE.get(name) or ("shifted by" if "pad" not in name else "right padding")
        assert reason in line, (name, line)


@pytest.mark.parametrize("name", PYTORCH_ACCEPTED)
def test_pytorch_converted_case_matches_expected_output(converted_cases, name):
    outputs, expected = engine_and_expected(converted_cases[name])
    np.testing.assert_allclose(outputs, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("name", PYTORCH_SHIFTED_CONV)
def test_pytorch_conv1d_equals_the_causal_conv_shifted_by_its_stated_offset(converted_cases, name):
    """Conv with pads [left, right] == the causal conv (pads [(K-1)*d, 0]) read (K-1)*d - left frames
    later, on the input followed by ``right`` zero frames."""
    case = converted_cases[name]
    model = copy.deepcopy(case.model)
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    kernel, dilation = attributes["kernel_shape"][0], attributes.get("dilations", [1])[0]
    left, right = attributes.get("pads", [0, 0])
    causal = (kernel - 1) * dilation
    conv.attribute.remove(next(a for a in conv.attribute if a.name == "pads"))
    conv.attribute.append(helper.make_attribute("pads", [causal, 0]))
    imported = import_model_proto(model)
    padded = np.concatenate([case.input, np.zeros(case.input.shape[:2] + (right,), np.float32)], axis=2)
    outputs = run_sequences(Engine(imported.model), sequences(padded, imported.io.input))
    expected = sequences(case.expected, imported.io.output)
    offset = causal - left
    np.testing.assert_allclose(outputs[:, offset: offset + expected.shape[1]], expected, atol=ATOL, rtol=RTOL)
