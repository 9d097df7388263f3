"""``kelly-tc export``: PyTorch -> ONNX -> RTNeural JSON for the five Kelly models, checked against
PyTorch and onnxruntime at 1e-5, with the reference pair and the model name stored in the file.

Tolerance: 1e-5 absolute (float32 through up to four layers of width <= 512; measured errors are
~5e-7). The models carry seeded random weights (``kelly_models``): export does not care about training.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_modules

torch = require_modules("torch")
from typer.testing import CliRunner  # noqa: E402

from toolchain.cli import app  # noqa: E402
from toolchain.kelly.spec import MODEL_NAMES, get_spec  # noqa: E402

ATOL = 1e-5


def invoke(*arguments):
    return CliRunner().invoke(app, [str(a) for a in arguments])


def exported(kelly_models, name):
    return next(m for m in kelly_models.report.models if m.name == name)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_engine_reproduces_pytorch_within_1e5(kelly_models, name):
    from reference_engine.model import load_engine

    model = kelly_models.torch_models[name]
    frames = np.random.default_rng(7).uniform(-1.5, 1.5, (48, model.spec.input_size)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(frames)[None])[0].numpy()
    engine = load_engine(kelly_models.json_paths[name])
    engine.reset()
    produced = np.stack([engine.forward(frame).copy() for frame in frames])
    assert np.abs(produced - expected).max() <= ATOL
    assert exported(kelly_models, name).torch_error <= ATOL


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_engine_reproduces_onnxruntime_within_1e5(kelly_models, name):
    from toolchain.check import check_files

    report = check_files(kelly_models.onnx_paths[name], kelly_models.json_paths[name], frames=40, seed=3)
    assert report.runtime == "onnxruntime"
    assert report.passed and report.worst_abs_error <= ATOL, report.comparisons
    assert exported(kelly_models, name).check.passed


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_json_weights_equal_the_direct_pytorch_to_layer_route(kelly_models, name):
    """The ONNX route (exporter + converter) and models.to_layer_model agree weight for weight."""
    from toolchain.kelly.models import to_layer_model
    from toolchain.rtneural_json import read_model

    through_onnx = read_model(kelly_models.json_paths[name])
    direct = to_layer_model(kelly_models.torch_models[name])
    assert [layer.kind for layer in through_onnx.layers] == [layer.kind for layer in direct.layers]
    for converted, reference in zip(through_onnx.layers, direct.layers):
        assert getattr(converted, "activation", "") == getattr(reference, "activation", "")
        for field, array in reference.arrays().items():
            np.testing.assert_allclose(converted.arrays()[field], array, rtol=0, atol=1e-7, err_msg=field)
    assert through_onnx.parameter_count() == get_spec(name).parameter_count()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_file_carries_the_model_name_and_pytorchs_reference_pair(kelly_models, name):
    document = json.loads(kelly_models.json_paths[name].read_text())
    metadata = document["kelly_tc"]
    assert metadata["model"] == name
    inputs = np.asarray(metadata["reference"]["input"], np.float32)
    outputs = np.asarray(metadata["reference"]["output"], np.float32)
    spec = get_spec(name)
    assert inputs.shape == (8, spec.input_size) and outputs.shape == (8, spec.output_size)
    with torch.no_grad():
        expected = kelly_models.torch_models[name](torch.from_numpy(inputs)[None])[0].numpy()
    np.testing.assert_allclose(outputs, expected, rtol=0, atol=1e-6)


def test_toolchain_cpp_reads_the_stored_pair(kelly_models):
    """The key and layout agree with kelly-tc cpp's self_test() reader."""
    from toolchain.cpp.reference_pair import reference_pair
    from toolchain.rtneural_json import read_model

    pair = reference_pair(read_model(kelly_models.json_paths["HarmonyPredictor"]))
    assert pair is not None and pair[0].shape == (8, 128) and pair[1].shape == (8, 64)


def test_onnx_files_have_a_dynamic_time_axis(kelly_models):
    import onnx

    graph = onnx.load(str(kelly_models.onnx_paths["GroovePredictor"])).graph
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "time", 64]


@pytest.mark.parametrize("name", ["HarmonyPredictor", "GroovePredictor"])
def test_dynamo_exporter_gives_the_same_checks(kelly_models, name, tmp_path):
    """dynamo=True fixes the time length in the graph; check feeds onnxruntime chunks of it."""
    require_modules("onnxscript")
    from toolchain.kelly.export import DYNAMO_FRAMES, export_model

    result = export_model(kelly_models.torch_models[name], tmp_path, dynamo=True)
    assert result.exporter == "dynamo" and result.check.chunk == DYNAMO_FRAMES
    assert result.passed and result.torch_error <= ATOL and result.onnx_error <= ATOL
    assert not list(tmp_path.glob("*.data"))  # one self-contained ONNX file


def write_checkpoint(directory, model):
    from toolchain.kelly.checkpoint import BEST, save_checkpoint

    save_checkpoint(directory / model.name / BEST, {"model": model.name, "stack": model.spec.stack(),
                                                    "model_state": model.state_dict()})


def test_export_command_exports_checkpoints_and_reports_both_checks(kelly_models, tmp_path):
    for name in ("DynamicsEngine", "GroovePredictor"):
        write_checkpoint(tmp_path / "training", kelly_models.torch_models[name])
    result = invoke("export", tmp_path / "training", "-o", tmp_path / "models", "-m", "DynamicsEngine,GroovePredictor")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "models").glob("*.json")) == ["DynamicsEngine.json", "GroovePredictor.json"]
    report = json.loads((tmp_path / "models.export_report.json").read_text())  # beside the folder, not in it
    assert [m["name"] for m in report["models"]] == ["DynamicsEngine", "GroovePredictor"]
    assert all(m["passed"] and m["torch_max_abs_error"] <= ATOL and m["onnx_max_abs_error"] <= ATOL for m in report["models"])
    original = json.loads(kelly_models.json_paths["GroovePredictor"].read_text())["layers"]
    assert json.loads((tmp_path / "models" / "GroovePredictor.json").read_text())["layers"] == original


def test_export_command_fails_with_exit_1_when_rtneurals_softmax_would_overflow(kelly_models, tmp_path):
    """Logits near 100 overflow RTNeural's unshifted softmax to NaN while PyTorch's stays finite."""
    from toolchain.kelly.models import build_model

    model = build_model("HarmonyPredictor", seed=1)
    with torch.no_grad():
        model.body[-2].bias += 100.0  # the last Linear, before the softmax
    write_checkpoint(tmp_path / "training", model)
    result = invoke("export", tmp_path / "training", "-o", tmp_path / "models", "-m", "HarmonyPredictor")
    assert result.exit_code == 1, result.output
    assert "HarmonyPredictor.json: engine vs PyTorch inf" in result.output


def test_export_command_missing_checkpoint_is_bad_input(tmp_path):
    (tmp_path / "training").mkdir()
    result = invoke("export", tmp_path / "training", "-o", tmp_path / "models", "-m", "DynamicsEngine")
    assert result.exit_code == 2
    assert "DynamicsEngine/best.ckpt: no such file" in result.output
    assert not (tmp_path / "models" / "DynamicsEngine.json").exists()
