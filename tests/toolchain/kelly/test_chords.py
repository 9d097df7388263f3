"""Chord symbols -> the 64 documented classes (12 roots x maj/min/7/min7/dim + 4 augmented)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolchain.errors import InputError
from toolchain.kelly.chords import (
    CHORD_CLASS_COUNT, CHORD_CLASSES, class_index, class_pitch_classes, classes_from_chroma, parse_chord,
)

# symbol -> (root pitch class, reduced quality, bass pitch class or None)
PARSE_TABLE = {
    "C": (0, "maj", None), "Am": (9, "min", None), "Amin": (9, "min", None), "A-": (9, "min", None),
    "G7": (7, "7", None), "Bb7": (10, "7", None), "F#m7": (6, "min7", None), "Ebmaj7": (3, "maj", None),
    "Dbm": (1, "min", None), "C#dim": (1, "dim", None), "Bdim7": (11, "dim", None), "F#m7b5": (6, "dim", None),
    "Bø": (11, "dim", None), "Caug": (0, "aug", None), "E+": (4, "aug", None), "Gsus4": (7, "maj", None),
    "D9": (2, "7", None), "Em9": (4, "min7", None), "A7(b9)": (9, "7", None), "Cmaj7(#11)": (0, "maj", None),
    "C/E": (0, "maj", 4), "Am/G": (9, "min", 7), "Bb/D": (10, "maj", 2), "D/F#": (2, "maj", 6),
    "C6/9": (0, "maj", None), "Cb": (11, "maj", None), "E#m": (5, "min", None), "Abb": (7, "maj", None),
    "A:min7": (9, "min7", None), "C:maj/3": (0, "maj", 4), "A:min/b3": (9, "min", 0), "G:hdim7": (7, "dim", None),
    "Dm(maj7)": (2, "min", None), "B♭m": (10, "min", None), "F♯7": (6, "7", None),
}


@pytest.mark.parametrize("symbol", sorted(PARSE_TABLE))
def test_chord_symbol_parses_to_root_quality_and_bass(symbol):
    chord = parse_chord(symbol)
    assert (chord.root, chord.quality, chord.bass) == PARSE_TABLE[symbol]


@pytest.mark.parametrize("symbol", ["N", "X", "N.C."])
def test_no_chord_symbols_have_no_class(symbol):
    assert parse_chord(symbol) is None


@pytest.mark.parametrize("symbol, reason", [("Hm", "root note"), ("Cxyz", "unknown chord quality"),
                                            ("C/Q", "bad bass note"), ("", "root note"), ("am", "root note")])
def test_unparseable_symbol_is_an_input_error_naming_it(symbol, reason):
    with pytest.raises(InputError, match=reason):
        parse_chord(symbol)


def test_there_are_64_classes_with_distinct_pitch_class_sets():
    assert CHORD_CLASS_COUNT == 64 == len(CHORD_CLASSES)
    assert len({frozenset(class_pitch_classes(i)) for i in range(64)}) == 64


def test_class_layout_is_root_times_five_plus_quality_then_augmented():
    assert [CHORD_CLASSES[i] for i in (0, 1, 2, 3, 4, 5, 59)] == ["C", "Cm", "C7", "Cm7", "Cdim", "C#", "Bdim"]
    assert CHORD_CLASSES[60:] == ("C+", "C#+", "D+", "Eb+")
    assert parse_chord("Am7").index == 9 * 5 + 3
    # an augmented triad is symmetric: C+, E+ and G#+ are one pitch-class set, one class
    assert parse_chord("Caug").index == parse_chord("E+").index == parse_chord("G#aug").index == 60


def test_enharmonic_spellings_share_a_class():
    assert parse_chord("C#m7").index == parse_chord("Dbm7").index
    assert parse_chord("A#").index == parse_chord("Bb").index


@settings(max_examples=64, deadline=None)
@given(st.integers(0, 63), st.floats(0.2, 3.0))
def test_chroma_of_a_class_is_labelled_with_that_class(index, level):
    chroma = np.zeros((1, 12), np.float32)
    chroma[0, list(class_pitch_classes(index))] = level
    assert classes_from_chroma(chroma)[0] == index


def test_silent_frames_get_no_chord_label():
    assert classes_from_chroma(np.zeros((3, 12)))[0] == -1


def test_class_index_of_root_and_quality():
    assert class_index(14, "min") == class_index(2, "min") == 11
