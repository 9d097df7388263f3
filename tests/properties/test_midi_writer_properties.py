"""The MIDI writer's overlap rule, over random chord sequences (hypothesis): no note of a later chord is
cut by an earlier chord's note-off, and the melody is a single line.

Read back with pretty_midi from the written file (what any player sees, ticks and event order included):
every pitch of every chord must sound without a break from the chord's start to its end. Times are
compared at the file's tick resolution: pretty_midi writes 220 ticks per beat, at the decoded tempo
(40-240 bpm) a tick is at most 6.8 ms, so 10 ms is the tolerance (one tick plus rounding)."""
from __future__ import annotations

import pytest

from tests.conftest import require_modules

pretty_midi = require_modules("pretty_midi")
from hypothesis import given, settings, strategies as st  # noqa: E402

from toolchain.kelly.chords import CHORD_CLASS_COUNT, CHORD_CLASSES  # noqa: E402
from toolchain.kelly.decode import Decoded, Event, chord_pitches, write_midi  # noqa: E402

TICK_TOLERANCE = 0.010


def chord_events(draw_classes, gaps, durations):
    events, time = [], 0.0
    for index, duration, gap in zip(draw_classes, durations, gaps):
        time += gap
        events.append(Event(round(time, 4), round(time + duration, 4), chord_pitches(index), 80, CHORD_CLASSES[index], 1.0))
        time += duration
    return events


@st.composite
def chord_sequences(draw):
    count = draw(st.integers(1, 12))
    classes = draw(st.lists(st.integers(0, CHORD_CLASS_COUNT - 1), min_size=count, max_size=count))
    durations = draw(st.lists(st.floats(0.05, 2.0), min_size=count, max_size=count))
    # mostly back to back (gap 0), sometimes a rest, sometimes an overlap (a negative gap: the writer must cut)
    gaps = draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.25, -0.03]), min_size=count, max_size=count))
    gaps[0] = abs(gaps[0])
    return chord_events(classes, gaps, durations)


def covered(notes, pitch: int, start: float, end: float) -> bool:
    """Whether one note of ``pitch`` sounds over the whole of [start, end] (within the tick tolerance)."""
    return any(n.pitch == pitch and n.start <= start + TICK_TOLERANCE and n.end >= end - TICK_TOLERANCE for n in notes)


@settings(max_examples=60, deadline=None)
@given(chord_sequences(), st.sampled_from([60.0, 97.0, 120.0, 211.0]))
def test_no_note_of_a_later_chord_is_cut(tmp_path_factory, chords, tempo):
    path = tmp_path_factory.mktemp("midi") / "chords.mid"
    write_midi(Decoded(tempo, chords, []), path)
    (track,) = [i for i in pretty_midi.PrettyMIDI(str(path)).instruments if i.name == "chords"]
    for index, chord in enumerate(chords):
        # where the next chord starts early (an overlap in the events), this chord yields to it
        end = min(chord.end, chords[index + 1].start) if index + 1 < len(chords) else chord.end
        for pitch in chord.pitches:
            assert covered(track.notes, pitch, chord.start, end), (pitch, chord, sorted((n.pitch, n.start, n.end) for n in track.notes))
    by_pitch = {}
    for note in sorted(track.notes, key=lambda n: n.start):
        assert note.start >= by_pitch.get(note.pitch, -1.0) - 1e-9, "two notes of one pitch overlap"
        by_pitch[note.pitch] = note.end


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(40, 90), st.floats(0.05, 1.0), st.sampled_from([0.0, 0.1, -0.02])), min_size=1, max_size=15))
def test_melody_track_is_a_single_line(tmp_path_factory, spec):
    notes, time = [], 0.0
    for pitch, duration, gap in spec:
        time = max(time + gap, 0.0)
        notes.append(Event(round(time, 4), round(time + duration, 4), (pitch,), 90, str(pitch), 1.0))
        time += duration
    path = tmp_path_factory.mktemp("midi") / "melody.mid"
    write_midi(Decoded(120.0, [], notes), path)
    (track,) = [i for i in pretty_midi.PrettyMIDI(str(path)).instruments if i.name == "melody"]
    ordered = sorted(track.notes, key=lambda n: n.start)
    assert len(ordered) == len(notes)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(ordered, ordered[1:]))
