"""From the pipeline's per-frame outputs to music: chords, a melody line, tempo -> a MIDI file.

The decoding (documented in docs/ARCHITECTURE.md, "From outputs to MIDI"); frame ``t`` is at
``t / spec.FRAME_RATE`` seconds, as the feature frames are:

- **chords**: HarmonyPredictor's most probable class per frame; a run shorter than
  :data:`MIN_CHORD_SECONDS` takes the chord of the last run at least that long before it (at the start:
  the first such run), then equal neighbours merge. Each chord lasts until the next one starts (chords
  never overlap). A chord sounds as its root in octave 2 under its chord tones from octave 3 (as
  ``datasets/progressions.py`` voices progressions).
- **melody**: MelodyTransformer's most probable pitch per frame where its probability reaches
  :data:`MELODY_THRESHOLD`; runs of one pitch of at least :data:`MIN_NOTE_FRAMES` frames are notes, one
  at a time (a single line: each note ends before the next begins).
- **timing**: onsets stay where they are heard (the first frame of the run, less
  :data:`ONSET_LATENCY_FRAMES`), so the MIDI lines up with the recording; the tempo written in the file is
  the median of DynamicsEngine's ``tempo`` output (bpm / 240), clipped to 40-240 bpm.
- **velocity** (DynamicsEngine, GroovePredictor): ``127 * velocity_mean`` at the onset frame, plus
  ``ACCENT_VELOCITY * accent`` of the 16th step the onset falls on (on the tempo's grid from time 0) when
  the groove places an onset there (accent above -1); clipped to 1-127.

**Writing chords** (:func:`chord_notes`): consecutive chords that share a pitch hold it through (one note
from the first chord's start to the last one's end); every other note ends exactly where the next chord
starts. So no note-off of an old chord can cut a note of the new one, in any MIDI player.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from toolchain.atomic import atomic_path
from toolchain.kelly.chords import CHORD_CLASSES, class_pitch_classes
from toolchain.kelly.spec import EXPRESSION_PARAMETERS, FRAME_RATE, GROOVE_STEPS

MIN_CHORD_SECONDS = 0.25
MELODY_THRESHOLD = 0.5
MIN_NOTE_FRAMES = 3  # ~70 ms
#: Frames between a note's onset and the first frame the model reports it (the recurrent state needs a few
#: frames to switch pitch). Chosen on the main job's validation chorales (never the example): note F1
#: 0.401 / 0.478 / 0.520 with 0 / 1 / 2 frames (threshold 0.5; 0.3 gave 0.518 with 2 frames).
ONSET_LATENCY_FRAMES = 2
ACCENT_VELOCITY = 12.0
TEMPO_RANGE = (40.0, 240.0)
CHORD_PROGRAM, MELODY_PROGRAM = 0, 73  # General MIDI: acoustic grand piano, flute
_TEMPO = EXPRESSION_PARAMETERS.index("tempo")
_VELOCITY = EXPRESSION_PARAMETERS.index("velocity_mean")


@dataclass(frozen=True)
class Event:
    """A decoded chord or note: times in seconds; ``label`` is a chord name or a pitch name."""

    start: float
    end: float
    pitches: tuple[int, ...]
    velocity: int
    label: str
    confidence: float  # mean probability of the decoded class/pitch over its frames


@dataclass
class Decoded:
    tempo: float
    chords: list[Event]
    notes: list[Event]

    def to_json(self) -> dict:
        return {"tempo": self.tempo, "chords": [asdict(e) for e in self.chords], "notes": [asdict(e) for e in self.notes]}


def runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(label, first frame, end frame) of each run of equal labels."""
    if not len(labels):
        return []
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(labels)]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def smooth_labels(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Give each run shorter than ``min_frames`` the label of the last long run before it (runs before the
    first long run: that run's label). Without any long run, the longest run's label wins."""
    labels = labels.copy()
    pieces = runs(labels)
    if len(pieces) < 2:
        return labels
    kept = [piece for piece in pieces if piece[2] - piece[1] >= min_frames] or [max(pieces, key=lambda p: p[2] - p[1])]
    for label, start, end in pieces:
        if end - start < min_frames:
            before = [k for k in kept if k[2] <= start]
            labels[start:end] = before[-1][0] if before else next(k[0] for k in kept if k[1] >= end)
    return labels


class Timing:
    """Velocities from the dynamics and the groove's accents on the 16th grid of the decoded tempo."""

    def __init__(self, tempo: float, groove: np.ndarray, dynamics: np.ndarray):
        self.sixteenth = 60.0 / tempo / 4
        self.groove, self.dynamics = groove, dynamics

    def onset(self, frame: int) -> float:
        return max(0.0, (frame - ONSET_LATENCY_FRAMES) / FRAME_RATE)

    def velocity(self, frame: int) -> int:
        step = int(round(self.onset(frame) / self.sixteenth)) % GROOVE_STEPS
        velocity = 127.0 * float(self.dynamics[frame, _VELOCITY])
        accent = float(self.groove[frame, GROOVE_STEPS + step])
        if accent > -1.0 + 1e-3:
            velocity += ACCENT_VELOCITY * accent
        return int(np.clip(round(velocity), 1, 127))


def chord_pitches(index: int) -> tuple[int, ...]:
    classes = class_pitch_classes(index)
    root = classes[0]
    return (36 + root,) + tuple(48 + root + (pc - root) % 12 for pc in classes)


def _events(labels, probabilities, timing: Timing, min_frames: int, pitches, name) -> list[Event]:
    """One event per run of a label (>= ``min_frames`` frames); each ends where the next event starts
    (or where its run ends, if a gap follows), so events never overlap."""
    kept = [(label, start, end) for label, start, end in runs(labels) if label >= 0 and end - start >= min_frames]
    events = []
    for index, (label, start, end) in enumerate(kept):
        onset = timing.onset(start)
        finish = timing.onset(end)
        if index + 1 < len(kept):
            finish = min(finish, timing.onset(kept[index + 1][1]))
        if finish <= onset:
            continue
        confidence = float(probabilities[start:end, label].mean())
        events.append(Event(round(onset, 4), round(finish, 4), pitches(label), timing.velocity(start),
                            name(label), confidence))
    return events


def pitch_name(pitch: int) -> str:
    return ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[pitch % 12] + str(pitch // 12 - 1)


def melody_line_of(melody: np.ndarray) -> np.ndarray:
    """``[F]`` the melody's pitch per frame from MelodyTransformer's ``[F, 128]`` probabilities: the most
    probable pitch where it reaches :data:`MELODY_THRESHOLD`, else -1 (no melody)."""
    if not len(melody):
        return np.zeros(0, np.int64)
    best = np.argmax(melody, axis=1)
    return np.where(melody[np.arange(len(best)), best] >= MELODY_THRESHOLD, best, -1).astype(np.int64)


def decode(outputs: dict[str, np.ndarray]) -> Decoded:
    """Chords, melody notes and tempo from the pipeline's ``[T, out]`` outputs (see the module docstring)."""
    harmony, melody = outputs["HarmonyPredictor"], outputs["MelodyTransformer"]
    dynamics, groove = outputs["DynamicsEngine"], outputs["GroovePredictor"]
    tempo = float(np.clip(np.median(dynamics[:, _TEMPO]) * 240.0, *TEMPO_RANGE)) if len(dynamics) else 120.0
    timing = Timing(tempo, groove, dynamics)
    chord_labels = smooth_labels(np.argmax(harmony, axis=1), max(1, round(MIN_CHORD_SECONDS * FRAME_RATE))) \
        if len(harmony) else np.zeros(0, np.int64)
    chords = _events(chord_labels, harmony, timing, 1, chord_pitches, lambda i: CHORD_CLASSES[i])
    notes = _events(melody_line_of(melody), melody, timing, MIN_NOTE_FRAMES, lambda p: (p,), pitch_name)
    return Decoded(round(tempo, 2), chords, notes)


def chord_notes(chords: list[Event]) -> list[tuple[int, int, float, float]]:
    """(pitch, velocity, start, end) of the notes that play ``chords`` (in time order, not overlapping):
    a pitch shared by consecutive chords is held through; every other note ends where the next chord
    starts (or where its chord ends, if a gap follows)."""
    notes, sounding = [], {}  # sounding: pitch -> [pitch, velocity, start, end] of the note still open
    for index, chord in enumerate(chords):
        for pitch in [p for p in sounding if p not in chord.pitches or sounding[p][3] < chord.start]:
            notes.append(tuple(sounding.pop(pitch)))
        for pitch in chord.pitches:
            if pitch in sounding:
                sounding[pitch][3] = chord.end
            else:
                sounding[pitch] = [pitch, chord.velocity, chord.start, chord.end]
        following = chords[index + 1].start if index + 1 < len(chords) else None
        if following is not None:
            for note in sounding.values():  # a chord that runs past the next one's start stops there
                note[3] = min(note[3], following)
    notes += [tuple(note) for note in sounding.values()]
    return sorted(notes, key=lambda note: (note[2], note[0]))


def melody_notes(notes: list[Event]) -> list[tuple[int, int, float, float]]:
    """(pitch, velocity, start, end) of a single line: each note ends by the time the next one starts."""
    line = []
    for index, note in enumerate(notes):
        end = min(note.end, notes[index + 1].start) if index + 1 < len(notes) else note.end
        if end > note.start:
            line.append((note.pitches[0], note.velocity, note.start, end))
    return line


def to_midi(decoded: Decoded):
    """A ``pretty_midi.PrettyMIDI`` with a ``chords`` track and a ``melody`` track."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=decoded.tempo)
    for name, program, notes in (("chords", CHORD_PROGRAM, chord_notes(decoded.chords)),
                                 ("melody", MELODY_PROGRAM, melody_notes(decoded.notes))):
        instrument = pretty_midi.Instrument(program=program, name=name)
        instrument.notes.extend(pretty_midi.Note(velocity, pitch, start, end) for pitch, velocity, start, end in notes)
        midi.instruments.append(instrument)
    return midi


def write_midi(decoded: Decoded, path: str | Path) -> Path:
    """Write the decoded music as a MIDI file, atomically."""
    midi = to_midi(decoded)
    with atomic_path(path, suffix=".mid") as tmp:
        midi.write(str(tmp))
    return Path(path)
