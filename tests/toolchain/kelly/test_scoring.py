"""Music metrics through mir_eval: a score against itself is perfect, and each kind of damage costs what
mir_eval's definitions say it should (50 ms onset tolerance, duration-weighted chord accuracy)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REPO, require_modules

pretty_midi = require_modules("pretty_midi")
require_modules("mir_eval")

from toolchain.errors import InputError  # noqa: E402
from toolchain.kelly.scoring import compare_midi, frame_scores, harte_label, midi_chords, note_scores  # noqa: E402

SCORE = REPO / "examples" / "example_chords.mid"


def altered_score(path, shift_melody=0, delay=0.0, chord_pitch_shift=0):
    midi = pretty_midi.PrettyMIDI(str(SCORE))
    for instrument in midi.instruments:
        for note in instrument.notes:
            if instrument.name == "melody":
                note.pitch += shift_melody
                note.start, note.end = note.start + delay, note.end + delay
            else:
                note.pitch += chord_pitch_shift
    midi.write(str(path))
    return path


def test_the_score_against_itself_is_perfect():
    scores = compare_midi(SCORE, SCORE)
    assert scores["melody"]["f1"] == 1.0 and scores["melody"]["f1_with_offsets"] == 1.0
    assert scores["melody"]["reference_notes"] == 16
    assert all(value == 1.0 for value in scores["chords"].values())


def test_onsets_within_50_ms_count_and_later_ones_do_not(tmp_path):
    assert compare_midi(SCORE, altered_score(tmp_path / "a.mid", delay=0.04))["melody"]["f1"] == 1.0
    assert compare_midi(SCORE, altered_score(tmp_path / "b.mid", delay=0.06))["melody"]["f1"] == 0.0
    assert compare_midi(SCORE, altered_score(tmp_path / "c.mid", shift_melody=1))["melody"]["f1"] == 0.0


def test_chords_a_semitone_off_score_zero(tmp_path):
    scores = compare_midi(SCORE, altered_score(tmp_path / "d.mid", chord_pitch_shift=1))
    assert scores["chords"]["majmin"] == 0.0 and scores["chords"]["root"] == 0.0
    assert scores["melody"]["f1"] == 1.0


def test_chord_segments_of_the_score_are_its_progression():
    intervals, labels = midi_chords(pretty_midi.PrettyMIDI(str(SCORE)))
    assert labels == ["C:maj", "A:min", "F:maj", "G:7", "C:maj"]
    np.testing.assert_allclose(intervals[:, 0], [0.0, 2.0, 4.0, 5.0, 6.0])


def test_harte_labels_cover_every_class():
    assert [harte_label(i) for i in (0, 1, 2, 3, 4, 60, 63, -1)] == ["C:maj", "C:min", "C:7", "C:min7", "C:dim",
                                                                       "C:aug", "Eb:aug", "N"]


def test_frame_accuracy_counts_sounding_reference_frames():
    reference = np.array([60, 60, 62, 62, -1, -1])
    estimate = np.array([60, 61, 62, -1, 64, -1])
    scores = frame_scores(reference, estimate)
    assert scores["raw_pitch_accuracy"] == pytest.approx(0.5)  # 2 of the 4 sounding frames right


def test_no_estimated_notes_score_zero_not_an_error():
    scores = note_scores(np.array([[0.0, 0.5, 60]]), np.zeros((0, 3)))
    assert scores["f1"] == 0.0 and scores["estimated_notes"] == 0


def test_a_reference_without_the_two_tracks_is_refused(tmp_path):
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(pretty_midi.Instrument(0, name="piano"))
    midi.write(str(tmp_path / "plain.mid"))
    with pytest.raises(InputError, match="needs an instrument named 'melody'"):
        compare_midi(tmp_path / "plain.mid", SCORE)
