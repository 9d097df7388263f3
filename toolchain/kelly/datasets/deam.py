"""DEAM (MediaEval Database for Emotional Analysis in Music) in its public layout.

    DEAM/
      DEAM_audio/MEMD_audio/2.mp3, 3.mp3, ...           (or .wav; any folder named MEMD_audio)
      DEAM_Annotations/annotations/annotations averaged per song/song_level/
        static_annotations_averaged_songs_1_2000.csv    (any file named static_annotations*.csv)
        static_annotations_averaged_songs_2000_2058.csv

The CSVs have a header with ``song_id``, ``valence_mean``, ``arousal_mean`` (DEAM writes ", " between
fields: names are stripped). Ratings are on DEAM's 1-9 scale and become ``(x - 5) / 4`` in [-1, 1].
A row with a missing or out-of-range value, a song without audio and an unreadable audio file are
skipped and counted. Each song gives feature frames (``features.frame_features``; EmotionRecognizer reads the log-mel group) and its static
(valence, arousal) as the target of every frame.
"""
from __future__ import annotations

import csv
from pathlib import Path

from toolchain.errors import InputError
from toolchain.kelly.datasets.base import Piece, SkipCounter

REQUIRED_COLUMNS = ("song_id", "valence_mean", "arousal_mean")
AUDIO_SUFFIXES = (".mp3", ".wav")


def rescale(rating: float) -> float:
    """DEAM's 1-9 rating scale to [-1, 1]."""
    return (rating - 5.0) / 4.0


def read_annotations(path: Path, skips: SkipCounter) -> dict[str, tuple[float, float]]:
    """``{song_id: (valence, arousal)}`` from one static-annotations CSV."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise InputError(f"missing column(s) {', '.join(missing)}; found {', '.join(header) or 'no header'}", file=path)
        columns = [header.index(name) for name in REQUIRED_COLUMNS]
        labels = {}
        for line, row in enumerate(reader, start=2):
            try:
                song, valence, arousal = (row[c].strip() for c in columns)
                valence, arousal = float(valence), float(arousal)
                if not song or not (1.0 <= valence <= 9.0 and 1.0 <= arousal <= 9.0):
                    raise ValueError("value missing or outside DEAM's 1-9 scale")
            except (IndexError, ValueError) as error:
                skips.skip("deam", f"{path.name} line {line}", str(error) or "missing value")
                continue
            labels[song] = (rescale(valence), rescale(arousal))
    return labels


def find_audio_dir(root: Path) -> Path:
    found = sorted(p for p in root.rglob("MEMD_audio") if p.is_dir())
    if not found:
        raise InputError("no MEMD_audio folder (DEAM's audio) under it", file=root)
    return found[0]


def deam_piece(song: str, path: Path, label: tuple[float, float], max_seconds: float) -> Piece:
    """The piece of one DEAM song: the feature frames of its audio (``features.frame_features``) and its
    (valence, arousal) label."""
    from toolchain.kelly.features import frame_features, load_audio

    return Piece(song, "deam", features=frame_features(load_audio(path, max_seconds)), emotion=label)


def deam_pieces(root: Path, max_files: int, max_seconds: float, skips: SkipCounter, on_piece=None) -> list[Piece]:
    root = Path(root)
    csv_files = sorted(root.rglob("static_annotations*.csv"))
    if not csv_files:
        raise InputError("no static_annotations*.csv (DEAM's song-level annotations) under it", file=root)
    labels: dict[str, tuple[float, float]] = {}
    for path in csv_files:
        try:
            labels.update(read_annotations(path, skips))
        except (InputError, OSError, UnicodeDecodeError, csv.Error) as error:
            skips.skip("deam", path.name, getattr(error, "reason", str(error)[:120]))
    audio_dir = find_audio_dir(root)
    pieces = []
    for song in sorted(labels, key=lambda s: (len(s), s))[:max_files]:
        path = next((audio_dir / f"{song}{suffix}" for suffix in AUDIO_SUFFIXES if (audio_dir / f"{song}{suffix}").exists()), None)
        try:
            if path is None:
                raise InputError(f"no {song}.mp3 or {song}.wav in {audio_dir}")
            piece = deam_piece(song, path, labels[song], max_seconds)
        except InputError as error:
            skips.skip("deam", f"song {song}", error.reason)
            continue
        pieces.append(piece)
        if on_piece:
            on_piece()
    return pieces
