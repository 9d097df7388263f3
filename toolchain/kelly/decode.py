"""From the pipeline's per-frame outputs to music: chords, melody notes, tempo -> a MIDI file.

The decoding (documented in docs/ARCHITECTURE.md, "From outputs to MIDI"); frame ``t`` is at
``t / spec.FRAME_RATE`` seconds, as the log-mel frames are:

- **tempo**: the median of DynamicsEngine's ``tempo`` output (bpm / 240) over the file, clipped to
  40-240 bpm. It defines a 16th-note grid from time 0, 16 steps to the bar.
- **chords**: HarmonyPredictor's most probable class per frame; a run shorter than
  :data:`MIN_CHORD_SECONDS` takes the chord of the last run at least that long before it (at the start:
  the first such run), then equal neighbours merge. A chord sounds as its root in octave 2 under its chord tones from octave 3
  (as ``datasets/progressions.py`` voices progressions).
- **melody**: MelodyTransformer's most probable pitch per frame where its probability reaches
  :data:`MELODY_THRESHOLD`; runs of one pitch of at least :data:`MIN_NOTE_FRAMES` frames are notes.
- **timing** (GroovePredictor): every chord and note onset moves to the nearest 16th step, plus the
  groove's timing offset predicted for that step of the bar at the onset frame (dims 0-15, in half-steps).
  Ends stay where the run ends (at least :data:`MIN_NOTE_SECONDS` after the onset).
- **velocity** (DynamicsEngine, GroovePredictor): ``127 * velocity_mean`` at the onset frame, plus
  ``ACCENT_VELOCITY * accent`` when the groove places an onset on that step (accent above -1);
  clipped to 1-127.
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
MIN_NOTE_SECONDS = 1.0 / 32
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
    """The 16th grid of the decoded tempo, and the groove's offsets and accents on it."""

    def __init__(self, tempo: float, groove: np.ndarray, dynamics: np.ndarray):
        self.sixteenth = 60.0 / tempo / 4
        self.groove, self.dynamics = groove, dynamics

    def onset(self, frame: int) -> tuple[float, int]:
        """(time of an onset detected at ``frame``, its 16th step in the bar)."""
        index = int(round(frame / FRAME_RATE / self.sixteenth))
        step = index % GROOVE_STEPS
        offset = float(self.groove[frame, step]) if len(self.groove) else 0.0
        return max(0.0, (index + 0.5 * offset) * self.sixteenth), step

    def velocity(self, frame: int, step: int) -> int:
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
    events = []
    for label, start, end in runs(labels):
        if label < 0 or end - start < min_frames:
            continue
        onset, step = timing.onset(start)
        finish = max(end / FRAME_RATE, onset + MIN_NOTE_SECONDS)
        confidence = float(probabilities[start:end, label].mean())
        events.append(Event(round(onset, 4), round(finish, 4), pitches(label), timing.velocity(start, step),
                            name(label), confidence))
    return events


def pitch_name(pitch: int) -> str:
    return ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")[pitch % 12] + str(pitch // 12 - 1)


def decode(outputs: dict[str, np.ndarray]) -> Decoded:
    """Chords, melody notes and tempo from the pipeline's ``[T, out]`` outputs (see the module docstring)."""
    harmony, melody = outputs["HarmonyPredictor"], outputs["MelodyTransformer"]
    dynamics, groove = outputs["DynamicsEngine"], outputs["GroovePredictor"]
    tempo = float(np.clip(np.median(dynamics[:, _TEMPO]) * 240.0, *TEMPO_RANGE)) if len(dynamics) else 120.0
    timing = Timing(tempo, groove, dynamics)
    chord_labels = smooth_labels(np.argmax(harmony, axis=1), max(1, round(MIN_CHORD_SECONDS * FRAME_RATE))) \
        if len(harmony) else np.zeros(0, np.int64)
    chords = _events(chord_labels, harmony, timing, 1, chord_pitches, lambda i: CHORD_CLASSES[i])
    best = np.argmax(melody, axis=1) if len(melody) else np.zeros(0, np.int64)
    sounding = melody[np.arange(len(best)), best] >= MELODY_THRESHOLD if len(melody) else np.zeros(0, bool)
    notes = _events(np.where(sounding, best, -1), melody, timing, MIN_NOTE_FRAMES, lambda p: (p,), pitch_name)
    return Decoded(round(tempo, 2), chords, notes)


def to_midi(decoded: Decoded):
    """A ``pretty_midi.PrettyMIDI`` with a chord track and a melody track."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=decoded.tempo)
    for name, program, events in (("chords", CHORD_PROGRAM, decoded.chords), ("melody", MELODY_PROGRAM, decoded.notes)):
        instrument = pretty_midi.Instrument(program=program, name=name)
        for event in events:
            instrument.notes.extend(pretty_midi.Note(event.velocity, p, event.start, event.end) for p in event.pitches)
        midi.instruments.append(instrument)
    return midi


def write_midi(decoded: Decoded, path: str | Path) -> Path:
    """Write the decoded music as a MIDI file, atomically."""
    midi = to_midi(decoded)
    with atomic_path(path, suffix=".mid") as tmp:
        midi.write(str(tmp))
    return Path(path)
