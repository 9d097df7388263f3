"""Labels measured on a MIDI file (``pretty_midi.PrettyMIDI``), frame-aligned at ``spec.FRAME_RATE``.

- melody: the top voice's pitch per frame (-1 when it rests): the soprano part when the score names its
  parts (music21's chorales: the first part), else the highest sounding pitched note ("skyline");
- chords: the best-matching chord class of the frame's chroma (``chords.classes_from_chroma``);
- expression: the 16 ``spec.EXPRESSION_PARAMETERS`` over the notes of the last ``EXPRESSION_WINDOW`` s;
- groove: the 16th-step timing offsets and accents of the current bar (drum notes if there are any,
  else all notes) -- ``spec.GROOVE_LAYOUT``;
- emotion: the documented rule of :func:`emotion_rule` (mode and harmony -> valence; tempo, note
  density and loudness -> arousal).
"""
from __future__ import annotations

import numpy as np

from toolchain.kelly.chords import QUALITIES, classes_from_chroma
from toolchain.kelly.datasets.base import Piece
from toolchain.kelly.spec import EXPRESSION_PARAMETERS, FRAME_RATE, GROOVE_STEPS

EXPRESSION_WINDOW = 4.0  # seconds of past notes behind each frame's expression parameters
# Krumhansl-Kessler key profiles (C major / C minor), the standard key-finding weights.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def frame_times(frames: int) -> np.ndarray:
    """Centre time of each feature frame (librosa's centred frames: frame t at t * hop / sr)."""
    return np.arange(frames, dtype=np.float64) / FRAME_RATE


def all_notes(midi, drums: bool | None = None) -> list:
    """Notes sorted by (onset, pitch); ``drums`` True/False restricts to drum / pitched instruments."""
    return [note for note, _ in notes_with_kind(midi) if drums is None or _ == drums]


def notes_with_kind(midi) -> list[tuple]:
    """(note, is_drum) pairs sorted by (onset, pitch)."""
    pairs = [(n, inst.is_drum) for inst in midi.instruments for n in inst.notes]
    return sorted(pairs, key=lambda pair: (pair[0].start, pair[0].pitch))


#: Instrument names that mark a score's top voice (music21 names the chorales' parts).
MELODY_PART_NAMES = ("soprano", "melody", "lead", "cantus")


def melody_instrument(midi):
    """The instrument holding the top voice when the score names one (:data:`MELODY_PART_NAMES`), else None."""
    for instrument in midi.instruments:
        if not instrument.is_drum and instrument.name.strip().lower() in MELODY_PART_NAMES and instrument.notes:
            return instrument
    return None


def melody_line(midi, times: np.ndarray) -> np.ndarray:
    """``[F]`` the top voice's pitch per frame (see the module docstring), -1 = rest.

    The highest sounding pitch of the named melody part, or of every pitched instrument (pretty_midi's
    piano roll leaves drums out). Frame t counts a note sounding at ``times[t]`` (the frame's centre)."""
    part = melody_instrument(midi)
    roll = part.get_piano_roll(times=times) if part is not None else midi.get_piano_roll(times=times)
    sounding = roll > 0
    highest = 127 - np.argmax(sounding[::-1], axis=0)
    return np.where(sounding.any(axis=0), highest, -1).astype(np.int64)


