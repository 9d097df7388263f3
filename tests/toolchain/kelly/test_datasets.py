"""Each loader reads its public layout (files the tests wrote), skips and counts the planted bad samples."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_modules

from toolchain.errors import InputError
from toolchain.kelly.config import load_config
from toolchain.kelly.datasets.base import SkipCounter, forward_fill, one_hot, pieces_to_sequences, split
from toolchain.kelly.datasets.synthetic import synthetic_sequences
from toolchain.kelly.spec import FRAME_RATE, MODEL_NAMES, decode_emotion, get_spec

require_modules("librosa")
from toolchain.kelly.chords import parse_chord  # noqa: E402
from toolchain.kelly.datasets import DataBuilder, find_dataset, load_model_data  # noqa: E402
from toolchain.kelly.datasets.deam import deam_pieces  # noqa: E402
from toolchain.kelly.datasets.midi_trees import tree_pieces  # noqa: E402
from toolchain.kelly.spec import FEATURE_SIZE  # noqa: E402
from toolchain.kelly.datasets.progressions import progression_pieces  # noqa: E402


@pytest.fixture(scope="module")
def deam(datasets_dir):
    skips = SkipCounter()
    return deam_pieces(datasets_dir / "DEAM", 100, 30.0, skips), skips


def test_deam_reads_annotated_songs_with_audio_rescaled_to_plus_minus_one(deam):
    pieces, _ = deam
    assert [p.name for p in pieces] == ["2", "3"]
    assert pieces[0].emotion == pytest.approx(((3.1 - 5) / 4, (5.4 - 5) / 4))
    assert pieces[1].emotion == pytest.approx((0.5, -0.75))
    assert pieces[1].features.shape == (1 + int(2.5 * 22050) // 512, FEATURE_SIZE)


def test_deam_skips_and_counts_missing_values_bad_ratings_corrupt_and_missing_audio(deam):
    _, skips = deam
    assert skips.counts["deam"] == 4
    reasons = " | ".join(skips.reasons)
    assert "line 4" in reasons and "line 7" in reasons and "song 5" in reasons and "song 6" in reasons


def test_deam_features_hear_loudness(deam):
    quiet, loud = deam[0]
    # song 3 is 20 dB louder (amplitude 0.5 vs 0.05): +0.5 in feature units (40 dB per unit), less the
    # level split over three partials instead of two (-3.5 dB)
    assert loud.features[:, :128].max() - quiet.features[:, :128].max() == pytest.approx(0.5 - 3.5 / 40, abs=0.03)  # log-mel


def test_deam_without_annotations_is_a_clear_error(tmp_path):
    (tmp_path / "DEAM" / "MEMD_audio").mkdir(parents=True)
    with pytest.raises(InputError, match="static_annotations"):
        deam_pieces(tmp_path / "DEAM", 10, 10.0, SkipCounter())


def test_midi_tree_skips_and_counts_corrupt_and_empty_files(datasets_dir):
    skips = SkipCounter()
    pieces = tree_pieces(datasets_dir / "lmd_full", "lakh", 100, 30.0, False, skips)
    assert sorted(p.name for p in pieces) == ["0/0a1b2c.mid", "1/1d2e3f.mid"]
    assert skips.counts["lakh"] == 2
    assert any("broken.mid" in r and "not a readable MIDI" in r for r in skips.reasons)
    assert any("2_empty.mid" in r and "no notes" in r for r in skips.reasons)


def test_midi_tree_gives_melody_chords_expression_groove_and_emotion(datasets_dir):
    major, minor = sorted(tree_pieces(datasets_dir / "lmd_full", "lakh", 100, 30.0, False, SkipCounter()), key=lambda p: p.name)
    frames = len(major.melody)
    assert frames == int(8.0 * FRAME_RATE) + 1  # four 4/4 bars at 120 bpm (the drums end last)
    assert major.expression.shape == (frames, 16) and major.groove.shape == (frames, 32)
    # the lead line (pitches 72-76, 0.9 beat per note) is on top except in the gaps between its notes
    assert 0.8 < np.isin(major.melody, np.arange(72, 77)).mean() < 0.95
    assert major.emotion[0] > 0 > minor.emotion[0]  # C major vs A minor
    assert minor.emotion[1] > major.emotion[1]  # 150 bpm vs 120 bpm, same notes


def test_groove_midi_drum_onsets_become_groove_targets(datasets_dir):
    (piece,) = tree_pieces(datasets_dir / "groove", "groove", 100, 30.0, False, SkipCounter())
    accents = piece.groove[len(piece.groove) // 2, 16:]
    np.testing.assert_allclose(accents[[0, 4, 6, 8, 12]], np.array([120, 70, 50, 110, 80]) / 127 * 2 - 1, atol=1e-6)
    assert np.all(accents[[1, 2, 3, 5, 7, 9, 10, 11, 13, 14, 15]] == -1)


def test_progressions_json_and_csv_are_parsed_rendered_and_labelled(datasets_dir):
    skips = SkipCounter()
    pieces = progression_pieces(datasets_dir / "harmony", 100, 30.0, skips)
    assert len(pieces) == 4 and skips.counts["harmony"] == 2
    assert any("Hm7" in r for r in skips.reasons) and any("Fxyz" in r for r in skips.reasons)
    csv_piece = next(p for p in pieces if p.name.startswith("chordonomicon.csv line 2"))
    # "<verse_1> C G Am F <chorus_1> F C G C" at 100 bpm, 4 beats per chord: 2.4 s per chord
    symbols = "C G Am F F C G C".split()
    frames = [int((i + 0.5) * 2.4 * FRAME_RATE) for i in range(len(symbols))]
    assert list(csv_piece.chords[frames]) == [parse_chord(s).index for s in symbols]
    assert csv_piece.features is not None and len(csv_piece.features) >= frames[-1]


def test_dataset_folders_are_found_by_their_public_names(datasets_dir):
    assert find_dataset(datasets_dir, "maestro").name == "maestro-v3.0.0"
    assert find_dataset(datasets_dir, "deam").name == "DEAM"
    assert find_dataset(datasets_dir / "nowhere", "deam") is None


def test_datasets_dir_feeds_every_model_and_reports_skips(datasets_dir, tmp_path):
    config = load_config(datasets_dir=str(datasets_dir), source="datasets", seq_len=16, cache_dir=str(tmp_path))
    data, skips = load_model_data(config)
    assert skips.total == 4 + 2 + 2  # deam, lakh, harmony as planted
    assert data["EmotionRecognizer"].sources == ["deam"] and data["EmotionRecognizer"].skipped == {"deam": 4}
    assert data["GroovePredictor"].sources == ["groove", "lakh"]
    for name in MODEL_NAMES:
        spec = get_spec(name)
        frames = 16 * (config.long_context_factor if name in config.long_context_models else 1)  # groove, dynamics: 64
        assert data[name].train.inputs.shape[1:] == (frames, spec.input_size)
        assert data[name].validation.targets.shape[1:] == (frames, spec.output_size)


def test_emotion_targets_are_the_documented_code_of_the_labels(datasets_dir, tmp_path):
    config = load_config(datasets_dir=str(datasets_dir), source="datasets", models=["EmotionRecognizer"], seq_len=8)
    sequences, _, _ = DataBuilder(config).sequences("EmotionRecognizer")
    valence, arousal = decode_emotion(sequences.targets)
    # every frame's target decodes (to the 0.001 decode grid) to its song's rescaled rating
    np.testing.assert_allclose(np.unique(np.round(valence, 3)), [(3.1 - 5) / 4, 0.5], atol=1e-3)
    np.testing.assert_allclose(np.unique(np.round(arousal, 3)), [-0.75, (5.4 - 5) / 4], atol=1e-3)


def test_missing_dataset_falls_back_with_a_note(tmp_path):
    config = load_config(datasets_dir=str(tmp_path), source="auto", models=["DynamicsEngine"], corpus_pieces=0)
    data, sources, notes = DataBuilder(config).sequences("DynamicsEngine")
    factor = config.windows("DynamicsEngine")[0] // config.seq_len  # long-context model: the same frames, longer windows
    assert sources == ["synthetic"] and len(data) == config.synthetic_sequences // factor
    assert any("maestro not found under" in n for n in notes) and any("synthetic" in n for n in notes)


def test_source_datasets_without_data_is_an_input_error(tmp_path):
    config = load_config(datasets_dir=str(tmp_path), source="datasets", models=["GroovePredictor"])
    with pytest.raises(InputError, match="no usable training data for GroovePredictor"):
        DataBuilder(config).sequences("GroovePredictor")


def test_too_little_data_for_a_split_is_an_input_error(datasets_dir):
    config = load_config(datasets_dir=str(datasets_dir), source="datasets", models=["EmotionRecognizer"], seq_len=90)
    with pytest.raises(InputError, match="only 1 sequence"):
        load_model_data(config)


def test_synthetic_data_is_the_same_for_the_same_seed_and_differs_across_seeds():
    a, b, c = (synthetic_sequences("GroovePredictor", 8, 12, seed) for seed in (5, 5, 6))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, c.inputs)


def test_synthetic_softmax_targets_are_distributions():
    data = synthetic_sequences("HarmonyPredictor", 4, 10, 0)
    np.testing.assert_allclose(data.targets.sum(-1), 1.0, atol=1e-5)


def test_split_never_cuts_a_piece_in_two():
    data = synthetic_sequences("DynamicsEngine", 40, 4, 0)
    data.groups = np.arange(40) // 4
    train, validation = split(data, 0.25, seed=1)
    assert not set(train.groups) & set(validation.groups)
    assert len(train) + len(validation) == 40 and len(set(validation.groups)) == 2


def test_windows_are_capped_at_max_sequences(datasets_dir):
    pieces = tree_pieces(datasets_dir / "lmd_full", "lakh", 100, 30.0, True, SkipCounter())  # rendered: inputs are audio
    assert len(pieces_to_sequences("MelodyTransformer", pieces, 8, 5, seed=0)) == 5


def test_forward_fill_and_one_hot():
    np.testing.assert_array_equal(forward_fill(np.array([-1, 3, -1, -1, 5, -1])), [-1, 3, 3, 3, 5, 5])
    np.testing.assert_array_equal(one_hot(np.array([2, -1]), 3), [[0, 0, 1], [0, 0, 0]])
