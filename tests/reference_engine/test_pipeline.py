"""The five-model pipeline (``MultiModelProcessor``): wired per the spec, streaming with state, the same
frame by frame as over the whole file, documented fallbacks for missing or invalid models, and no
allocation per frame.

The independent reference is PyTorch: the five torch modules of ``kelly_models`` run on inputs
assembled by hand from the spec's wiring table. Tolerance 1e-5 absolute (float32, as the export checks).
"""
from __future__ import annotations

import json
import logging
import shutil
import tracemalloc

import numpy as np
import pytest

from tests.conftest import require_modules

require_modules("torch")

from reference_engine.pipeline import (FALLBACK_CHORD_FRAMES, FALLBACK_PROGRESSION, NEUTRAL_EXPRESSION,  # noqa: E402
                                       MultiModelProcessor)
from toolchain.errors import InputError  # noqa: E402
from toolchain.kelly.chords import CHORD_CLASSES  # noqa: E402
from toolchain.kelly.spec import EXPRESSION_PARAMETERS, FEATURE_SIZE, MODEL_NAMES, decode_emotion  # noqa: E402

ATOL = 1e-5


@pytest.fixture
def models_dir(kelly_models, tmp_path):
    return kelly_models.copy_json(tmp_path / "models")


@pytest.fixture(scope="module")
def features():
    return np.random.default_rng(11).uniform(-1.5, 1.5, (60, FEATURE_SIZE)).astype(np.float32)


def torch_pipeline(kelly_models, features):
    """The wiring written out by hand (issue 14): [mel 96-127, semitone bins, level] -> emotion;
    semitone bins -> melody; [embedding, semitone bins] -> harmony; level -> dynamics;
    [level, embedding dims 32-63] -> groove. Each model runs the whole sequence from zero state."""
    import torch

    def run(name, inputs):
        with torch.no_grad():
            return kelly_models.torch_models[name](torch.from_numpy(np.ascontiguousarray(inputs))[None])[0].numpy()

    pitch, level = features[:, 128:192], features[:, 192:224]
    embedding = run("EmotionRecognizer", features[:, 96:224])
    return {"EmotionRecognizer": embedding, "MelodyTransformer": run("MelodyTransformer", pitch),
            "HarmonyPredictor": run("HarmonyPredictor", np.concatenate([embedding, pitch], axis=1)),
            "DynamicsEngine": run("DynamicsEngine", level),
            "GroovePredictor": run("GroovePredictor", np.concatenate([level, embedding[:, 32:]], axis=1))}


def streamed(processor, features):
    processor.reset()
    rows = {name: [] for name in MODEL_NAMES}
    for frame in features:
        outputs = processor.process_frame(frame)
        for name in MODEL_NAMES:
            rows[name].append(outputs[name].copy())
    return {name: np.stack(rows[name]) for name in MODEL_NAMES}


def test_frame_by_frame_outputs_equal_pytorch_wired_per_the_spec(kelly_models, features):
    processor = MultiModelProcessor(kelly_models.directory)
    assert processor.fallbacks == []
    expected = torch_pipeline(kelly_models, features)
    produced = streamed(processor, features)
    for name in MODEL_NAMES:
        assert np.abs(produced[name] - expected[name]).max() <= ATOL, name


def test_run_full_pipeline_equals_streaming_frame_by_frame(kelly_models, features):
    processor = MultiModelProcessor(kelly_models.directory)
    frame_by_frame = streamed(processor, features)
    whole = processor.run_full_pipeline(features)
    for name in MODEL_NAMES:
        assert whole[name].shape == frame_by_frame[name].shape
        np.testing.assert_array_equal(whole[name], frame_by_frame[name])


def test_state_carries_across_calls_and_reset_restarts(kelly_models, features):
    processor = MultiModelProcessor(kelly_models.directory)
    first = processor.run_full_pipeline(features[:30])
    continued = processor.run_full_pipeline(features[30:], reset=False)
    whole = processor.run_full_pipeline(features)
    fresh = processor.run_full_pipeline(features[30:])
    np.testing.assert_array_equal(np.concatenate([first["GroovePredictor"], continued["GroovePredictor"]]), whole["GroovePredictor"])
    assert np.abs(fresh["GroovePredictor"] - whole["GroovePredictor"][30:]).max() > 1e-4  # state mattered