def melody_note_list(midi, melody: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``[N, 3]`` (start, end, pitch) of the melody's notes: the named melody part's notes, else the runs of
    one pitch in the frame-wise ``melody`` line (repeated notes then merge: an approximation)."""
    part = melody_instrument(midi)
    if part is not None:
        notes = sorted((n.start, n.end, n.pitch) for n in part.notes)
        return np.array(notes, np.float64).reshape(-1, 3)
    step = times[1] - times[0] if len(times) > 1 else 1.0 / FRAME_RATE
    edges = np.flatnonzero(np.diff(melody)) + 1
    starts, ends = np.concatenate([[0], edges]), np.concatenate([edges, [len(melody)]])
    notes = [(times[s], times[e - 1] + step, melody[s]) for s, e in zip(starts, ends) if len(melody) and melody[s] >= 0]
    return np.array(notes, np.float64).reshape(-1, 3)


def chord_line(midi, times: np.ndarray) -> np.ndarray:
    return classes_from_chroma(midi.get_chroma(times=times).T)


def sixteenth_grid(midi, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, step within the bar, bar index) of the 16th-note grid up to ``end`` (+ one beat).

    Built from the tempo map's beats, which follow the first time signature's denominator (a beat is
    an eighth in 6/8): each beat splits into 16 / denominator steps. Grid points before the first
    downbeat get bar -1 and step -1.
    """
    beats = midi.get_beats()
    beats = beats[beats <= end + 1.0]
    if len(beats) < 2:  # no tempo information worth the name: a 120 bpm grid
        beats = (beats[0] if len(beats) else 0.0) + 0.5 * np.arange(int(end / 0.5) + 2)
    beats = np.append(beats, 2 * beats[-1] - beats[-2])  # one beat beyond the end
    signatures = midi.time_signature_changes
    subdivisions = max(1, 16 // signatures[0].denominator) if signatures else 4
    grid = (beats[:-1, None] + np.outer(np.diff(beats), np.arange(subdivisions) / subdivisions)).ravel()
    starts = np.searchsorted(grid, midi.get_downbeats() - 1e-6)
    starts = np.unique(starts[starts < len(grid)]) if len(midi.get_downbeats()) else np.array([0])
    bar = np.searchsorted(starts, np.arange(len(grid)), "right") - 1
    step = np.where(bar >= 0, np.arange(len(grid)) - starts[np.maximum(bar, 0)], -1)
    return grid, step, bar


def grid_offsets(onsets: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest grid index, offset from it in half-steps, within [-1, 1]) of each onset."""
    right = np.clip(np.searchsorted(grid, onsets), 1, len(grid) - 1)
    left = right - 1
    nearest = np.where(onsets - grid[left] <= grid[right] - onsets, left, right)
    half_step = 0.5 * (grid[right] - grid[left])
    return nearest, np.clip((onsets - grid[nearest]) / half_step, -1.0, 1.0)


def bar_patterns(midi, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(``[bars, 32]`` onset pattern of every bar -- offsets then accents, ``spec.GROOVE_LAYOUT`` --, the
    16th grid's times, its bar index). Drum notes if there are any, else all notes; per step the loudest
    onset wins; a step without an onset has offset 0 and accent -1."""
    notes = all_notes(midi, drums=True) or all_notes(midi)
    grid, step, bar = sixteenth_grid(midi, end)
    bars = max(int(bar.max()) + 1, 1)
    offsets = np.zeros((bars, GROOVE_STEPS), np.float32)
    accents = np.full((bars, GROOVE_STEPS), -1.0, np.float32)
    if notes:
        nearest, offset = grid_offsets(np.array([n.start for n in notes]), grid)
        for index in np.argsort([n.velocity for n in notes], kind="stable"):  # the loudest note of a step wins
            k = nearest[index]
            if 0 <= step[k] < GROOVE_STEPS:
                offsets[bar[k], step[k]] = offset[index]
                accents[bar[k], step[k]] = notes[index].velocity / 127.0 * 2.0 - 1.0
    return np.concatenate([offsets, accents], axis=1), grid, bar


def groove_line(midi, times: np.ndarray) -> np.ndarray:
    """``[F, 32]`` the groove heard up to each frame (``spec.GROOVE_LAYOUT``): per 16th step of the bar, over
    every complete bar before the frame's bar, the mean timing offset and the mean accent of the onsets
    that fell on that step; offset 0 and accent -1 where no onset has fallen on the step yet.

    Causal on purpose: a groove is where onsets recur in the bar and how strong and early they come, and
    only the bars already heard tell it (the rest of the current bar is not in the audio yet). During
    the first bar: offsets 0, accents -1 (nothing heard)."""
    patterns, grid, bar = bar_patterns(midi, float(times[-1]) if len(times) else 0.0)
    offsets, accents = patterns[:, :GROOVE_STEPS].astype(np.float64), patterns[:, GROOVE_STEPS:].astype(np.float64)
    onset = accents > -1.0
    zero = np.zeros((1, GROOVE_STEPS))
    # bar b sees the sums over bars 0 .. b-1: cumulative sums shifted by one bar
    count = np.concatenate([zero, np.cumsum(onset, axis=0)])[:-1]
    offset_sum = np.concatenate([zero, np.cumsum(offsets * onset, axis=0)])[:-1]
    accent_sum = np.concatenate([zero, np.cumsum(accents * onset, axis=0)])[:-1]
    heard = count > 0
    groove = np.concatenate([np.where(heard, offset_sum / np.maximum(count, 1), 0.0),
                             np.where(heard, accent_sum / np.maximum(count, 1), -1.0)], axis=1)
    frame_bar = bar[np.clip(np.searchsorted(grid, times, "right") - 1, 0, len(grid) - 1)]
    return groove.astype(np.float32)[np.clip(frame_bar, 0, len(patterns) - 1)]


def tempo_at(midi, times: np.ndarray) -> np.ndarray:
    change_times, tempi = midi.get_tempo_changes()
    if len(tempi) == 0:
        return np.full(len(times), 120.0)
    return tempi[np.clip(np.searchsorted(change_times, times, "right") - 1, 0, len(tempi) - 1)]


def pedal_at(midi, times: np.ndarray) -> np.ndarray:
    """1 where any instrument's sustain pedal (CC64 >= 64) is down at the frame, else 0."""
    down = np.zeros(len(times), np.float32)
    for inst in midi.instruments:
        changes = sorted((c.time, c.value >= 64) for c in inst.control_changes if c.number == 64)
        if changes:
            when = np.array([c[0] for c in changes])
            state = np.array([c[1] for c in changes])
            index = np.searchsorted(when, times, "right") - 1
            down = np.maximum(down, np.where(index >= 0, state[np.maximum(index, 0)], False))
    return down


def expression_line(midi, times: np.ndarray) -> np.ndarray:
    """``[F, 16]`` expression parameters (``spec.EXPRESSION_PARAMETERS``), each clipped to [0, 1]."""
    pairs = notes_with_kind(midi)
    result = np.zeros((len(times), len(EXPRESSION_PARAMETERS)), np.float32)
    result[:, [4, 5, 9]] = 0.5  # trend, accent contrast and push are centred: 0.5 = none
    result[:, 10] = tempo_at(midi, times) / 240.0
    result[:, 12] = (midi.get_piano_roll(times=times) > 0).sum(axis=0) / 8.0
    result[:, 15] = pedal_at(midi, times)
    if not pairs or not len(times):
        return np.clip(result, 0.0, 1.0)
    onsets = np.array([n.start for n, _ in pairs])
    velocity = np.array([n.velocity for n, _ in pairs], np.float64)
    duration = np.array([n.end - n.start for n, _ in pairs])
    pitch = np.array([n.pitch for n, _ in pairs], np.float64)
    pitched = np.array([not drum for _, drum in pairs])
    grid, step, _ = sixteenth_grid(midi, float(times[-1]))
    nearest, offset = grid_offsets(onsets, grid)
    on_beat = step[nearest] % 4 == 0
    lows = np.searchsorted(onsets, times - EXPRESSION_WINDOW, "right")
    highs = np.searchsorted(onsets, times, "right")
    for frame in np.flatnonzero(highs > lows):
        window = slice(lows[frame], highs[frame])
        result[frame, :12] = _window_statistics(onsets[window], velocity[window], duration[window],
                                                offset[window], on_beat[window], result[frame, 10])
        ranged = pitch[window][pitched[window]]
        if ranged.size:
            result[frame, 13] = (ranged.max() - ranged.min()) / 48.0
            result[frame, 14] = ranged.mean() / 127.0
    return np.clip(result, 0.0, 1.0)


def _window_statistics(onsets, velocity, duration, offset, on_beat, tempo) -> np.ndarray:
    """Parameters 0-11 of EXPRESSION_PARAMETERS over one window's notes (see the names there)."""
    trend = np.polyfit(onsets - onsets[0], velocity, 1)[0] if np.ptp(onsets) > 1e-3 else 0.0
    contrast = velocity[on_beat].mean() - velocity[~on_beat].mean() if on_beat.any() and (~on_beat).any() else 0.0
    distinct = np.unique(np.round(onsets, 2))
    intervals = np.diff(distinct)
    ioi_variation = intervals.std() / intervals.mean() / 2.0 if len(intervals) >= 2 else 0.0
    return np.array([
        velocity.mean() / 127.0, velocity.std() / 32.0, velocity.max() / 127.0, velocity.min() / 127.0,
        0.5 + trend / 64.0, 0.5 + contrast / 64.0, len(onsets) / EXPRESSION_WINDOW / 16.0,
        np.minimum(duration, 1.0).mean(), offset.std(), 0.5 + offset.mean() / 2.0, tempo, ioi_variation,
    ])


def key_mode(midi) -> int:
    """+1 major, -1 minor by Krumhansl-Kessler key finding on duration-weighted pitch classes; 0 if no pitch."""
    histogram = midi.get_pitch_class_histogram(use_duration=True)
    if not np.any(histogram):
        return 0
    scores = [np.corrcoef(histogram, np.roll(profile, shift))[0, 1]
              for profile in (MAJOR_PROFILE, MINOR_PROFILE) for shift in range(12)]
    return 1 if int(np.argmax(scores)) < 12 else -1


def emotion_rule(midi, chords: np.ndarray | None) -> tuple[float, float]:
    """The documented labelling rule for music whose notes are known. Both values in [-1, 1].

    valence = 0.6 * mode (+1 major / -1 minor key) + 0.4 * (share of major-quality chord frames
    [maj, 7, aug] - share of minor-quality ones [min, min7, dim]); 0 without pitched notes.
    arousal = mean of: (tempo - 100 bpm) / 60, (distinct onsets per second - 4) / 4,
    (mean velocity - 80) / 32 -- each clipped to [-1, 1].
    """
    labelled = chords[chords >= 0] if chords is not None else np.array([], np.int64)
    harmony = 0.0
    if labelled.size:
        quality = np.where(labelled >= 60, "aug", np.array(QUALITIES)[np.minimum(labelled, 59) % 5])
        harmony = np.isin(quality, ("maj", "7", "aug")).mean() - np.isin(quality, ("min", "min7", "dim")).mean()
    mode = key_mode(midi)
    valence = float(np.clip(0.6 * mode + 0.4 * harmony, -1, 1)) if mode else 0.0
    notes = all_notes(midi)
    if not notes:
        return valence, -1.0
    span = max(midi.get_end_time(), 1e-3)
    beats = midi.get_beats()
    tempo = 60.0 / np.median(np.diff(beats)) if len(beats) > 1 else 120.0
    density = len(np.unique(np.round([n.start for n in notes], 2))) / span
    loudness = float(np.mean([n.velocity for n in notes]))
    terms = np.clip([(tempo - 100) / 60, (density - 4) / 4, (loudness - 80) / 32], -1, 1)
    return valence, float(terms.mean())


def piece_from_midi(midi, name: str, source: str, max_seconds: float, render: bool = True,
                    chord_labels=None) -> Piece:
    """All label streams of ``midi`` (its first ``max_seconds``), with the feature frames of its audio
    (``features.frame_features``) when ``render``; ``chord_labels(times) -> [F]`` replaces chord estimation
    when the chords are known."""
    end = min(midi.get_end_time(), max_seconds)
    features = None
    if render:
        from toolchain.kelly.features import frame_features, render_midi

        features = frame_features(render_midi(midi, max_seconds=end))
        frames = len(features)
    else:
        frames = int(end * FRAME_RATE) + 1
    times = frame_times(frames)
    chords = chord_labels(times) if chord_labels else chord_line(midi, times)
    melody = melody_line(midi, times)
    notes = melody_note_list(midi, melody, times)
    return Piece(name, source, features=features, emotion=emotion_rule(midi, chords), melody=melody, chords=chords,
                 expression=expression_line(midi, times), groove=groove_line(midi, times),
                 melody_notes=notes[notes[:, 0] < end] if len(notes) else notes)
