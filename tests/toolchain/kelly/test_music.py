"""Labels measured on MIDI whose content the test wrote: melody, chords, groove, expression, emotion."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_modules

from toolchain.kelly.chords import parse_chord
from toolchain.kelly.spec import EXPRESSION_PARAMETERS, FRAME_RATE

pretty_midi = require_modules("pretty_midi")
from toolchain.kelly.datasets import music  # noqa: E402

from .conftest import GROOVE_HITS, band_midi  # noqa: E402


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    return pretty_midi.PrettyMIDI(str(band_midi(tmp_path_factory.mktemp("band") / "band.mid")))


def frame_at(seconds: float) -> int:
    return int(round(seconds * FRAME_RATE))


def test_melody_is_the_highest_sounding_pitch(band):
    times = music.frame_times(frame_at(8.0))
    melody = music.melody_line(band, times)
    # bar b, beat s holds pitch 72 + (b + s) % 5 for 0.9 beat (a beat is 0.5 s at 120 bpm), above the chords
    assert [melody[frame_at(t)] for t in (0.2, 1.2, 1.7, 2.7)] == [72, 74, 75, 74]
    assert melody[frame_at(0.465)] == 55  # between melody notes the top chord note (G3) is highest


def test_chords_are_labelled_from_the_sounding_pitch_classes():
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    voicings = ((48, 52, 55, 60), (45, 53, 60, 65), (43, 59, 62, 65, 67), (57, 60, 64, 69))  # C, F/A, G7, Am
    for index, pitches in enumerate(voicings):
        piano.notes += [pretty_midi.Note(80, p, index * 1.0, index * 1.0 + 1.0) for p in pitches]
    midi.instruments.append(piano)
    chords = music.chord_line(midi, music.frame_times(frame_at(4.0)))
    expected = [parse_chord(symbol).index for symbol in ("C", "F", "G7", "Am")]
    assert [chords[frame_at(index + 0.5)] for index in range(4)] == expected


def test_groove_is_the_planted_pattern_of_the_bars_already_heard(band):
    times = music.frame_times(frame_at(8.0))
    groove = music.groove_line(band, times)
    expected_offsets, expected_accents = np.zeros(16), np.full(16, -1.0)
    for step, offset, velocity in GROOVE_HITS:
        expected_offsets[step], expected_accents[step] = offset, velocity / 127 * 2 - 1
    first = groove[frame_at(1.0)]  # during the first bar nothing has been heard yet: causal labels
    assert np.all(first[:16] == 0) and np.all(first[16:] == -1)
    for bar in range(1, 4):  # every bar plays the same pattern, so the mean of the bars heard is that pattern
        row = groove[frame_at(bar * 2.0 + 1.0)]
        # MIDI stores ticks (pretty_midi writes 220 per beat = 27.5 per half-step); rounding to a tick
        # moves an onset by up to half a tick, 0.018 half-steps
        np.testing.assert_allclose(row[:16], expected_offsets, atol=0.5 / 27.5 + 1e-6)
        np.testing.assert_allclose(row[16:], expected_accents, atol=1e-6)


def test_expression_measures_velocity_density_and_tempo(band):
    times = music.frame_times(frame_at(8.0))
    expression = music.expression_line(band, times)
    assert expression.shape == (len(times), len(EXPRESSION_PARAMETERS))
    assert expression.min() >= 0 and expression.max() <= 1
    row = dict(zip(EXPRESSION_PARAMETERS, expression[frame_at(5.0)]))
    # velocities of the band: chords and melody at 90, drums at 120/70/50/110/80
    assert 0.55 < row["velocity_mean"] < 0.8 and row["velocity_max"] == pytest.approx(120 / 127, abs=1e-6)
    assert row["tempo"] == pytest.approx(120 / 240)
    assert row["sustain_pedal"] == 0 and row["polyphony"] > 0


def test_sustain_pedal_is_read_from_control_change_64():
    midi = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    piano.notes.append(pretty_midi.Note(80, 60, 0.0, 3.0))
    piano.control_changes += [pretty_midi.ControlChange(64, 127, 1.0), pretty_midi.ControlChange(64, 0, 2.0)]
    midi.instruments.append(piano)
    pedal = music.pedal_at(midi, np.array([0.5, 1.5, 2.5]))
    np.testing.assert_array_equal(pedal, [0, 1, 0])


def test_emotion_rule_gives_major_music_higher_valence_and_faster_louder_music_higher_arousal(tmp_path):
    calm_major = pretty_midi.PrettyMIDI(str(band_midi(tmp_path / "a.mid", tempo=80, drums=False, velocity=50)))
    busy_minor = pretty_midi.PrettyMIDI(str(band_midi(tmp_path / "b.mid", tempo=170, minor=True, velocity=120)))
    valence_a, arousal_a = music.emotion_rule(calm_major, music.chord_line(calm_major, music.frame_times(300)))
    valence_b, arousal_b = music.emotion_rule(busy_minor, music.chord_line(busy_minor, music.frame_times(300)))
    assert music.key_mode(calm_major) == 1 and music.key_mode(busy_minor) == -1
    assert valence_a > 0.5 and valence_b < -0.5
    assert arousal_b > arousal_a
    assert all(-1 <= v <= 1 for v in (valence_a, arousal_a, valence_b, arousal_b))
