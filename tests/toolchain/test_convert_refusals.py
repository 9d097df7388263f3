"""Every refusal path: the exact one-line message, exit code 2, and no output file left behind."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.fixtures import refusals
from toolchain.errors import KellyError
from toolchain.onnx_import import MAX_OPSET, MIN_OPSET, import_onnx

LSTM = "node 'lstm' (LSTM)"
GRU = "node 'gru' (GRU)"
CONV = "node 'conv' (Conv)"
W = "initializer 'W'"

#: builder name -> (WHERE, reason). "{folder}" is replaced by the model's folder.
EXPECTED = {
    "bidirectional_lstm": (LSTM, "bidirectional LSTM: its backward half needs future frames, which a streaming layer never has"),
    "reverse_gru": (GRU, "GRU with direction 'reverse' reads the sequence backwards; a streaming layer only has past frames"),
    "gru_linear_before_reset_0": (GRU, "GRU with linear_before_reset=0 applies the reset gate before the recurrent product; "
                                       "RTNeural's gru implements linear_before_reset=1 only (what PyTorch exports)"),
    "lstm_peepholes": (LSTM, "LSTM with peepholes (input P); RTNeural's lstm has no peephole connections"),
    "lstm_nonzero_initial_state": (LSTM, "initial_h 'h0' is not provably zero; RTNeural's state starts at zero after reset()"),
    "lstm_hidden_size_contradicts_weights": (LSTM, "W has shape [1, 12, 2] but hidden_size 5 with one direction needs [1, 20, 2]"),
    "lstm_absurd_hidden_size": (LSTM, "hidden_size 1000000000 outside 1..65536"),
    "lstm_final_state_output": (LSTM, "its first output is unused while another is used; only the first output is a per-frame "
                                      "stream (e.g. an RNN's final state Y_h is not)"),
    "lstm_dynamic_weight": (LSTM, "input weight W 'w_dynamic' is computed from the input's shape (a dynamic weight); "
                                  "RTNeural weights are constants"),
    "conv_valid_without_padding": (CONV, "Conv with 0 frames of left padding but (K-1)*dilation = 4: a valid (unpadded) "
                                         "convolution's output is the streaming output shifted by 4 frames (and shorter); "
                                         "pad 4 zeros on the left to make it causal"),
    "conv_symmetric_padding": (CONV, "Conv with right padding 1 (pads=[1, 1]): its output at frame t needs frames after t; "
                                     "RTNeural's conv1d is causal (use pads=[(K-1)*dilation, 0])"),
    "conv_same_padding": (CONV, "Conv with auto_pad=SAME_UPPER ('same' padding) centres the kernel: each output needs future "
                                "frames, and a streaming conv1d would output it shifted; pad only on the left instead"),
    "causal_trim_leaves_a_remainder": ("node 'trim' (Slice)", "Slice drops 1 trailing frames where the padded Conv at node 'conv' "
                                                              "(Conv) added 2: the last 1 kept frames still need up to 1 future "
                                                              "frames (a non-causal remainder)"),
    "causal_trim_shifts_the_output": ("node 'trim' (Slice)", "Slice starts at frame 0 where the causal output starts at frame 1 "
                                                             "(the output would be delayed by 1 frames)"),
    "right_padding_without_a_trim": (CONV, "Conv with right padding 2 (pads=[2, 2]): its output at frame t needs frames after t; "
                                           "RTNeural's conv1d is causal (use pads=[(K-1)*dilation, 0]) (and no Slice after it drops "
                                           "the 2 trailing frames to make it causal)"),
    "gather_selects_a_feature": ("node 'pick' (Gather)", "Gather of indices [1] along axis 2 (size 4): it selects features or frames; "
                                                         "only taking the one element of a size-1 axis (a squeeze) is supported"),
    "conv_stride_2": (CONV, "Conv with stride 2: the output has 1/2 of the frames; RTNeural's conv1d outputs one frame per "
                            "input frame (stride 1)"),
    "conv_too_much_left_padding": (CONV, "Conv with 3 frames of left padding but (K-1)*dilation = 2: the output would be "
                                         "delayed by 1 frames"),
    "mismatched_branch_delays": ("node 'skip' (Add)", "merges branches whose delays differ: the branch through node 'conv' "
                                                      "(Conv) lags by 1 frames, the branch 'x' by 0; both must see frame t"),
    "concat_over_time": ("node 'concat' (Concat)", "Concat joins its inputs along axis 2 (a merge over time or batch would "
                                                   "mix frames), but that axis is the time axis"),
    "two_inputs": ("graph inputs", "the graph has 2 inputs ('x', 'x2'); an RTNeural model takes one frame stream"),
    "two_outputs": ("graph outputs", "the graph has 2 outputs ('y', 'y2'); an RTNeural model gives one frame stream"),
    "matmul_over_time": ("node 'matmul' (MatMul)", "MatMul contracts over this axis as features, but that axis is the time axis"),
    "reshape_merges_batch_and_time": ("node 'reshape' (Reshape)", "Reshape [2, 5, 3] -> [10, 3] regroups axes; "
                                                                  "only size-1 axes may appear or vanish"),
    "softmax_over_time": ("node 'softmax' (Softmax)", "tensor 'y' would have 2 feature axes (axes [1, 2]): frames would be mixed"),
    "unsupported_op": ("node 'log_softmax' (LogSoftmax)", "unsupported op LogSoftmax: RTNeural has no equivalent layer (supported: "
                       "Add, BatchNormalization, Cast, Conv, Dropout, Elu, Flatten, GRU, Gather, Gemm, Identity, LSTM, LeakyRelu, MatMul, "
                       "PRelu, Pad, Relu, Reshape, Sigmoid, Slice, Softmax, Split, Squeeze, Sub, Tanh, Transpose, Unsqueeze)"),
    "bias_after_activation": ("node 'add' (Add)", "Add of a constant that no preceding dense/conv1d layer without activation "
                                                  "can absorb (RTNeural has no bias-only layer)"),
    "bias_varying_over_time": ("node 'add' (Add)", "added constant of shape [5, 4] varies along 2 axes; a per-frame layer holds "
                                                   "one value per feature"),
    "elu_alpha": ("node 'elu' (Elu)", "Elu with alpha=0.5; RTNeural's elu has alpha fixed at 1"),
    "nan_weight": ("node 'matmul' (MatMul)", "weight 'W' contains NaN or Inf"),
    "initializer_absurd_dims": (W, "declares 1000000000000 elements, above the 67108864 limit"),
    "missing_initializer": ("node 'matmul' (MatMul)", "input 'W' is not a graph input, an initializer or the output of any "
                                                      "node (a missing initializer?)"),
    "unknown_opset": ("opset_import", f"opset 99 is outside the supported range {MIN_OPSET}..{MAX_OPSET} "
                                      "(upgrade old models with onnx.version_converter)"),
    "integer_input": ("graph inputs", "input 'x' has element type INT64; RTNeural frames are float32"),
    "empty_file": (None, "empty file (0 bytes): not an ONNX model"),
    "random_bytes": (None, "not an ONNX model (the protobuf does not parse: corrupt or truncated)"),
    "truncated_file": (None, "not an ONNX model (the protobuf does not parse: corrupt or truncated)"),
    "external_data_outside_folder": (W, "external data location '../weights.bin' points outside the model's folder"),
    "external_data_absolute_path": (W, "external data location '{folder}/weights.bin' is an absolute path; "
                                       "only files beside the model are read"),
    "external_data_symlink_out": (W, "external data location 'weights.bin' resolves outside the model's folder (a symlink?)"),
    "external_data_missing": (W, "external data file 'weights.bin' is missing"),
    "external_data_truncated": (W, "external data 'weights.bin' is truncated: needs bytes 0..48, the file has 24"),
}


def expected_line(case: str, path) -> str:
    where, reason = EXPECTED[case]
    return ": ".join(part for part in (str(path), where, reason.replace("{folder}", str(path.parent.resolve()))) if part)


def build(case: str, tmp_path):
    return getattr(refusals, case)(tmp_path)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_refusal_names_file_node_and_reason(case, tmp_path):
    path = build(case, tmp_path)
    with pytest.raises(KellyError) as raised:
        import_onnx(path)
    assert raised.value.exit_code == 2
    assert raised.value.line() == expected_line(case, path)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_convert_command_exits_2_with_one_line_and_writes_nothing(case, tmp_path):
    from toolchain.cli import app

    path = build(case, tmp_path)
    before = set(path.parent.iterdir())
    output = path.parent / "out.json"
    result = CliRunner().invoke(app, ["convert", str(path), "-o", str(output)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {expected_line(case, path)}\n"
    assert set(path.parent.iterdir()) == before  # no output, no temporary file


def test_every_builder_has_an_expected_message():
    builders = {name for name in dir(refusals) if not name.startswith("_") and callable(getattr(refusals, name))
                and getattr(getattr(refusals, name), "__module__", "") == refusals.__name__}
    assert builders - set(EXPECTED) == {"external_data_inside_folder"}  # the one control case, which loads


def test_external_data_beside_the_model_loads(tmp_path):
    imported = import_onnx(refusals.external_data_inside_folder(tmp_path))
    assert [layer.kind for layer in imported.model.layers] == ["dense"]
