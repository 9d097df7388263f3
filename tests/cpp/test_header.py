"""``kelly-tc cpp``: what the generated header says, and what it refuses (no compiler needed here;
test_compile_time.py and test_example.py compile and run the headers against RTNeural)."""
from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.cpp.cases import dense, layer_kind_models
from toolchain.cli import app
from toolchain.cpp import header
from toolchain.cpp.header import default_name, default_namespace, format_values, generate_header, write_header
from toolchain.cpp.reference_pair import reference_pair, set_reference_pair
from toolchain.errors import InputError, UnsupportedError
from toolchain.layers import Dense, Layer, Model
from toolchain.rtneural_json import write_model


def model_type(text: str) -> list[str]:
    """The template arguments of the ``using NAME = RTNeural::ModelT<...>;`` line(s)."""
    body = re.search(r"RTNeural::ModelT<([^;]*)>;", text, re.S).group(1)
    return [part.strip() for part in re.split(r",\s*\n", body)]


def test_the_type_lists_every_layer_and_activation_with_its_sizes(rtneural_testdata, tmp_path):
    text = write_header(rtneural_testdata / "models" / "conv.json", tmp_path / "conv.h").path.read_text()
    assert model_type(text) == [
        "float, 1, 1",  # T, inputs, outputs
        "RTNeural::DenseT<float, 1, 8>", "RTNeural::TanhActivationT<float, 8>",
        "RTNeural::Conv1DT<float, 8, 4, 3, 1, 1>", "RTNeural::TanhActivationT<float, 4>",
        "RTNeural::BatchNorm1DT<float, 4>", "RTNeural::PReLUActivationT<float, 4>",
        "RTNeural::Conv1DT<float, 4, 4, 1, 1, 1>", "RTNeural::TanhActivationT<float, 4>",
        "RTNeural::Conv1DT<float, 4, 6, 3, 2, 2>", "RTNeural::TanhActivationT<float, 6>",
        # conv.json stores this batchnorm as [mean, var]: ModelT::parseJson loads it only into affine=false
        "RTNeural::BatchNorm1DT<float, 6, false>", "RTNeural::PReLUActivationT<float, 6>",
        "RTNeural::DenseT<float, 6, 1>", "RTNeural::SigmoidActivationT<float, 1>"]


def test_a_dense_activation_becomes_its_own_compile_time_layer():
    rng = np.random.default_rng(0)
    text = generate_header(Model(3, [dense(rng, 3, 37, "softmax"), dense(rng, 37, 2, "elu")]), name="M", namespace="m")
    assert model_type(text)[1:] == ["RTNeural::DenseT<float, 3, 37>", "RTNeural::SoftmaxActivationT<float, 37>",
                                    "RTNeural::DenseT<float, 37, 2>", "RTNeural::ELuActivationT<float, 2>"]


def test_double_precision_uses_double_everywhere():
    rng = np.random.default_rng(0)
    text = generate_header(Model(3, [dense(rng, 3, 5)]), name="M", namespace="m", embed_weights=True, precision="double")
    assert model_type(text) == ["double, 3, 5", "RTNeural::DenseT<double, 3, 5>"]
    assert "using scalar_type = double;" in text and "float" not in text.split("namespace m")[1]


def test_embedded_weights_need_no_file_and_no_json_at_run_time(tmp_path):
    model = layer_kind_models(np.random.default_rng(1))["mixed_stack"]
    text = generate_header(model, name="M", namespace="m", embed_weights=True)
    code = text.split("#pragma once")[1]
    for absent in ("ifstream", "parseJson", "nlohmann", "json_path"):
        assert absent not in code
    assert code.count("auto& layer = model.get<") == 8  # every layer with weights: dense, conv1d x2, bn, prelu, lstm, gru, dense


def test_json_loader_checks_the_file_holds_this_architecture():
    rng = np.random.default_rng(0)
    text = generate_header(Model(3, [dense(rng, 3, 5, "tanh")]), name="M", namespace="m")
    assert 'model.parseJson(document, false)' in text and "if(!detail::matches(document))" in text
    assert '{"dense", 5, "tanh", 0, 0, 0, -1},' in text


@pytest.mark.parametrize("scalar", ["float", "double"])
def test_weight_literals_round_trip_float32_exactly(scalar):
    rng = np.random.default_rng(2)
    values = (rng.standard_normal(300) * 10.0 ** rng.integers(-30, 30, 300)).astype(np.float32)
    values[:4] = [0.0, 1.0, -2.0, 1e-45]  # zero, integers (need a '.'), a subnormal
    literals = format_values(values, scalar).replace("\n", "").split(",")
    parsed = np.array([float(text.strip().rstrip("f")) for text in literals]).astype(np.float32)
    np.testing.assert_array_equal(parsed, values)
    assert all(("." in t or "e" in t) for t in literals)  # "0f" would not be a C++ literal


