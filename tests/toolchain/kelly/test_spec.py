"""The spec table and the PyTorch modules built from it agree: sizes, layer kinds, parameter counts."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import require_modules
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchain.errors import InputError
from toolchain.kelly.spec import (
    FEATURE_GROUPS, FEATURE_SIZE, MODEL_NAMES, PIPELINE, SPECS, decode_emotion, encode_emotion, get_spec, pipeline_input,
)
from toolchain.layers import ACTIVATIONS

torch = require_modules("torch")
from toolchain.kelly.models import build_model, reference_pair, to_layer_model, torch_parameter_count  # noqa: E402

ISSUE_TABLE = {  # issue 4: input -> output, parameter target
    "EmotionRecognizer": (128, 64, 500_000), "MelodyTransformer": (64, 128, 400_000),
    "HarmonyPredictor": (128, 64, 100_000), "DynamicsEngine": (32, 16, 20_000), "GroovePredictor": (64, 32, 25_000),
}
OUTPUT_ACTIVATIONS = {"EmotionRecognizer": "tanh", "MelodyTransformer": "sigmoid", "HarmonyPredictor": "softmax",
                      "DynamicsEngine": "sigmoid", "GroovePredictor": "tanh"}


def test_spec_matches_the_issue_table():
    assert MODEL_NAMES == tuple(ISSUE_TABLE)
    for spec in SPECS:
        assert (spec.input_size, spec.output_size, spec.parameter_target) == ISSUE_TABLE[spec.name]
        assert spec.output_activation == OUTPUT_ACTIVATIONS[spec.name]


def test_rtneural_parameter_count_is_within_ten_percent_of_the_target():
    for spec in SPECS:
        low, high = spec.parameter_bounds()
        assert low <= spec.parameter_count("rtneural") <= high, spec.name


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torch_module_holds_the_spec_torch_count(name):
    model = build_model(name, seed=0)
    assert torch_parameter_count(model) == get_spec(name).parameter_count("torch")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_layer_records_hold_the_spec_rtneural_count(name):
    """The RTNeural count is what the exported layer list stores: one LSTM bias instead of PyTorch's two."""
    spec = get_spec(name)
    layers = to_layer_model(build_model(name, seed=0))
    assert layers.parameter_count() == spec.parameter_count("rtneural")
    lstm_units = sum(4 * layer.size for layer in spec.layers if layer.kind == "lstm")
    assert spec.parameter_count("torch") - spec.parameter_count("rtneural") == lstm_units


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_layer_records_follow_the_spec_stack(name):
    spec = get_spec(name)
    model = to_layer_model(build_model(name, seed=0))
    assert model.input_size == spec.input_size and model.output_size == spec.output_size
    assert [(layer.kind, layer.out_size, getattr(layer, "activation", "")) for layer in model.layers] == \
        [(layer.kind, layer.size, layer.activation) for layer in spec.layers]


def test_spec_uses_only_layers_and_activations_rtneural_runs():
    for spec in SPECS:
        for layer in spec.layers:
            assert layer.kind in ("dense", "lstm", "gru")
            assert layer.activation in ACTIVATIONS
            if layer.kind != "dense":  # RTNeural ignores "activation" on recurrent layers
                assert layer.activation == ""


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_module_maps_batch_time_features_to_the_output_size(name):
    spec = get_spec(name)
    y = build_model(name, seed=1)(torch.randn(3, 5, spec.input_size))
    assert y.shape == (3, 5, spec.output_size)


@pytest.mark.parametrize("name", ["EmotionRecognizer", "HarmonyPredictor", "GroovePredictor"])
def test_frame_by_frame_with_state_equals_the_sequence_forward(name):
    """What training computes over [B, T, F] is what a streaming engine computes one frame per call.
    Tolerance 1e-5: float32, the same ops in a different batching."""
    spec = get_spec(name)
    model = build_model(name, seed=2).eval()
    frames = torch.randn(23, spec.input_size)
    with torch.no_grad():
        np.testing.assert_allclose(model.stream(frames).numpy(), model(frames[None])[0].numpy(), atol=1e-5)


def test_state_matters_so_recurrent_layers_really_run_over_time():
    spec = get_spec("DynamicsEngine")
    model = build_model(spec.name, seed=3).eval()
    frames = torch.randn(10, spec.input_size)
    with torch.no_grad():
        stepped_from_zero = torch.cat([model(frame.reshape(1, 1, -1))[0] for frame in frames])
        assert not torch.allclose(stepped_from_zero, model(frames[None])[0], atol=1e-4)


def test_softmax_output_is_a_distribution_and_logits_precede_it():
    model = build_model("HarmonyPredictor", seed=4)
    x = torch.randn(2, 6, 128)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).sum(-1).numpy(), 1.0, atol=1e-5)
        np.testing.assert_allclose(model(x).numpy(), torch.softmax(model.logits(x), -1).numpy(), atol=1e-6)


def test_unknown_model_name_is_an_input_error():
    with pytest.raises(InputError, match="unknown Kelly model 'Emotion'"):
        get_spec("Emotion")


def test_spec_imports_without_torch():
    code = "import sys, toolchain.kelly.spec, toolchain.kelly.chords, toolchain.kelly.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1, 1), st.floats(-1, 1))
def test_emotion_code_decodes_to_the_encoded_values(valence, arousal):
    code = encode_emotion(valence, arousal)
    assert code.shape == (64,)
    decoded = decode_emotion(code)
    assert abs(decoded[0] - valence) <= 1e-3 and abs(decoded[1] - arousal) <= 1e-3  # the decode grid step


def test_emotion_code_puts_valence_in_dims_0_to_31_and_arousal_in_32_to_63():
    code = encode_emotion(0.5, -0.5)
    assert np.all(code[:32] == encode_emotion(0.5, 0.9)[:32])
    assert np.all(code[32:] == encode_emotion(-0.9, -0.5)[32:])
    assert code[:32].mean() > 0 > code[32:].mean()


def test_pipeline_wiring_feeds_harmony_the_embedding_then_the_semitone_bins():
    features = np.arange(FEATURE_SIZE, dtype=np.float32)[None]
    embedding = -np.arange(64, dtype=np.float32)[None] - 1
    x = pipeline_input("HarmonyPredictor", {"features": features, "EmotionRecognizer": embedding})
    np.testing.assert_array_equal(x[0], np.concatenate([embedding[0], features[0, slice(*FEATURE_GROUPS["pitch"])]]))
    assert pipeline_input("DynamicsEngine", {"features": features}).shape == (1, 32)
    for name, slices in PIPELINE.items():
        assert sum(s.stop - s.start for s in slices) == get_spec(name).input_size
        assert all(s.stop <= (FEATURE_SIZE if s.source == "features" else get_spec(s.source).output_size) for s in slices)


def test_reference_pair_is_the_model_output_from_zero_state_frame_by_frame():
    model = build_model("GroovePredictor", seed=5)
    inputs, outputs = reference_pair(model, frames=6)
    assert np.array(inputs).shape == (6, 64) and np.array(outputs).shape == (6, 32)
    with torch.no_grad():
        streamed = model.stream(torch.tensor(inputs, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(streamed, outputs, atol=1e-6)  # float32 outputs stored as float64
