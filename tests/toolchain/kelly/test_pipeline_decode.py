"""Decoding the pipeline's outputs into music (``toolchain.kelly.decode``): chords from harmony, notes
from melody, onsets where they are heard, velocities from dynamics and accents, a readable MIDI."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_modules

from toolchain.kelly.chords import CHORD_CLASSES
from toolchain.kelly.decode import ACCENT_VELOCITY, ONSET_LATENCY_FRAMES, decode, smooth_labels, write_midi
from toolchain.kelly.spec import EXPRESSION_PARAMETERS, FRAME_RATE

TEMPO, VELOCITY = EXPRESSION_PARAMETERS.index("tempo"), EXPRESSION_PARAMETERS.index("velocity_mean")


def outputs(frames: int, chords: list[tuple[str, int]], tempo_bpm: float = 120.0, velocity: float = 0.5):
    """Pipeline-shaped outputs: one-hot harmony following ``chords`` [(name, frames)], silent melody,
    constant dynamics, a groove with no offsets and no onsets."""
    harmony = np.zeros((frames, 64), np.float32)
    row = 0
    for name, length in chords:
        harmony[row:row + length, CHORD_CLASSES.index(name)] = 1.0
        row += length
    dynamics = np.zeros((frames, 16), np.float32)
    dynamics[:, TEMPO], dynamics[:, VELOCITY] = tempo_bpm / 240.0, velocity
    groove = np.zeros((frames, 32), np.float32)
    groove[:, 16:] = -1.0
    return {"EmotionRecognizer": np.zeros((frames, 64), np.float32), "MelodyTransformer": np.zeros((frames, 128), np.float32),
            "HarmonyPredictor": harmony, "DynamicsEngine": dynamics, "GroovePredictor": groove}


def test_short_chord_runs_take_the_previous_chord():
    labels = np.array([1] * 20 + [2] * 3 + [1] * 20 + [4] * 30 + [5] * 2)
    assert smooth_labels(labels, 5).tolist() == [1] * 43 + [4] * 32
    assert smooth_labels(np.array([3, 3, 1, 1, 1, 1, 1]), 3).tolist() == [1] * 7  # the first run: the next one


def test_chords_are_the_most_probable_class_per_stretch():
    result = decode(outputs(260, [("C", 100), ("G", 5), ("C", 5), ("Am", 150)]))
    assert [e.label for e in result.chords] == ["C", "Am"]
    assert result.chords[1].pitches == (36 + 9, 48 + 9, 48 + 12, 48 + 16)  # A2 bass, A3 C4 E4
    assert result.tempo == 120.0


def test_onsets_are_where_they_are_heard_and_chords_end_where_the_next_begins():
    data = outputs(200, [("C", 90), ("F", 110)])
    data["GroovePredictor"][:, 1] = 0.4  # a groove offset changes no onset: the MIDI lines up with the recording
    first, second = decode(data).chords
    assert second.start == pytest.approx((90 - ONSET_LATENCY_FRAMES) / FRAME_RATE, abs=1e-4)
    assert first.start == 0.0 and first.end == second.start


def test_velocity_is_dynamics_plus_the_accent_of_a_groove_onset():
    data = outputs(200, [("C", 90), ("F", 110)], velocity=0.6)
    assert decode(data).chords[1].velocity == round(127 * 0.6)  # no groove onset at that step
    step = round((90 - ONSET_LATENCY_FRAMES) / FRAME_RATE / (60.0 / 120.0 / 4)) % 16  # the onset's 16th step
    data["GroovePredictor"][:, 16 + step] = 0.5  # an onset with accent 0.5 on that step
    assert decode(data).chords[1].velocity == round(127 * 0.6 + ACCENT_VELOCITY * 0.5)


def test_melody_notes_need_the_threshold_and_a_minimum_length():
    data = outputs(120, [("C", 120)])
    data["MelodyTransformer"][10:40, 67] = 0.9  # G4, long enough
    data["MelodyTransformer"][50:52, 72] = 0.9  # two frames: too short
    data["MelodyTransformer"][60:100, 64] = 0.4  # below the threshold
    notes = decode(data).notes
    assert [(n.label, n.pitches) for n in notes] == [("G4", (67,))]
    assert notes[0].end == pytest.approx((40 - ONSET_LATENCY_FRAMES) / FRAME_RATE, abs=1e-4)


def test_midi_file_reads_back_with_the_decoded_events(tmp_path):
    pretty_midi = require_modules("pretty_midi")
    data = outputs(200, [("C", 100), ("G7", 100)])
    data["MelodyTransformer"][20:60, 76] = 0.8
    decoded = decode(data)
    path = write_midi(decoded, tmp_path / "out.mid")
    midi = pretty_midi.PrettyMIDI(str(path))
    chords, melody = midi.instruments
    # G (55) sounds in C and in G7: held through as one note, so it is written once
    assert sorted(n.pitch for n in chords.notes) == sorted(set(p for e in decoded.chords for p in e.pitches))
    assert [(n.pitch, n.start, n.end) for n in chords.notes if n.pitch == 55] == [(55, 0.0, pytest.approx(decoded.chords[1].end, abs=5e-3))]
    assert [n.pitch for n in melody.notes] == [76]
    assert midi.get_tempo_changes()[1][0] == pytest.approx(120.0)
