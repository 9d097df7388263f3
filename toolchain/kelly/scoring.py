"""Music metrics with ``mir_eval`` (the MIREX implementations), not hand-written ones.

- **melody, frame level**: ``mir_eval.melody`` -- raw pitch accuracy = share of the reference's sounding
  frames whose estimated pitch is within 50 cents (a semitone grid: the right MIDI pitch), and overall
  accuracy (voicing counted too);
- **melody, note level**: ``mir_eval.transcription.precision_recall_f1_overlap`` with its standard onset
  tolerance (50 ms) and pitch tolerance (50 cents); ``f1`` ignores offsets (``offset_ratio=None``),
  ``f1_with_offsets`` also needs each offset within 20 % of the note's length (mir_eval's default);
- **chords**: ``mir_eval.chord.evaluate`` -- duration-weighted accuracy under the MIREX comparisons:
  ``majmin`` (root and major/minor triad; the headline), ``sevenths``, ``mirex`` (at least three shared
  pitch classes) and ``root``.

Sources of notes and chords: a MIDI file's instrument named ``melody`` and the one named ``chords``
(what ``kelly-tc pipeline --audio`` writes and what ``examples/make_example.py`` writes for the score);
a chord segment is every stretch where the chords track's set of sounding pitch classes stays the same,
labelled by its best-matching chord class (``chords.classes_from_chroma``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.chords import QUALITIES, ROOT_NAMES, classes_from_chroma
from toolchain.kelly.spec import FRAME_RATE

ONSET_TOLERANCE = 0.05  # seconds: mir_eval's (and MIREX's) standard
CHORD_METRICS = ("majmin", "sevenths", "mirex", "root")


def harte_label(index: int) -> str:
    """The Harte chord label of chord class ``index`` (``C:maj``, ``A:min7``, ``Eb:aug``); ``N`` below 0."""
    if index < 0:
        return "N"
    if index >= 60:
        return f"{ROOT_NAMES[index - 60]}:aug"
    root, quality = divmod(int(index), 5)
    return f"{ROOT_NAMES[root]}:{QUALITIES[quality]}"


def midi_hz(pitches) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(pitches, np.float64) - 69.0) / 12.0)


# ------------------------------------------------------------------------------------------ melody
def note_scores(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Note-level precision / recall / F1 of ``[N, 3]`` (start, end, MIDI pitch) note lists."""
    import mir_eval

    reference, estimate = np.asarray(reference, np.float64).reshape(-1, 3), np.asarray(estimate, np.float64).reshape(-1, 3)
    if not len(reference):
        return {"precision": float("nan"), "recall": float("nan"), "f1": float("nan"), "f1_with_offsets": float("nan"),
                "reference_notes": 0, "estimated_notes": len(estimate)}
    arguments = (reference[:, :2], midi_hz(reference[:, 2]), estimate[:, :2].reshape(-1, 2), midi_hz(estimate[:, 2]))
    with warnings.catch_warnings():  # mir_eval warns about an empty estimate; a score of 0 says it
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = mir_eval.transcription.precision_recall_f1_overlap(
            *arguments, onset_tolerance=ONSET_TOLERANCE, offset_ratio=None)
        with_offsets = mir_eval.transcription.precision_recall_f1_overlap(*arguments, onset_tolerance=ONSET_TOLERANCE)[2]
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "f1_with_offsets": float(with_offsets), "reference_notes": len(reference), "estimated_notes": len(estimate)}


def frame_scores(reference: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Frame-level melody accuracy of two ``[F]`` MIDI-pitch lines (-1 = no melody) at ``spec.FRAME_RATE``."""
    import mir_eval

    frames = min(len(reference), len(estimate))
    times = np.arange(frames) / FRAME_RATE
    to_hz = (lambda line: np.where(line[:frames] >= 0, midi_hz(np.maximum(line[:frames], 0)), 0.0))
    scores = mir_eval.melody.evaluate(times, to_hz(np.asarray(reference)), times, to_hz(np.asarray(estimate)))
    return {"raw_pitch_accuracy": float(scores["Raw Pitch Accuracy"]), "overall_accuracy": float(scores["Overall Accuracy"]),
            "voicing_recall": float(scores["Voicing Recall"]), "voicing_false_alarm": float(scores["Voicing False Alarm"])}


# ------------------------------------------------------------------------------------------ chords
def label_segments(labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(intervals [N, 2] s, Harte labels) of the runs of a ``[F]`` chord-class line at ``spec.FRAME_RATE``."""
    labels = np.asarray(labels)
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(labels)]])
    intervals = np.stack([starts, ends], axis=1).astype(np.float64) / FRAME_RATE
    return intervals, [harte_label(int(labels[s])) for s in starts]