def test_self_test_data_comes_from_the_reference_pair():
    rng = np.random.default_rng(3)
    model = Model(2, [dense(rng, 2, 3)])
    set_reference_pair(model, np.ones((4, 2), np.float32), np.zeros((4, 3), np.float32))
    text = generate_header(model, name="M", namespace="m")
    assert "constexpr int reference_frames = 4;" in text
    assert "static const scalar_type reference_input[8]" in text and "static const scalar_type reference_output[12]" in text
    without = generate_header(Model(2, [dense(rng, 2, 3)]), name="M", namespace="m")
    assert "constexpr int reference_frames = 0;" in without and "quiet_NaN()" in without


def test_a_malformed_reference_pair_is_refused_naming_the_field():
    rng = np.random.default_rng(3)
    model = Model(2, [dense(rng, 2, 3)], metadata={"kelly_tc": {"reference": {"input": [[1, 2]], "output": [[1, 2]]}}})
    with pytest.raises(InputError, match="kelly_tc/reference/output: expected \\[frames\\]\\[3\\] numbers"):
        generate_header(model, name="M", namespace="m")


def test_the_reference_pair_survives_the_json_round_trip(tmp_path):
    from toolchain.rtneural_json import read_model

    rng = np.random.default_rng(4)
    model = set_reference_pair(Model(2, [dense(rng, 2, 3)]), rng.standard_normal((5, 2)), rng.standard_normal((5, 3)))
    inputs, outputs = reference_pair(read_model(write_model(model, tmp_path / "m.json")))
    np.testing.assert_array_equal(inputs, reference_pair(model)[0])
    np.testing.assert_array_equal(outputs, reference_pair(model)[1])


class Attention(Layer):
    """A layer kind the compile-time emitters do not know (stands for any future kind)."""

    kind = "attention"
    in_size = out_size = 4

    def expected_shapes(self):
        return {}


def test_a_layer_kind_without_a_compile_time_type_is_refused():
    with pytest.raises(UnsupportedError, match=r"layers\[1\] \(attention\): RTNeural's compile-time API \(ModelT\) has no layer for 'attention'"):
        generate_header(Model(4, [Dense(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)), Attention()]), name="M", namespace="m")


def test_a_stack_too_deep_for_a_modelt_type_is_refused_with_one_line(tmp_path):
    rng = np.random.default_rng(5)
    layers = [dense(rng, 2, 2, "tanh") for _ in range(header.MAX_COMPILE_TIME_LAYERS // 2 + 1)]
    path = write_model(Model(2, layers), tmp_path / "deep.json")
    result = CliRunner().invoke(app, ["cpp", str(path), "-o", str(tmp_path / "deep.h")])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: {path}: layers: {header.MAX_COMPILE_TIME_LAYERS + 2} compile-time layers "
                                     f"(activations count as layers) exceed the {header.MAX_COMPILE_TIME_LAYERS} a ModelT type "
                                     "can nest within compilers' default template depth")
    assert not (tmp_path / "deep.h").exists()


def test_a_failed_generation_leaves_an_existing_header_untouched(tmp_path):
    rng = np.random.default_rng(6)
    path = write_model(Model(2, [dense(rng, 2, 3)]), tmp_path / "m.json")
    target = tmp_path / "m.h"
    target.write_text("previous")
    result = CliRunner().invoke(app, ["cpp", str(path), "-o", str(target), "--namespace", "not a namespace"])
    assert result.exit_code == 2 and "--namespace: 'not a namespace' is not a usable C++ identifier" in result.stderr
    assert target.read_text() == "previous"
    assert sorted(tmp_path.iterdir()) == sorted([path, target])  # no temporary file left behind


def test_the_command_writes_the_header_and_says_what_it_holds(tmp_path):
    rng = np.random.default_rng(7)
    model = set_reference_pair(Model(2, [dense(rng, 2, 3)]), np.ones((6, 2)), np.ones((6, 3)))
    path = write_model(model, tmp_path / "emotion_recognizer.json")
    result = CliRunner().invoke(app, ["cpp", str(path), "-o", str(tmp_path / "out.h"), "--embed-weights"])
    assert result.exit_code == 0, result.output
    assert "emotion_recognizer::EmotionRecognizer (1 compile-time layers, 9 weights compiled in; self_test() over 6 reference frames)" in result.stdout
    assert "using EmotionRecognizer = RTNeural::ModelT<float, 2, 3," in (tmp_path / "out.h").read_text()


@pytest.mark.parametrize("stem, name, namespace", [("emotion_recognizer", "EmotionRecognizer", "emotion_recognizer"),
                                                   ("GroovePredictor", "GroovePredictor", "groove_predictor"),
                                                   ("7-band eq", "Model7BandEq", "model7_band_eq")])
def test_default_names_come_from_the_file_name(stem, name, namespace):
    assert default_name(f"{stem}.json") == name
    assert default_namespace(name) == namespace
