"""The music the trained models make on pieces they never saw (needs torch): the main job's music metrics.

Each validation piece's feature frames go through the five PyTorch models wired as the streaming
processor wires them (``spec.PIPELINE``: EmotionRecognizer's own prediction feeds harmony and groove,
no teacher forcing), the outputs are decoded exactly as ``kelly-tc pipeline --audio`` decodes a
recording (``decode.decode``), and ``scoring`` compares them with the piece's labels using mir_eval.
The pieces are concatenated in time, so every metric is over all their frames / notes / chord time.
"""
from __future__ import annotations

import numpy as np
import torch

from toolchain.kelly.chords import CHORD_CLASSES
from toolchain.kelly.datasets.base import Piece, forward_fill
from toolchain.kelly.decode import decode, melody_line_of
from toolchain.kelly.scoring import chord_scores, frame_scores, label_segments, note_scores
from toolchain.kelly.spec import FRAME_RATE, PIPELINE, pipeline_input


@torch.no_grad()
def pipeline_outputs(models: dict, features: np.ndarray) -> dict[str, np.ndarray]:
    """``{name: [F, out]}`` of the five torch models over ``features [F, FEATURE_SIZE]``, from zero state."""
    values = {"features": np.ascontiguousarray(features, dtype=np.float32)}
    for name in PIPELINE:
        model = models[name].eval()
        values[name] = model(torch.from_numpy(pipeline_input(name, values))[None])[0].numpy()
    return {name: values[name] for name in PIPELINE}


def evaluate_pieces(models: dict, pieces: list[Piece]) -> dict:
    """Melody (frame and note level) and chord scores of the models on ``pieces`` (see the module docstring)."""
    ref_line, est_line, ref_notes, est_notes, ref_chords, est_chords = [], [], [], [], [], []
    offset = 0.0
    for piece in pieces:
        if piece.features is None or piece.melody is None or piece.chords is None:
            continue
        frames = min(len(piece.features), len(piece.melody), len(piece.chords))
        outputs = pipeline_outputs(models, piece.features[:frames])
        decoded = decode(outputs)
        ref_line.append(piece.melody[:frames])
        est_line.append(melody_line_of(outputs["MelodyTransformer"]))
        if piece.melody_notes is not None and len(piece.melody_notes):
            ref_notes.append(piece.melody_notes + [offset, offset, 0])
        est_notes += [(e.start + offset, e.end + offset, e.pitches[0]) for e in decoded.notes]
        ref_chords.append(forward_fill(piece.chords[:frames]))
        est_chords.append(chord_frames(decoded.chords, frames))
        offset += frames / FRAME_RATE
    if not ref_line:
        return {}
    reference_chords = label_segments(np.concatenate(ref_chords))
    estimated_chords = label_segments(np.concatenate(est_chords))
    return {"seconds": round(offset, 2),
            "melody": {**frame_scores(np.concatenate(ref_line), np.concatenate(est_line)),
                       **note_scores(np.concatenate(ref_notes) if ref_notes else np.zeros((0, 3)), np.array(est_notes).reshape(-1, 3))},
            "chords": chord_scores(*reference_chords, *estimated_chords)}


def chord_frames(chords, frames: int) -> np.ndarray:
    """``[frames]`` the decoded chord class sounding at each frame's time (-1 between chords)."""
    times = np.arange(frames) / FRAME_RATE
    labels = np.full(frames, -1, np.int64)
    for event in chords:
        labels[(times >= event.start) & (times < event.end)] = CHORD_CLASSES.index(event.label)
    return labels
