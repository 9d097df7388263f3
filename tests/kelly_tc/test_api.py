"""The Python API, ``import kelly_tc``: one test per function, each result checked against an independent
computation (PyTorch, onnxruntime, the engine driven by hand), on models of odd sizes exported with both
torch exporters (``dynamo=False`` with ``dynamic_axes`` on time, ``dynamo=True``)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_modules

torch = require_modules("torch")
require_modules("onnxscript")  # the dynamo exporter
from torch import nn  # noqa: E402

import kelly_tc  # noqa: E402
from tests.fixtures.export import export_dynamo, export_legacy  # noqa: E402
from toolchain.rtneural_json import read_model  # noqa: E402

#: The conversions compute in float32 what onnxruntime and PyTorch compute in float32, with different
#: summation orders: outputs O(1) agree to ~1e-7; 1e-5 is the project's conversion tolerance.
ATOL = 1e-5
TIME = 16
EXPORTERS = ("legacy", "dynamo")


class DenseGRU(nn.Module):
    """Linear 7->13 relu -> GRU 13->9 -> Linear 9->3 sigmoid on [batch, time, 7]: odd sizes throughout."""

    def __init__(self):
        super().__init__()
        self.inner, self.gru, self.head = nn.Linear(7, 13), nn.GRU(13, 9, batch_first=True), nn.Linear(9, 3)

    def forward(self, x):
        hidden, _ = self.gru(torch.relu(self.inner(x)))
        return torch.sigmoid(self.head(hidden))


class DenseLSTM(nn.Module):
    """Linear 5->11 tanh -> LSTM 11->11 (square) -> Linear 11->4 on [batch, time, 5]."""

    def __init__(self):
        super().__init__()
        self.inner, self.lstm, self.head = nn.Linear(5, 11), nn.LSTM(11, 11, batch_first=True), nn.Linear(11, 4)

    def forward(self, x):
        hidden, _ = self.lstm(torch.tanh(self.inner(x)))
        return self.head(hidden)


def seeded(module_class, seed: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return module_class().eval()


def torch_frames(module: nn.Module, frames: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(frames)[None])[0].numpy()


def engine_frames(model, frames: np.ndarray) -> np.ndarray:
    """The model one ``forward`` per frame from a reset, as a plugin calls it (not through ``kelly_tc.run``)."""
    from reference_engine.model import Engine

    engine = Engine(model)
    engine.reset()
    return np.array([np.array(engine.forward(frame), copy=True) for frame in frames])


def onnxruntime_frames(onnx_path, frames: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: frames[None]})[0][0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """DenseGRU exported by each exporter: {exporter: (module, onnx path)}."""
    folder = tmp_path_factory.mktemp("api")
    module = seeded(DenseGRU)
    example = torch.zeros(1, TIME, 7)
    return {"legacy": (module, export_legacy(module, example, folder / "legacy.onnx", {0: "batch", 1: "time"})),
            "dynamo": (module, export_dynamo(module, example, folder / "dynamo.onnx"))}


@pytest.fixture
def frames():
    return np.random.default_rng(7).uniform(-1, 1, (TIME, 7)).astype(np.float32)


# ------------------------------------------------------------------------------------------ from_torch
@pytest.mark.parametrize("module_class", [DenseGRU, DenseLSTM], ids=["dense-gru", "dense-square-lstm"])
def test_from_torch_returns_and_writes_a_model_that_computes_what_pytorch_computes(module_class, tmp_path):
    module = seeded(module_class)
    inputs = module.inner.in_features
    model = kelly_tc.from_torch(module, torch.zeros(1, TIME, inputs), tmp_path / "model.json")
    frames = np.random.default_rng(11).uniform(-1, 1, (40, inputs)).astype(np.float32)  # longer than the example
    np.testing.assert_allclose(engine_frames(model, frames), torch_frames(module, frames), rtol=0, atol=ATOL)
    written = read_model(tmp_path / "model.json")
    np.testing.assert_array_equal(engine_frames(written, frames), engine_frames(model, frames))
    verification = json.loads((tmp_path / "model.json").read_text())["kelly_tc"]["verification"]
    assert verification["exporters"] == ["dynamo=False", "dynamo=True"]
    assert all(verification[key] <= ATOL for key in ("max_abs_vs_torch", "max_abs_vs_onnxruntime",
                                                     "max_abs_between_exporters"))
    assert module.training is False  # left as it was given


def test_from_torch_without_a_path_writes_nothing_and_keeps_training_mode(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = seeded(DenseGRU).train()
    model = kelly_tc.from_torch(module, torch.zeros(1, 8, 7))
    assert [layer.kind for layer in model.layers] == ["dense", "gru", "dense"]
    assert list(tmp_path.iterdir()) == [] and module.training


def test_from_torch_refuses_what_rtneural_cannot_compute_and_writes_nothing(tmp_path):
    class Bidirectional(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(5, 7, batch_first=True, bidirectional=True)

        def forward(self, x):
            return self.lstm(x)[0]

    with pytest.raises(kelly_tc.UnsupportedError, match="bidirectional"):
        kelly_tc.from_torch(Bidirectional().eval(), torch.zeros(1, 8, 5), tmp_path / "model.json")
    assert not (tmp_path / "model.json").exists()


@pytest.mark.parametrize("example,reason", [
    (torch.zeros(8, 7), r"expected \[1, time >= 2, features\], got \[8, 7\]"),
    (torch.zeros(2, 8, 7), r"got \[2, 8, 7\]"),
], ids=["2-d", "batch-2"])
def test_from_torch_names_a_badly_shaped_example(example, reason):
    with pytest.raises(kelly_tc.InputError, match=reason):
        kelly_tc.from_torch(seeded(DenseGRU), example)


# --------------------------------------------------------------------------------------------- convert
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_convert_writes_json_that_computes_what_onnxruntime_computes(exported, exporter, frames, tmp_path):
    module, onnx_path = exported[exporter]
    model = kelly_tc.convert(onnx_path, tmp_path / "model.json")
    np.testing.assert_allclose(engine_frames(model, frames), onnxruntime_frames(onnx_path, frames), rtol=0, atol=ATOL)
    np.testing.assert_allclose(engine_frames(read_model(tmp_path / "model.json"), frames), torch_frames(module, frames),
                               rtol=0, atol=ATOL)


@pytest.mark.parametrize("name,expected", [
    ("m.onnx", ("m.json", "m.int8.json")),
    ("m.int8.onnx", ("m.int8.float.json", "m.int8.json")),  # never m.int8.int8.json
], ids=["float-model", "quantized-model"])
def test_convert_int8_names_its_two_files_without_doubling_the_tag(exported, tmp_path, name, expected):
    (tmp_path / name).write_bytes(exported["legacy"][1].read_bytes())
    kelly_tc.convert(tmp_path / name, int8=True)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(expected)
    float_json, int8_json = (json.loads((tmp_path / e).read_text()) for e in expected)
    assert "format" not in float_json and int8_json["format"] == "kelly-tc-int8"


# ----------------------------------------------------------------------------------------------- check
@pytest.mark.parametrize("exporter", EXPORTERS)
def test_check_passes_a_faithful_conversion_and_fails_a_tampered_one(exported, exporter, tmp_path):
    _, onnx_path = exported[exporter]
    kelly_tc.convert(onnx_path, tmp_path / "model.json")
    report = kelly_tc.check(onnx_path, tmp_path / "model.json", frames=48)
    assert report.passed and report.worst_abs_error <= ATOL and report.frames == 48
    document = json.loads((tmp_path / "model.json").read_text())
    document["layers"][-1]["weights"][1][0] += 0.5  # a bias of the last dense layer
    (tmp_path / "tampered.json").write_text(json.dumps(document))
    tampered = kelly_tc.check(onnx_path, tmp_path / "tampered.json", frames=48)
    assert not tampered.passed and tampered.worst_abs_error > 0.01  # sigmoid'(x) >= 0.02 near 0 -> well above atol


# ------------------------------------------------------------------------------------------------- run
def test_run_an_array_returns_what_the_engine_computes_frame_by_frame(exported, frames, tmp_path):
    model = kelly_tc.convert(exported["legacy"][1], tmp_path / "model.json")
    outputs = kelly_tc.run(tmp_path / "model.json", frames, tmp_path / "y.npy")
    np.testing.assert_array_equal(outputs, engine_frames(model, frames))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), outputs)
    np.testing.assert_array_equal(kelly_tc.run(model, frames), outputs)  # a Model works as well as a path


def test_run_a_file_writes_beside_the_input_and_reports_steady_state_time(exported, frames, tmp_path):
    model = kelly_tc.convert(exported["legacy"][1], tmp_path / "model.json")
    np.save(tmp_path / "x.npy", frames)
    result = kelly_tc.run(tmp_path / "model.json", tmp_path / "x.npy")
    assert result.output_path == tmp_path / "x.out.npy" and result.frames == TIME
    np.testing.assert_array_equal(np.load(result.output_path), engine_frames(model, frames))


# ----------------------------------------------------------------------------------------------- bench
def test_bench_measures_each_model_and_the_pipeline_and_holds_them_to_the_budget(exported, tmp_path):
    for exporter in EXPORTERS:
        kelly_tc.convert(exported[exporter][1], tmp_path / f"{exporter}.json")
    paths = [tmp_path / "legacy.json", tmp_path / "dynamo.json"]
    generous = kelly_tc.bench(paths, budget="1s", frames=300, warmup=10, resident=False)
    assert [m.name for m in generous.models] == ["legacy", "dynamo"] and generous.pipeline is not None
    for entry in generous.entries:
        latency = entry.latency
        assert entry.samples.shape == (300,)  # one per timed call (block 1): the statistics themselves are
        assert 0 < latency["min"] <= latency["p50"] <= latency["p99"] <= latency["p99.9"] <= latency["max"]  # tested on known samples in tests/bench/test_latency_statistics.py
    assert generous.violations() == []
    impossible = kelly_tc.bench(paths[:1], budget="1ns", memory_budget="1B", frames=50, warmup=0, resident=False)
    assert len(impossible.violations()) == 2  # latency and memory, each saying by how much


def test_bench_refuses_a_frame_count_out_of_range(exported, tmp_path):
    kelly_tc.convert(exported["legacy"][1], tmp_path / "model.json")
    with pytest.raises(kelly_tc.InputError, match="--frames: must be between 1 and"):
        kelly_tc.bench([tmp_path / "model.json"], frames=0)


# -------------------------------------------------------------------------------------- quantize, prune
def test_quantize_writes_standard_qdq_onnx_close_to_the_float_model(exported, frames, tmp_path):
    _, onnx_path = exported["legacy"]
    figures = kelly_tc.quantize(onnx_path, tmp_path / "q.onnx", compare=False, report=tmp_path / "q.json")
    import onnx

    ops = {node.op_type for node in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert "DequantizeLinear" in ops
    difference = np.abs(onnxruntime_frames(tmp_path / "q.onnx", frames) - onnxruntime_frames(onnx_path, frames)).max()
    # int8 weights: each weight off by at most scale/2 = max|w|/254; outputs in (0, 1) after a sigmoid
    assert 0 < difference < 0.02
    assert figures["size"]["int8"]["weight_bytes"] < figures["size"]["float"]["weight_bytes"]
    assert json.loads((tmp_path / "q.json").read_text())["output"] == str(tmp_path / "q.onnx")


def test_prune_removes_units_and_the_pruned_model_still_runs(exported, frames, tmp_path):
    _, onnx_path = exported["legacy"]
    figures = kelly_tc.prune(onnx_path, tmp_path / "p.onnx", amount=0.5, latency=False)
    assert figures["size"]["pruned"]["parameters"] < figures["size"]["original"]["parameters"]
    model = kelly_tc.convert(tmp_path / "p.onnx", tmp_path / "p.json")
    np.testing.assert_allclose(engine_frames(model, frames), onnxruntime_frames(tmp_path / "p.onnx", frames),
                               rtol=0, atol=ATOL)
    assert model.layers[1].hidden_size < 9


# ------------------------------------------------------------------------------------------------- cpp
def test_cpp_writes_a_header_with_the_compile_time_model_type(exported, tmp_path):
    kelly_tc.convert(exported["legacy"][1], tmp_path / "model.json")
    info = kelly_tc.cpp(tmp_path / "model.json", tmp_path / "model.h", name="Model", namespace="demo", embed_weights=True)
    text = (tmp_path / "model.h").read_text()
    assert info.name == "Model" and info.namespace == "demo"
    assert "RTNeural::GRULayerT<float, 13, 9>" in text and "namespace demo" in text
    assert info.embedded_values == read_model(tmp_path / "model.json").parameter_count()


# ------------------------------------------------------------------------------- the CLI is a thin layer
@pytest.mark.parametrize("command,function", [("convert", "convert"), ("check", "check"), ("cpp", "cpp")])
def test_each_command_calls_the_api_function_of_its_name(exported, tmp_path, monkeypatch, command, function):
    from typer.testing import CliRunner

    from toolchain.cli import app

    onnx_path = exported["legacy"][1]
    kelly_tc.convert(onnx_path, tmp_path / "model.json")
    calls = []
    real = getattr(kelly_tc, function)
    monkeypatch.setattr(kelly_tc, function, lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    arguments = {"convert": [onnx_path, "-o", tmp_path / "again.json"], "check": [onnx_path, tmp_path / "model.json"],
                 "cpp": [tmp_path / "model.json", "-o", tmp_path / "model.h"]}[command]
    result = CliRunner().invoke(app, [command, *map(str, arguments)])
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and [str(a) for a in calls[0][0][:1]] == [str(arguments[0])]
