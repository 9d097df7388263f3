"""The INT8 JSON variant and the engine's INT8 kernels (issue 6 part 2)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from quant import int8, int8_json
from quant.onnx_graph import load_model, save_model
from reference_engine.model import Engine, load_engine
from tests.fixtures.catalog import ENTRY_IDS
from toolchain.errors import InputError
from toolchain.rtneural_json import read_model

pytestmark = pytest.mark.torch

#: Same weights (q * scale) through int8 kernels and float kernels: float32 rounding order only.
ENGINE_ATOL = 1e-5


def _frames(engine, count=48, seed=3):
    return np.random.default_rng(seed).uniform(-1, 1, (count, engine.input_size)).astype(np.float32)


@pytest.mark.parametrize("entry_id", ENTRY_IDS)
def test_int8_kernels_compute_the_dequantized_float_model(converted_catalog, entry_id):
    # every layer kind and stack of the torch catalogue: dense, lstm, gru, conv1d (grouped, dilated), prelu, batchnorm
    quantized = int8_json.quantize_model(read_model(converted_catalog.entry(entry_id).json_path))
    assert any(quantized.quantized)
    int8_engine, float_engine = Engine(quantized), Engine(quantized.model)
    frames = _frames(int8_engine)
    np.testing.assert_allclose(int8_engine.run(frames), float_engine.run(frames), atol=ENGINE_ATOL, rtol=0)


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_int8_json_of_a_quantized_onnx_model_keeps_its_int8_values_and_checks_against_onnxruntime(converted_catalog, tmp_path, per_channel):
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    result = int8.quantize_weights(load_model(converted_catalog.entry("mixed_stack-legacy").onnx_path), per_channel)
    onnx_path = save_model(result.model, tmp_path / "q.onnx")
    quantized = int8_json.quantize_model(convert_file(onnx_path, tmp_path / "q.json"))
    int8_json.write_int8_model(quantized, tmp_path / "q.int8.json")
    # the ONNX int8 values come back exactly (the LSTM's gate rows reordered to RTNeural's order)
    onnx_values = sorted(np.sort(np.abs(np.asarray(t)).ravel()).tobytes() for t in _int8_initializers(result.model))
    json_values = sorted(np.sort(np.abs(q.values).ravel()).tobytes() for layer in quantized.quantized for q in layer.values())
    assert onnx_values == json_values
    assert check_files(onnx_path, tmp_path / "q.int8.json", atol=1e-5).passed  # onnxruntime vs int8 kernels


def _int8_initializers(model):
    """The int8 weight matrices (not the PRelu slope, which RTNeural JSON keeps as a float)."""
    from quant.onnx_graph import Graph

    graph = Graph(model, shapes=False)
    return [graph.array(node.input[0]) for node in model.graph.node if node.op_type == "DequantizeLinear"
            and all(reader.op_type != "PRelu" for reader, _ in graph.consumers[node.output[0]])]


def test_int8_json_round_trips_values_scales_and_weights(converted_catalog, tmp_path):
    quantized = int8_json.quantize_model(read_model(converted_catalog.entry("mixed_stack-legacy").json_path))
    path = int8_json.write_int8_model(quantized, tmp_path / "m.int8.json")
    back = int8_json.read_int8_model(path)
    assert int8_json.is_int8_json(path)
    for mine, theirs in zip(quantized.quantized, back.quantized):
        assert mine.keys() == theirs.keys()
        for name in mine:
            assert np.array_equal(mine[name].values, theirs[name].values) and np.array_equal(mine[name].scale, theirs[name].scale)
    for mine, theirs in zip(quantized.model.layers, back.model.layers):
        for name, array in mine.arrays().items():
            assert np.array_equal(array, getattr(theirs, name))


def test_rtneural_readers_refuse_the_int8_file_instead_of_misreading_it(converted_catalog, tmp_path):
    path = int8_json.write_int8_model(int8_json.quantize_model(read_model(converted_catalog.entry("dense_stack-legacy").json_path)),
                                      tmp_path / "m.int8.json")
    with pytest.raises(InputError, match=r"layers\[0\] \(dense\)/weights: missing"):
        read_model(path)  # as RTNeural's parser: "weights" is required


@pytest.mark.parametrize("corruption,message", [
    (lambda layer: layer["weights_int8"][0][0].__setitem__(0, 300), "expected integers in -127..127"),
    (lambda layer: layer["scales"][0].pop(), "positive finite scales"),
    (lambda layer: layer["scales"].__setitem__(0, None), "int8 arrays at weights"),
], ids=["out-of-range", "scale-count", "missing-scales"])
def test_a_corrupt_int8_file_is_refused_naming_the_layer(converted_catalog, tmp_path, corruption, message):
    path = int8_json.write_int8_model(int8_json.quantize_model(read_model(converted_catalog.entry("dense_stack-legacy").json_path)),
                                      tmp_path / "m.int8.json")
    document = json.loads(path.read_text())
    corruption(document["layers"][0])
    path.write_text(json.dumps(document))
    with pytest.raises(InputError, match=message) as error:
        int8_json.read_int8_model(path)
    assert "layers[0] (dense)" in str(error.value)


def test_int8_engine_holds_about_a_quarter_of_the_float_weight_bytes():
    from reference_engine import synthetic

    rng = np.random.default_rng(0)
    model = synthetic.model(64, [synthetic.dense(rng, 64, 128, "relu"), synthetic.lstm(rng, 128, 96), synthetic.dense(rng, 96, 32)])
    float_bytes, int8_bytes = Engine(model).memory().weight_bytes, Engine(int8_json.quantize_model(model)).memory().weight_bytes
    assert int8_bytes <= 0.3 * float_bytes


def test_convert_int8_writes_both_files_and_checks_them(converted_catalog, tmp_path):
    from toolchain.cli import app

    source = converted_catalog.entry("gru_time_major_elu-legacy").onnx_path
    result = CliRunner().invoke(app, ["convert", str(source), "-o", str(tmp_path / "m.json"), "--int8", "--check", "--atol", "0.05"])
    assert result.exit_code == 0, result.output
    assert not int8_json.is_int8_json(tmp_path / "m.json") and int8_json.is_int8_json(tmp_path / "m.int8.json")
    assert load_engine(tmp_path / "m.int8.json").program.qweights.size > 1
