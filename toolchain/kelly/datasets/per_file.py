"""One source file -> the training arrays of the five models: the unit of work of a per-file feature store.

    pieces = file_pieces("lmd_full/0/0a1b.mid", "lakh")            # [Piece]: features + label streams
    arrays = file_arrays("lmd_full/0/0a1b.mid", "lakh")            # [{model name: (inputs, targets)}]

Both are plain top-level functions of a path (no shared state), so ``dask.bag.from_sequence(paths).map``
or ``client.map`` can run them. They call exactly what :class:`toolchain.kelly.datasets.DataBuilder`
calls for the same file: ``features.frame_features`` for the inputs (through ``music.piece_from_midi``
or ``deam``), ``base.model_arrays`` for the wiring and the targets. A progression file holds many
progressions, so every function returns a list (one entry per piece; one for the other sources).

Sources: ``lakh`` / ``maestro`` / ``groove`` (a MIDI file), ``corpus`` (a music21 corpus score; the
performance is seeded by ``(seed, index)`` as in ``corpus.corpus_pieces``), ``deam`` (an audio file and
its ``emotion`` = (valence, arousal) in [-1, 1]), ``harmony`` (a progression JSON/CSV file).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.datasets.base import Piece, SkipCounter, piece_arrays

SOURCES = ("lakh", "maestro", "groove", "corpus", "deam", "harmony")


def file_pieces(path: str | Path, source: str, max_seconds: float = 60.0, seed: int = 0, index: int = 0,
                emotion: tuple[float, float] | None = None, skips: SkipCounter | None = None) -> list[Piece]:
    """The pieces of one source file (see the module docstring); a bad file is an :class:`InputError`."""
    path = Path(path)
    if source in ("lakh", "maestro", "groove"):
        from toolchain.kelly.datasets.midi_trees import read_midi
        from toolchain.kelly.datasets.music import piece_from_midi

        return [piece_from_midi(read_midi(path), path.name, source, max_seconds)]
    if source == "corpus":
        from toolchain.kelly.datasets.corpus import corpus_piece

        return [corpus_piece(path, seed, index, max_seconds)]
    if source == "deam":
        from toolchain.kelly.features import frame_features, load_audio

        if emotion is None:
            raise InputError("a DEAM song needs its (valence, arousal) annotation", file=path)
        return [Piece(path.stem, "deam", features=frame_features(load_audio(path, max_seconds)), emotion=emotion)]
    if source == "harmony":
        from toolchain.kelly.datasets.progressions import progression_pieces_of_file

        return progression_pieces_of_file(path, max_seconds, skips or SkipCounter())
    raise InputError(f"unknown source {source!r}; one of {', '.join(SOURCES)}", file=path)


def file_arrays(path: str | Path, source: str, **options) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """For each piece of the file, ``{model name: (inputs [F, in], targets [F, out])}`` of every model the
    piece can teach (``base.piece_arrays``); ``options`` as for :func:`file_pieces`."""
    return [piece_arrays(piece) for piece in file_pieces(path, source, **options)]
