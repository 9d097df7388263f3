"""What every dataset source produces (:class:`Piece`), how pieces become each model's training
sequences, the train/validation split, and the count of bad samples that were skipped.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from toolchain.kelly.chords import CHORD_CLASS_COUNT
from toolchain.kelly.spec import PIPELINE, encode_emotion, get_spec, pipeline_input

log = logging.getLogger(__name__)


@dataclass
class Piece:
    """One recording or score as frame-aligned streams at ``spec.FRAME_RATE``; absent streams are None.

    ``melody`` holds a MIDI pitch per frame (-1 = rest); ``chords`` a chord class per frame (-1 = none);
    ``melody_notes`` the notes behind ``melody`` (the reference of the note-level music metrics).
    """

    name: str
    source: str
    features: np.ndarray | None = None  # [F, spec.FEATURE_SIZE] feature frames (features.frame_features)
    emotion: tuple[float, float] | None = None  # (valence, arousal) in [-1, 1], one per piece
    melody: np.ndarray | None = None  # [F] int
    chords: np.ndarray | None = None  # [F] int
    expression: np.ndarray | None = None  # [F, 16] in [0, 1]
    groove: np.ndarray | None = None  # [F, 32] in [-1, 1]
    melody_notes: np.ndarray | None = None  # [N, 3] (start s, end s, MIDI pitch) of the melody's notes


@dataclass
class SkipCounter:
    """Bad samples skipped, counted per source (the run goes on; the summary reports the count)."""

    counts: Counter = field(default_factory=Counter)
    reasons: list[str] = field(default_factory=list)

    def skip(self, source: str, item: object, reason: str) -> None:
        log.warning("%s: skipped %s: %s", source, item, reason)
        self.counts[source] += 1
        if len(self.reasons) < 50:
            self.reasons.append(f"{source}: {item}: {reason}")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Sequences:
    inputs: np.ndarray  # [N, T, in] float32
    targets: np.ndarray  # [N, T, out] float32
    groups: np.ndarray  # [N] piece index, so that the split never cuts a piece in two

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def take(self, index: np.ndarray) -> "Sequences":
        return Sequences(self.inputs[index], self.targets[index], self.groups[index])


@dataclass
class ModelData:
    name: str
    train: Sequences
    validation: Sequences
    sources: list[str]
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    #: The pieces of the validation split (none for synthetic data): never seen in training.
    validation_pieces: list = field(default_factory=list)


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    """``[F, classes]`` float32 rows; a negative label gives an all-zero row."""
    labels = np.asarray(labels)
    result = np.zeros((labels.shape[0], classes), np.float32)
    valid = labels >= 0
    result[np.flatnonzero(valid), labels[valid]] = 1.0
    return result


def forward_fill(labels: np.ndarray) -> np.ndarray:
    """Each ``-1`` label replaced by the last valid one before it (leading ``-1`` stay)."""
    labels = np.asarray(labels).copy()
    index = np.where(labels >= 0, np.arange(labels.shape[0]), -1)
    np.maximum.accumulate(index, out=index)
    filled = index >= 0
    labels[filled] = labels[index[filled]]
    return labels


#: The Piece stream each model learns to predict.
TARGET_STREAMS = {"EmotionRecognizer": "emotion", "MelodyTransformer": "melody", "HarmonyPredictor": "chords",
                  "DynamicsEngine": "expression", "GroovePredictor": "groove"}


def reads_embedding(name: str) -> bool:
    """Whether model ``name``'s input includes EmotionRecognizer's output (``spec.PIPELINE``)."""
    return any(piece.source == "EmotionRecognizer" for piece in PIPELINE[name])


def model_arrays(name: str, piece: Piece) -> tuple[np.ndarray, np.ndarray] | None:
    """Frame-aligned (inputs, targets) of model ``name`` from ``piece``, or None if it lacks a stream.

    Inputs are assembled by ``spec.pipeline_input`` from the piece's feature frames -- the wiring the
    streaming processor uses. Where a model reads the emotion embedding, the piece's label code stands in
    for EmotionRecognizer's output (teacher forcing).
    """
    target = getattr(piece, TARGET_STREAMS[name])
    if target is None or piece.features is None or (reads_embedding(name) and piece.emotion is None):
        return None
    frames = len(piece.features) if name == "EmotionRecognizer" else min(len(piece.features), len(target))
    values = {"features": piece.features[:frames]}
    if piece.emotion is not None:
        values["EmotionRecognizer"] = np.repeat(encode_emotion(*piece.emotion)[None, :], frames, axis=0)
    inputs = pipeline_input(name, values)
    if name == "EmotionRecognizer":
        return inputs, values["EmotionRecognizer"]
    if name == "MelodyTransformer":
        return inputs, one_hot(piece.melody[:frames], 128)
    if name == "HarmonyPredictor":
        chords = forward_fill(piece.chords[:frames])
        start = int(np.argmax(chords >= 0)) if np.any(chords >= 0) else frames
        return inputs[start:], one_hot(chords[start:], CHORD_CLASS_COUNT)
    return inputs, np.asarray(target[:frames], np.float32)


def windows(inputs: np.ndarray, targets: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``seq_len``-frame windows ``[N, T, F]`` (a short tail is dropped)."""
    count = inputs.shape[0] // seq_len
    usable = count * seq_len
    return (inputs[:usable].reshape(count, seq_len, inputs.shape[1]),
            targets[:usable].reshape(count, seq_len, targets.shape[1]))


def pieces_to_sequences(name: str, pieces: list[Piece], seq_len: int, max_sequences: int, seed: int) -> Sequences | None:
    """All windows of model ``name`` over ``pieces`` (deterministically subsampled to ``max_sequences``)."""
    spec = get_spec(name)
    inputs, targets, groups = [], [], []
    for index, piece in enumerate(pieces):
        arrays = model_arrays(name, piece)
        if arrays is None:
            continue
        x, y = windows(*arrays, seq_len)
        inputs.append(x)
        targets.append(y)
        groups.append(np.full(x.shape[0], index))
    if not inputs or sum(len(g) for g in groups) == 0:
        return None
    data = Sequences(np.concatenate(inputs).astype(np.float32), np.concatenate(targets).astype(np.float32),
                     np.concatenate(groups))
    assert data.inputs.shape[2] == spec.input_size and data.targets.shape[2] == spec.output_size
    if len(data) > max_sequences:
        keep = np.sort(np.random.default_rng(seed).choice(len(data), max_sequences, replace=False))
        data = data.take(keep)
    return data


def split(data: Sequences, val_fraction: float, seed: int) -> tuple[Sequences, Sequences]:
    """Train/validation split by piece (group); by sequence when there is a single piece."""
    rng = np.random.default_rng(seed)
    unique = np.unique(data.groups)
    if len(unique) >= 2:
        val_groups = rng.permutation(unique)[:max(1, int(round(len(unique) * val_fraction)))]
        is_val = np.isin(data.groups, val_groups)
    else:
        is_val = np.zeros(len(data), bool)
        is_val[rng.permutation(len(data))[:max(1, int(round(len(data) * val_fraction)))]] = True
    if is_val.all() or not is_val.any():
        raise ValueError(f"cannot split {len(data)} sequences into train and validation")
    return data.take(np.flatnonzero(~is_val)), data.take(np.flatnonzero(is_val))
