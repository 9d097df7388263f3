"""A Reshape that fixes the variable time axis to the example's length (torch 2.13's dynamo exporter writes one
after a time-major RNN even with dynamic_shapes): the model converts, says so, and is checked in runs of that
length; the converted model runs per frame at any length. Other baked sizes stay refused."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from reference_engine.model import load_engine
from toolchain.check import check_files
from toolchain.convert import convert_file
from toolchain.errors import UnsupportedError


def matmul_then_reshape(path, input_shape, target):
    """x [input_shape, 4] @ W [4, 3], then a Reshape to the constant ``target``."""
    weight = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"], name="project"), helper.make_node("Reshape", ["m", "s"], ["y"], name="pin")],
        "pinned", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, target)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(np.array(target, np.int64), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return weight


@pytest.mark.parametrize("input_shape, target", [([1, "time", 4], [1, 7, 3]), (["time", 1, 4], [7, 1, 3]),
                                                 ([1, "time", 4], [7, 3])])
def test_a_reshape_fixing_time_converts_and_is_checked_in_runs_of_that_length(tmp_path, input_shape, target):
    path = tmp_path / "pinned.onnx"
    weight = matmul_then_reshape(path, input_shape, target)
    model = convert_file(path, tmp_path / "pinned.json")
    metadata = model.metadata["kelly_tc"]
    assert metadata["io"]["fixed_time"] == 7
    assert any("fixes the variable time axis to 7 frames" in note and "node 'pin' (Reshape)" in note for note in metadata["notes"])
    report = check_files(path, tmp_path / "pinned.json", frames=30)  # 4 runs of 7 frames, the last padded
    assert report.passed and report.chunk == 7, report.to_json()
    frames = np.random.default_rng(6).standard_normal((23, 4)).astype(np.float32)  # any length, per frame
    expected = frames.astype(np.float64) @ weight.astype(np.float64)
    np.testing.assert_allclose(load_engine(tmp_path / "pinned.json").run(frames), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("input_shape, target, reason", [
    (["batch", "time", 4], [3, 7, 3], "fixes variable axes to [3, 7]"),
    (["batch", "time", 4], [7, 7, 3], "2 time axes"),
])
def test_other_baked_sizes_are_refused(tmp_path, input_shape, target, reason):
    path = tmp_path / "baked.onnx"
    matmul_then_reshape(path, input_shape, target)
    with pytest.raises(UnsupportedError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        convert_file(path, tmp_path / "baked.json")
    assert not (tmp_path / "baked.json").exists()


@pytest.mark.torch
@pytest.mark.parametrize("cell, layers, head, inputs", [("LSTM", 1, False, 1), ("GRU", 2, True, 13)])
def test_time_major_rnn_exported_by_dynamo_with_dynamic_shapes(tmp_path, cell, layers, head, inputs):
    from tests.conftest import require_modules

    require_modules("torch", "onnxscript")
    import torch

    from tests.fixtures import torch_models
    from tests.fixtures.export import export_dynamo

    torch.manual_seed(7)
    module = torch_models.LSTMAmp(cell, layers, False, head, inputs).eval()
    path = export_dynamo(module, torch.randn(20, 1, inputs), tmp_path / "amp.onnx", time_axis=0)
    model = convert_file(path, tmp_path / "amp.json")
    assert model.metadata["kelly_tc"]["io"]["fixed_time"] == 20
    assert any("fixes the variable time axis to 20 frames" in note for note in model.metadata["kelly_tc"]["notes"])
    report = check_files(path, tmp_path / "amp.json", frames=50)
    assert report.passed and report.chunk == 20, report.to_json()
    stream = torch.randn(57, 1, inputs)  # not a multiple of the baked length: the JSON runs per frame
    with torch.no_grad():
        expected = module(stream).numpy()[:, 0]
    np.testing.assert_allclose(load_engine(tmp_path / "amp.json").run(stream.numpy()[:, 0]), expected, atol=1e-5, rtol=0)
