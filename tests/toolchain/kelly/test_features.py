"""The one feature function (``features.frame_features``): its layout hears what each group promises, and
training and the streaming ``--audio`` path see the same numbers for the same audio.

Independent reference for "the same numbers": the trained-model route (PyTorch modules on inputs built
by the training code from ``piece_from_midi``'s features) against the engine streaming the frames that
``kelly-tc pipeline --audio`` computed from a wav of the same samples. Tolerance 1e-4: the engine matches
PyTorch to 1e-5 (the export's check) and the JSON rounds outputs to 6 decimals."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import require_modules
require_modules("librosa")
pretty_midi = require_modules("pretty_midi")
soundfile = require_modules("soundfile")

from tests.toolchain.kelly.conftest import band_midi  # noqa: E402
from toolchain.kelly.features import LEVEL_LAYOUT, frame_features  # noqa: E402
from toolchain.kelly.spec import (FEATURE_GROUPS, FEATURE_SIZE, HOP_LENGTH, PITCH_LOWEST, SAMPLE_RATE,  # noqa: E402
                                  MODEL_NAMES, PIPELINE, encode_emotion, pipeline_input)

PITCH = slice(*FEATURE_GROUPS["pitch"])
LEVEL = slice(*FEATURE_GROUPS["level"])


def sine(midi_pitch: float, seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 440.0 * 2 ** ((midi_pitch - 69) / 12) * t)).astype(np.float32)


def test_frames_have_the_spec_layout_and_librosa_frame_count():
    audio = sine(69, 1.3, 0.3)
    features = frame_features(audio)
    assert features.shape == (1 + len(audio) // HOP_LENGTH, FEATURE_SIZE) and features.dtype == np.float32
    assert len(LEVEL_LAYOUT) == FEATURE_GROUPS["level"][1] - FEATURE_GROUPS["level"][0]
    assert np.all(np.isfinite(features))


@pytest.mark.parametrize("pitch", [43, 69, 94])
def test_semitone_bins_peak_at_the_sounding_pitch(pitch):
    middle = frame_features(sine(pitch, 1.0, 0.2))[20:-20, PITCH]  # away from the edges' padding
    assert np.all(np.argmax(middle, axis=1) + PITCH_LOWEST == pitch)


def test_semitone_bins_do_not_depend_on_loudness_but_the_level_group_does():
    quiet, loud = frame_features(sine(64, 1.0, 0.02)), frame_features(sine(64, 1.0, 0.4))
    np.testing.assert_allclose(quiet[20:-20, PITCH], loud[20:-20, PITCH], atol=0.02)  # relative to the frame's peak
    loudness = LEVEL.start + LEVEL_LAYOUT.index("loudness")
    # 26 dB apart; the loudness value maps 40 dB to 1.0
    assert loud[20:-20, loudness].mean() - quiet[20:-20, loudness].mean() == pytest.approx(26.0 / 40.0, abs=0.03)


def test_silence_has_floor_semitones_and_no_register():
    features = frame_features(np.zeros(SAMPLE_RATE, np.float32))
    assert np.all(features[:, PITCH] == -1.5)
    assert np.all(features[:, LEVEL.start + LEVEL_LAYOUT.index("polyphony")] == 0)


def test_each_model_reads_its_groups_in_order():
    """The wiring table, behaviourally: tag every feature group and the embedding, assemble each input."""
    features = np.zeros((1, FEATURE_SIZE), np.float32)
    for tag, (start, stop) in enumerate(FEATURE_GROUPS.values(), start=1):
        features[:, start:stop] = tag  # mel 1, pitch 2, level 3
    embedding = -np.arange(1, 65, dtype=np.float32)[None]  # -1 .. -64
    values = {"features": features, "EmotionRecognizer": embedding}
    expected = {"EmotionRecognizer": [1] * 32 + [2] * 64 + [3] * 32, "MelodyTransformer": [2] * 64,
                "HarmonyPredictor": list(range(-1, -65, -1)) + [2] * 64, "DynamicsEngine": [3] * 32,
                "GroovePredictor": [3] * 32 + list(range(-33, -65, -1))}
    for name in MODEL_NAMES:
        assert pipeline_input(name, values)[0].tolist() == expected[name], name
    assert list(PIPELINE) == list(MODEL_NAMES)


def test_training_features_are_the_streaming_features(kelly_models, tmp_path):
    """The same audio through the training path (piece_from_midi -> model inputs -> PyTorch) and through
    ``kelly-tc pipeline --audio`` (wav -> frames -> MultiModelProcessor -> JSON) gives the same outputs."""
    import torch
    from typer.testing import CliRunner

    from toolchain.cli import app
    from toolchain.kelly.datasets.music import piece_from_midi
    from toolchain.kelly.features import render_midi

    midi = pretty_midi.PrettyMIDI(str(band_midi(tmp_path / "band.mid", drums=False)))
    midi.instruments[0].notes = [n for n in midi.instruments[0].notes if n.end <= 3.0]
    midi.instruments[1].notes = [n for n in midi.instruments[1].notes if n.end <= 3.0]
    piece = piece_from_midi(midi, "band", "test", max_seconds=3.0)
    wav = tmp_path / "band.wav"  # float samples: the wav holds exactly what training rendered
    soundfile.write(wav, render_midi(midi, max_seconds=midi.get_end_time()), SAMPLE_RATE, subtype="FLOAT")

    result = CliRunner().invoke(app, ["pipeline", "--audio", str(wav), "--models", str(kelly_models.directory),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    streamed = json.loads((tmp_path / "out" / "band.outputs.json").read_text())["outputs"]
    values = {"features": piece.features}
    with torch.no_grad():
        for name in MODEL_NAMES:  # the embedding feeds on: no teacher forcing in this comparison
            inputs = torch.from_numpy(pipeline_input(name, values))[None]
            values[name] = kelly_models.torch_models[name](inputs)[0].numpy()
            np.testing.assert_allclose(np.asarray(streamed[name]), values[name], atol=1e-4, err_msg=name)
    assert encode_emotion(0.0, 0.0).shape == (64,)
