"""Real music with no download: Bach chorales from music21's bundled corpus, performed and rendered.

Each score goes music21 -> MIDI bytes -> pretty_midi. A seeded "performance" then gives every piece its
own tempo (x0.6 to x1.6), loudness (base velocity 45 to 115, downbeats +12, jitter) and timing
(onset jitter up to 20 ms), so that arousal varies across pieces, and the audio is rendered with
fluidsynth (sine waves without it). All labels are measured on the performed MIDI (``music``), so they
are exact for the audio. Results are cached per piece in ``cache_dir`` (delete it to rebuild).
"""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from toolchain.atomic import atomic_path
from toolchain.kelly.datasets.base import Piece, SkipCounter
from toolchain.kelly.datasets.music import piece_from_midi

log = logging.getLogger(__name__)
#: Bump when labels or features change: cached pieces of another version are rebuilt.
CACHE_VERSION = 3  # 3: feature frames of spec.FEATURES_VERSION 2, soprano melody and its notes, phrase dynamics
STREAMS = ("features", "melody", "chords", "expression", "groove", "melody_notes")


def corpus_available() -> bool:
    try:
        import music21  # noqa: F401
        import pretty_midi  # noqa: F401
        import librosa  # noqa: F401
    except ImportError:
        return False
    return True


def chorale_paths(count: int) -> list[Path]:
    """``count`` Bach scores spread evenly over music21's corpus listing (a stable choice)."""
    from music21 import corpus

    paths = sorted(corpus.getComposer("bach"), key=lambda p: p.name)
    if count >= len(paths):
        return paths
    return [paths[i] for i in np.linspace(0, len(paths) - 1, count).round().astype(int)]


def perform(midi, rng: np.random.Generator) -> dict[str, float]:
    """Give a quantised score a tempo, dynamics and timing of its own (in place); returns the choices.

    Dynamics swell and fade over phrases (a slow sine of ``swell`` velocity steps), so loudness -- and
    what DynamicsEngine and GroovePredictor learn to hear in it -- varies within a piece, not only
    between pieces."""
    end = midi.get_end_time()
    choices = {"tempo_factor": float(rng.uniform(0.6, 1.6)), "velocity": float(rng.integers(45, 116)),
               "jitter_seconds": float(rng.uniform(0.0, 0.02)), "swell": float(rng.uniform(8.0, 24.0)),
               "swell_seconds": float(rng.uniform(5.0, 14.0)), "swell_phase": float(rng.uniform(0.0, 2 * np.pi))}
    midi.adjust_times(np.array([0.0, end]), np.array([0.0, end / choices["tempo_factor"]]))
    downbeats = midi.get_downbeats()
    for instrument in midi.instruments:
        for note in instrument.notes:
            accent = 12 if np.min(np.abs(downbeats - note.start)) < 1e-3 else 0
            swell = choices["swell"] * np.sin(2 * np.pi * note.start / choices["swell_seconds"] + choices["swell_phase"])
            note.velocity = int(np.clip(choices["velocity"] + accent + swell + rng.normal(0, 6), 1, 127))
            shift = max(rng.normal(0, choices["jitter_seconds"]), -note.start)
            note.start, note.end = note.start + shift, note.end + shift
    return choices


def score_to_midi(path: Path):
    import pretty_midi
    from music21 import corpus
    from music21.midi import translate

    score = corpus.parse(path)
    return pretty_midi.PrettyMIDI(io.BytesIO(translate.music21ObjectToMidiFile(score).writestr()))


def corpus_piece(path: Path, index: int, seed: int, max_seconds: float) -> Piece:
    """The ``index``-th chorale of the selection, performed with the seed ``[seed, index]``, rendered and
    analysed: its feature frames and labels."""
    midi = score_to_midi(path)
    perform(midi, np.random.default_rng([seed, index]))
    return piece_from_midi(midi, path.stem, "corpus", max_seconds)


def corpus_pieces(count: int, seed: int, max_seconds: float, cache_dir: str | Path | None,
                  skips: SkipCounter, on_piece=None) -> list[Piece]:
    """``count`` performed chorales as pieces (from the cache when present). ``on_piece()`` ticks progress."""
    from toolchain.kelly.features import fluidsynth_available

    renderer = "fluidsynth" if fluidsynth_available() else "sine"
    pieces = []
    for index, path in enumerate(chorale_paths(count)):
        cache = Path(cache_dir) / f"corpus-v{CACHE_VERSION}-{renderer}-s{seed}-{path.stem}-{max_seconds:g}s.npz" if cache_dir else None
        piece = _read_cache(cache, path.stem) if cache else None
        if piece is None:
            try:
                piece = corpus_piece(path, index, seed, max_seconds)
            except Exception as error:  # a score music21 or pretty_midi cannot handle: skip it, count it
                skips.skip("corpus", path.name, f"{type(error).__name__}: {str(error)[:100]}")
                continue
            if cache:
                _write_cache(cache, piece)
        pieces.append(piece)
        if on_piece:
            on_piece()
    return pieces


def _write_cache(path: Path, piece: Piece) -> None:
    arrays = {name: getattr(piece, name) for name in STREAMS if getattr(piece, name) is not None}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, emotion=np.array(piece.emotion), **arrays)


def _read_cache(path: Path, name: str) -> Piece | None:
    if not path.exists():
        return None
    try:
        with np.load(path) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except Exception as error:  # a damaged cache entry is rebuilt, not trusted
        log.warning("%s: unreadable cache entry (%s); rebuilding it", path, error)
        return None
    emotion = arrays.pop("emotion")
    return Piece(name, "corpus", emotion=(float(emotion[0]), float(emotion[1])), **arrays)
