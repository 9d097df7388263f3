"""Harmony progressions: JSON or CSV files of chord symbols, rendered to audio with known labels.

Accepted files (every ``*.json`` / ``*.csv`` under the folder):

- JSON: a list of progressions, or ``{"progressions": [...]}``; a progression is a list of symbols,
  a space-separated string, or ``{"chords": ..., "tempo": 100, "beats_per_chord": 4}``;
- CSV with a header and a ``chords`` column of space-separated symbols (the Chordonomicon layout;
  ``<verse_1>``-style section tags are dropped), optional ``tempo`` and ``beats_per_chord`` columns.

Symbols are parsed by ``chords.parse_chord``; a progression with an unparseable symbol or a bad
number is skipped and counted. Each progression is voiced (bass on the root in octave 2, the chord
tones from octave 3), rendered, and labelled frame by frame with the exact chord classes.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.chords import QUALITY_INTERVALS, Chord, parse_chord
from toolchain.kelly.datasets.base import Piece, SkipCounter
from toolchain.kelly.datasets.music import piece_from_midi

DEFAULT_TEMPO = 100.0
DEFAULT_BEATS_PER_CHORD = 4.0


def _progression(raw, where: str) -> tuple[list[str], float, float]:
    """(symbols, tempo, beats per chord) of one raw progression entry."""
    settings = raw if isinstance(raw, dict) else {"chords": raw}
    chords = settings.get("chords")
    symbols = chords.split() if isinstance(chords, str) else chords
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise InputError("expected chord symbols (a list or a space-separated string)", where=where)
    try:
        tempo = float(settings.get("tempo") or DEFAULT_TEMPO)
        beats = float(settings.get("beats_per_chord") or DEFAULT_BEATS_PER_CHORD)
    except (TypeError, ValueError):
        raise InputError("tempo and beats_per_chord must be numbers", where=where) from None
    if not (20 <= tempo <= 400 and 0 < beats <= 64):
        raise InputError(f"tempo {tempo} or beats_per_chord {beats} out of range", where=where)
    return [s for s in symbols if not (s.startswith("<") and s.endswith(">"))], tempo, beats


def read_progressions(path: Path) -> list[tuple[str, object]]:
    """(place, raw progression) pairs of one file; a malformed file is an :class:`InputError`."""
    try:
        if path.suffix.lower() == ".json":
            document = json.loads(path.read_text(encoding="utf-8"))
            entries = document.get("progressions") if isinstance(document, dict) else document
            if not isinstance(entries, list):
                raise InputError("expected a list of progressions or {\"progressions\": [...]}", file=path)
            return [(f"progressions[{i}]", entry) for i, entry in enumerate(entries)]
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as error:
        raise InputError(f"unreadable ({str(error)[:120]})", file=path) from None
    if rows and "chords" not in rows[0]:
        raise InputError(f"no 'chords' column; found {', '.join(map(str, rows[0]))}", file=path)
    return [(f"line {i + 2}", row) for i, row in enumerate(rows)]


def progression_midi(chords: list[Chord], tempo: float, beats_per_chord: float):
    """A piano MIDI of the progression (root in the bass) and the start time of each chord."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    piano = pretty_midi.Instrument(program=0)
    length = beats_per_chord * 60.0 / tempo
    for index, chord in enumerate(chords):
        start, end = index * length, (index + 1) * length
        pitches = [36 + chord.root] + [48 + chord.root + interval for interval in QUALITY_INTERVALS[chord.quality]]
        piano.notes.extend(pretty_midi.Note(velocity=80, pitch=p, start=start, end=end) for p in pitches)
    midi.instruments.append(piano)
    return midi, np.arange(len(chords)) * length


def progression_file_pieces(path: Path, max_seconds: float, skips: SkipCounter, limit: int | None = None) -> list[Piece]:
    """The pieces of one progression file (one per progression it holds), at most ``limit``."""
    try:
        entries = read_progressions(path)
    except InputError as error:
        skips.skip("harmony", path.name, error.reason)
        return []
    pieces = []
    for place, raw in entries:
        if limit is not None and len(pieces) >= limit:
            break
        try:
            symbols, tempo, beats = _progression(raw, place)
            parsed = [parse_chord(symbol) for symbol in symbols]
        except InputError as error:
            skips.skip("harmony", f"{path.name} {place}", error.reason)
            continue
        chords = [c for c in parsed if c is not None]  # "N" (no chord) symbols are dropped
        if not chords:
            skips.skip("harmony", f"{path.name} {place}", "no chords")
            continue
        midi, starts = progression_midi(chords, tempo, beats)
        classes = np.array([c.index for c in chords])
        labels = lambda times, classes=classes, starts=starts: classes[  # noqa: E731
            np.clip(np.searchsorted(starts, times, "right") - 1, 0, len(classes) - 1)]
        pieces.append(piece_from_midi(midi, f"{path.name} {place}", "harmony", max_seconds, chord_labels=labels))
    return pieces


def progression_pieces(root: Path, max_files: int, max_seconds: float, skips: SkipCounter, on_piece=None) -> list[Piece]:
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in (".json", ".csv") and p.is_file())
    pieces = []
    for path in files:
        found = progression_file_pieces(path, max_seconds, skips, limit=max_files - len(pieces))
        pieces += found
        for _ in found:
            if on_piece:
                on_piece()
        if len(pieces) >= max_files:
            break
    return pieces