def test_missing_model_is_replaced_by_its_fallback_and_reported(models_dir, features, caplog):
    (models_dir / "MelodyTransformer.json").unlink()
    with caplog.at_level(logging.WARNING):
        processor = MultiModelProcessor(models_dir)
    assert processor.fallbacks == ["MelodyTransformer"]
    status = {entry["name"]: entry for entry in processor.describe()}
    assert status["MelodyTransformer"]["source"] == "fallback" and "missing" in status["MelodyTransformer"]["reason"]
    assert status["MelodyTransformer"]["fallback"] == "uniform note probabilities (1/128 each)"
    assert "MelodyTransformer.json: missing" in caplog.text and "using the fallback" in caplog.text
    outputs = processor.run_full_pipeline(features)
    np.testing.assert_array_equal(outputs["MelodyTransformer"], np.full((60, 128), 1 / 128, np.float32))
    assert all(status[name]["source"] == "model" for name in MODEL_NAMES if name != "MelodyTransformer")


def test_tampered_and_wrongly_sized_models_fall_back(models_dir, kelly_models):
    path = models_dir / "HarmonyPredictor.json"
    document = json.loads(path.read_text())
    document["layers"][0]["weights"][1][0] += 0.5
    path.write_text(json.dumps(document))
    shutil.copy(kelly_models.json_paths["GroovePredictor"], models_dir / "DynamicsEngine.json")
    processor = MultiModelProcessor(models_dir)
    assert processor.fallbacks == ["HarmonyPredictor", "DynamicsEngine"]
    reasons = {entry["name"]: entry["reason"] for entry in processor.describe()}
    assert "reference pair not reproduced" in reasons["HarmonyPredictor"]
    assert "maps 64 -> 32, the pipeline needs 32 -> 16" in reasons["DynamicsEngine"]


def test_fallbacks_give_the_documented_values(tmp_path, features):
    processor = MultiModelProcessor(tmp_path)  # an empty folder: every model falls back
    assert processor.fallbacks == list(MODEL_NAMES)
    frames = np.zeros((2 * FALLBACK_CHORD_FRAMES * 2 + 5, FEATURE_SIZE), np.float32)
    outputs = processor.run_full_pipeline(frames)
    valence, arousal = decode_emotion(outputs["EmotionRecognizer"])
    assert np.all(valence == 0) and np.all(arousal == 0)
    chords = [CHORD_CLASSES[i] for i in np.argmax(outputs["HarmonyPredictor"][::FALLBACK_CHORD_FRAMES], axis=1)]
    assert chords == ["C", "F", "G", "C", "C"] and [CHORD_CLASSES[i] for i in FALLBACK_PROGRESSION] == ["C", "F", "G", "C"]
    assert np.all(outputs["HarmonyPredictor"].sum(axis=1) == 1)
    tempo = outputs["DynamicsEngine"][:, EXPRESSION_PARAMETERS.index("tempo")] * 240
    assert np.all(tempo == 120) and len(NEUTRAL_EXPRESSION) == len(EXPRESSION_PARAMETERS)
    groove = outputs["GroovePredictor"][0]
    assert np.all(groove[:16] == 0) and list(np.flatnonzero(groove[16:] > -1)) == [0, 4, 8, 12]


def test_process_frame_allocates_nothing_per_frame(kelly_models, features):
    """tracemalloc over 2,000 frames: the traced peak grows by less than one output row (512 bytes),
    while a control that keeps a copy of one output per frame grows by more than 2,000 rows."""
    processor = MultiModelProcessor(kelly_models.directory)
    frames = np.resize(features, (2000, FEATURE_SIZE))
    process, kept = processor.process_frame, []

    def peak_growth(step):
        for frame in frames[:50]:
            step(frame)  # warm up: anything created once on first use is not per frame
        kept.clear()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for frame in frames:
            step(frame)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak - before

    assert peak_growth(lambda f: kept.append(process(f)["MelodyTransformer"].copy())) > 2000 * 512
    assert peak_growth(process) < 512


def test_process_frame_refuses_a_wrong_frame(kelly_models):
    processor = MultiModelProcessor(kelly_models.directory)
    with pytest.raises(InputError, match=r"shape \[224\], got \[64\]"):
        processor.process_frame(np.zeros(64, np.float32))
    with pytest.raises(InputError, match="finite features"):
        processor.run_full_pipeline(np.full((3, FEATURE_SIZE), np.nan, np.float32))
