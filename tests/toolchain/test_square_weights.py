"""Square weight matrices: a transposition error cannot hide behind a shape mismatch, so the layout
rules of Gemm (transB = 0 and 1) and MatMul are checked numerically against onnxruntime here, on graphs
built node by node and on nn.Linear(11, 11) exported by both torch exporters."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import require_modules
from toolchain.convert import convert_file
from reference_engine.model import Engine

#: float32 products of 9-11 terms summed in different orders: ~1e-7 apart on O(1) outputs.
ATOL = 1e-5
SIZE = 9  # square and odd
FRAMES = 13


def run_onnxruntime(model: onnx.ModelProto, frames: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rank = len(session.get_inputs()[0].shape)
    feed = frames if rank == 2 else frames[None]
    output = session.run(None, {name: feed})[0]
    return output if rank == 2 else output[0]


def run_engine(model, frames: np.ndarray) -> np.ndarray:
    engine = Engine(model)
    engine.reset()
    return engine.run(frames)


def save(graph: onnx.GraphProto, path) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return model


@pytest.fixture
def weights():
    rng = np.random.default_rng(17)
    weight = rng.uniform(-1, 1, (SIZE, SIZE)).astype(np.float32)
    assert np.abs(weight - weight.T).max() > 0.5  # far from symmetric: a transpose changes the result
    return weight, rng.uniform(-1, 1, SIZE).astype(np.float32), rng.uniform(-1, 1, (FRAMES, SIZE)).astype(np.float32)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 2.0)])
def test_square_gemm_matches_onnxruntime_for_both_transb(weights, tmp_path, trans_b, alpha, beta):
    weight, bias, frames = weights
    node = helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="gemm", transB=trans_b, alpha=alpha, beta=beta)
    graph = helper.make_graph([node], "square_gemm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["time", SIZE])],
                              [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")])
    model = save(graph, tmp_path / "gemm.onnx")
    expected = run_onnxruntime(model, frames)
    # float64 NumPy as a second, independent reading of the spec: y = alpha * x @ op(W) + beta * b
    matrix = weight.T if trans_b else weight
    np.testing.assert_allclose(expected, alpha * frames.astype(np.float64) @ matrix + beta * bias, atol=ATOL)
    converted = convert_file(tmp_path / "gemm.onnx", tmp_path / "gemm.json")
    np.testing.assert_allclose(run_engine(converted, frames), expected, rtol=0, atol=ATOL)


def test_square_matmul_with_bias_matches_onnxruntime(weights, tmp_path):
    weight, bias, frames = weights
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
             helper.make_node("Add", ["h", "b"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "square_matmul",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "time", SIZE])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "time", SIZE])],
                              [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")])
    model = save(graph, tmp_path / "matmul.onnx")
    expected = run_onnxruntime(model, frames)
    np.testing.assert_allclose(expected, frames.astype(np.float64) @ weight + bias, atol=ATOL)
    converted = convert_file(tmp_path / "matmul.onnx", tmp_path / "matmul.json")
    np.testing.assert_allclose(run_engine(converted, frames), expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("exporter", ["legacy", "dynamo", "dynamo-dynamic-time"])
@pytest.mark.parametrize("rank", [2, 3], ids=["gemm-2d", "matmul-3d"])
def test_square_linear_from_both_torch_exporters(tmp_path, exporter, rank):
    torch = require_modules("torch")
    require_modules("onnxscript")
    from tests.fixtures.export import export_dynamo, export_legacy, quiet

    torch.manual_seed(23)
    module = torch.nn.Sequential(torch.nn.Linear(11, 11), torch.nn.Tanh(), torch.nn.Linear(11, 11)).eval()
    example = torch.zeros((FRAMES, 11) if rank == 2 else (1, FRAMES, 11))
    time_axis = 0 if rank == 2 else 1
    path = tmp_path / "linear.onnx"
    if exporter == "legacy":
        export_legacy(module, example, path, {time_axis: "time"})
    elif exporter == "dynamo":
        export_dynamo(module, example, path)
    else:
        with quiet():
            torch.onnx.export(module, (example,), str(path), dynamo=True, external_data=False, input_names=["x"],
                              output_names=["y"], dynamic_shapes=({time_axis: torch.export.Dim("time", min=2, max=4096)},))
    frames = np.random.default_rng(29).uniform(-1, 1, (FRAMES, 11)).astype(np.float32)
    converted = convert_file(path, tmp_path / "linear.json")
    expected = run_onnxruntime(onnx.load(str(path)), frames)
    with torch.no_grad():
        torch_output = module(torch.from_numpy(frames if rank == 2 else frames[None])).numpy().reshape(FRAMES, 11)
    np.testing.assert_allclose(run_engine(converted, frames), expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(run_engine(converted, frames), torch_output, rtol=0, atol=ATOL)