def chord_scores(ref_intervals, ref_labels, est_intervals, est_labels) -> dict[str, float]:
    """Duration-weighted chord accuracy (:data:`CHORD_METRICS`) over the reference's span."""
    import mir_eval

    with warnings.catch_warnings():  # mir_eval warns when the estimate does not span the reference: padded with N
        warnings.simplefilter("ignore")
        ref_intervals, ref_labels = mir_eval.util.adjust_intervals(np.asarray(ref_intervals), list(ref_labels),
                                                                   t_min=0.0, start_label="N", end_label="N")
        est_intervals, est_labels = mir_eval.util.adjust_intervals(np.asarray(est_intervals).reshape(-1, 2), list(est_labels),
                                                                   t_min=0.0, t_max=float(ref_intervals.max()),
                                                                   start_label="N", end_label="N")
        scores = mir_eval.chord.evaluate(ref_intervals, ref_labels, est_intervals, est_labels)
    return {metric: float(scores[metric]) for metric in CHORD_METRICS}


def track(midi, name: str):
    """The instrument called ``name`` (case-insensitive), or None."""
    return next((inst for inst in midi.instruments if inst.name.strip().lower() == name), None)


def midi_melody(midi) -> np.ndarray:
    """``[N, 3]`` (start, end, pitch) of the ``melody`` track's notes (empty without one)."""
    melody = track(midi, "melody")
    notes = sorted((n.start, n.end, n.pitch) for n in melody.notes) if melody else []
    return np.array(notes, np.float64).reshape(-1, 3)


def midi_chords(midi) -> tuple[np.ndarray, list[str]]:
    """(intervals, Harte labels) of the ``chords`` track: one segment per stretch of unchanged pitch classes."""
    chords = track(midi, "chords")
    notes = chords.notes if chords else []
    if not notes:
        return np.zeros((0, 2)), []
    times = np.unique([t for n in notes for t in (n.start, n.end)])
    intervals, labels = [], []
    for start, end in zip(times[:-1], times[1:]):
        chroma = np.zeros(12, np.float32)
        for note in notes:
            if note.start < end and note.end > start:
                chroma[note.pitch % 12] = 1.0
        label = harte_label(int(classes_from_chroma(chroma[None])[0]))
        if labels and labels[-1] == label and np.isclose(intervals[-1][1], start):
            intervals[-1][1] = end
        else:
            intervals.append([start, end])
            labels.append(label)
    return np.array(intervals, np.float64), labels


def _read_midi(path: str | Path):
    import pretty_midi

    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido / pretty_midi raise many types for a bad file
        raise InputError(f"not a readable MIDI file ({type(error).__name__}: {str(error)[:100]})", file=path) from None


def compare_midi(reference: str | Path, estimate: str | Path) -> dict:
    """Melody note scores and chord accuracy of MIDI file ``estimate`` against the score ``reference``."""
    ref, est = _read_midi(reference), _read_midi(estimate)
    if track(ref, "melody") is None or track(ref, "chords") is None:
        raise InputError("the reference needs an instrument named 'melody' and one named 'chords'", file=reference)
    ref_chords, est_chords = midi_chords(ref), midi_chords(est)
    return {"reference": str(reference), "estimate": str(estimate),
            "melody": note_scores(midi_melody(ref), midi_melody(est)),
            "chords": chord_scores(*ref_chords, *est_chords) if len(est_chords[1]) else {m: 0.0 for m in CHORD_METRICS}}
