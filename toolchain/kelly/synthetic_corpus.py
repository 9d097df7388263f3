"""A synthetic corpus in the real public layouts, for tests and scale benchmarks (no download).

``write_corpus(root, lakh=N, groove=M)`` writes, under ``root``:

- ``lmd_full/<first hex digit>/<md5>.mid`` -- Lakh MIDI's layout: short multi-track songs (a melody,
  block chords, a drum kit) in a random key, tempo and loudness;
- ``groove/drummer<k>/session<j>/<id>_<style>_<bpm>_beat_4-4.mid`` -- the Groove MIDI Dataset's layout:
  drum-only performances with velocity and timing variation.

Every file is made by pretty_midi from a seeded generator, so the same arguments write the same bytes.
``corrupt`` extra files with garbage bytes exercise the failure path of the feature store.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from toolchain import atomic

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
DRUMS = {"kick": 36, "snare": 38, "hihat": 42}


def _song(rng: np.random.Generator, seconds: float):
    import pretty_midi

    tempo = float(rng.uniform(70, 160))
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    beat = 60.0 / tempo
    tonic = int(rng.integers(48, 60))
    scale = MAJOR if rng.random() < 0.5 else MINOR
    loud = int(rng.integers(50, 115))
    melody, chords = pretty_midi.Instrument(0, name="melody"), pretty_midi.Instrument(0, name="chords")
    time = 0.0
    degrees = [0, 3, 4, 0] if rng.random() < 0.5 else [0, 5, 3, 4]
    while time < seconds:
        for degree in degrees:
            root = tonic + scale[degree % 7]
            for step in (0, 2, 4):
                pitch = root + scale[(degree + step) % 7] - scale[degree % 7] + (12 if (degree + step) >= 7 else 0)
                chords.notes.append(pretty_midi.Note(loud - 15, int(pitch), time, time + 4 * beat))
            for quarter in range(4):
                start = time + quarter * beat
                pitch = root + 12 + scale[int(rng.integers(0, 7))] - scale[0]
                velocity = int(np.clip(loud + rng.normal(0, 8), 1, 127))
                melody.notes.append(pretty_midi.Note(velocity, int(pitch), start, start + beat * 0.9))
            time += 4 * beat
    midi.instruments += [melody, chords, _drums(rng, time, beat, loud)]
    return midi


def _drums(rng: np.random.Generator, end: float, beat: float, loud: int):
    import pretty_midi

    drums = pretty_midi.Instrument(0, is_drum=True, name="drums")
    step, time, index = beat / 4, 0.0, 0
    swing = float(rng.uniform(0, 0.3))
    while time < end:
        position = index % 16
        shift = swing * step if index % 2 else 0.0
        hits = [("hihat", 0.7)] + ([("kick", 1.0)] if position in (0, 8) else []) + ([("snare", 0.9)] if position in (4, 12) else [])
        for name, accent in hits:
            start = time + shift + float(rng.normal(0, 0.008))
            velocity = int(np.clip(loud * accent + rng.normal(0, 10), 1, 127))
            drums.notes.append(pretty_midi.Note(velocity, DRUMS[name], max(start, 0.0), max(start, 0.0) + 0.05))
        time += step
        index += 1
    return drums


def _bytes(midi) -> bytes:
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def write_corpus(root: str | Path, lakh: int = 0, groove: int = 0, corrupt: int = 0, seconds: float = 6.0,
                 seed: int = 0) -> list[Path]:
    """Write the files (see the module docstring); return their paths, corrupt ones last."""
    import pretty_midi

    root = Path(root)
    written = []
    for index in range(lakh):
        data = _bytes(_song(np.random.default_rng([seed, 1, index]), seconds))
        name = hashlib.md5(data).hexdigest()
        path = root / "lmd_full" / name[0] / f"{name}.mid"
        atomic.write_bytes(path, data)
        written.append(path)
    for index in range(groove):
        rng = np.random.default_rng([seed, 2, index])
        tempo = int(rng.integers(80, 140))
        midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
        midi.instruments.append(_drums(rng, seconds, 60.0 / tempo, int(rng.integers(60, 120))))
        path = root / "groove" / f"drummer{index % 5 + 1}" / f"session{index // 5 + 1}" / f"{index + 1}_rock_{tempo}_beat_4-4.mid"
        atomic.write_bytes(path, _bytes(midi))
        written.append(path)
    for index in range(corrupt):
        path = root / "lmd_full" / "f" / f"corrupt{index:04d}.mid"
        atomic.write_bytes(path, b"MThd\x00\x00\x00\x06" + np.random.default_rng([seed, 3, index]).bytes(64))
        written.append(path)
    return written
