"""Lakh MIDI, MAESTRO and Groove MIDI: trees of ``*.mid`` / ``*.midi`` files read with pretty_midi.

The three public layouts differ only in their folders (``lmd_full/0/<md5>.mid``,
``maestro-v3.0.0/2018/<name>.midi``, ``groove/drummer1/session1/<name>.mid``), so one walker reads
them all: every MIDI file under the root, in sorted order, the first ``max_files``. What each
contributes is measured by ``music.piece_from_midi``: melody lines (Lakh, MAESTRO), velocities,
timing and pedal (MAESTRO -> DynamicsEngine), drum onsets against the 16th grid (Groove). A corrupt
or empty file is skipped and counted.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from toolchain.errors import InputError
from toolchain.kelly.datasets.base import Piece, SkipCounter
from toolchain.kelly.datasets.music import piece_from_midi

MIDI_SUFFIXES = (".mid", ".midi")


def midi_files(root: Path, max_files: int) -> list[Path]:
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    return files[:max_files]


def read_midi(path: Path):
    """A ``PrettyMIDI`` of ``path``; :class:`InputError` if it is corrupt or holds no notes."""
    import pretty_midi

    try:
        with warnings.catch_warnings():  # pretty_midi warns about odd-but-valid meta events
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as error:  # mido/pretty_midi raise OSError, ValueError, KeyError, EOFError ... on bad files
        raise InputError(f"not a readable MIDI file ({type(error).__name__}: {str(error)[:100]})", file=path) from None
    if not any(instrument.notes for instrument in midi.instruments):
        raise InputError("the MIDI file has no notes", file=path)
    return midi


def tree_piece(path: Path, root: Path, source: str, max_seconds: float, render: bool) -> Piece:
    """The piece of one MIDI file (what ``tree_pieces`` and the feature store's tasks both call)."""
    return piece_from_midi(read_midi(path), str(path.relative_to(root)), source, max_seconds, render=render)


def tree_pieces(root: Path, source: str, max_files: int, max_seconds: float, render: bool,
                skips: SkipCounter, on_piece=None) -> list[Piece]:
    """Pieces of every readable MIDI file under ``root`` (rendered to audio when ``render``)."""
    pieces = []
    for path in midi_files(root, max_files):
        try:
            pieces.append(tree_piece(path, root, source, max_seconds, render))
        except InputError as error:
            skips.skip(source, path.name, error.reason)
        except (ValueError, IndexError, ZeroDivisionError) as error:  # degenerate tempo maps and the like
            skips.skip(source, path.name, f"cannot analyse ({type(error).__name__}: {str(error)[:100]})")
        if on_piece:
            on_piece()
    return pieces
