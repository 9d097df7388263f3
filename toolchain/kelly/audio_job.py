"""``kelly-tc pipeline --audio FILE``: a recording through the five models, frame by frame, to MIDI.

The recording is checked first (:func:`read_recording`: it exists, decodes, lasts at least
:data:`MIN_SECONDS`), before any model is trained or loaded and before anything is written. It is read with
librosa (mono, 22,050 Hz) and turned into feature frames by ``toolchain.kelly.features.frame_features`` --
the function that made the training features. The frames are
streamed through ``reference_engine.pipeline.MultiModelProcessor`` one ``process_frame`` call at a
time, as a plugin would; the outputs are decoded by ``toolchain.kelly.decode`` and written, each file
atomically, as

- ``OUT/STEM.mid``: a chord track and a melody track (pretty_midi);
- ``OUT/STEM.outputs.json``: the settings, which models ran and which fallbacks stood in, the decoded
  chords/notes/tempo, each frame's valence and arousal (decoded from the embedding), and every
  model's per-frame outputs (rounded to 6 decimals).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolchain import atomic
from toolchain.errors import InputError
from toolchain.kelly.decode import Decoded, decode, write_midi
from toolchain.kelly.spec import FEATURES_VERSION, FRAME_RATE, MODEL_NAMES, SAMPLE_RATE, decode_emotion, get_spec

DECIMALS = 6
#: Shortest recording worth decoding: one beat at 60 bpm (a chord needs MIN_CHORD_SECONDS, a note 3 frames).
MIN_SECONDS = 1.0


@dataclass
class AudioResult:
    audio_path: Path
    midi_path: Path
    json_path: Path
    frames: int
    audio_seconds: float
    processing_seconds: float  # streaming the frames through the five models
    decoded: Decoded
    models: list[dict]  # MultiModelProcessor.describe(): model or fallback, and why

    @property
    def fallbacks(self) -> list[str]:
        return [m["name"] for m in self.models if m["source"] == "fallback"]


def stream(processor, features: np.ndarray) -> tuple[dict[str, np.ndarray], float]:
    """Every frame through ``processor.process_frame`` from a reset; ([T, out] per model, seconds)."""
    outputs = {name: np.empty((len(features), get_spec(name).output_size), np.float32) for name in MODEL_NAMES}
    processor.reset()
    started = time.perf_counter()
    for index, frame in enumerate(features):
        produced = processor.process_frame(frame)
        for name in MODEL_NAMES:
            outputs[name][index] = produced[name]
    return outputs, time.perf_counter() - started


def outputs_document(result: AudioResult, outputs: dict[str, np.ndarray]) -> dict:
    valence, arousal = decode_emotion(outputs["EmotionRecognizer"]) if result.frames else (np.zeros(0), np.zeros(0))
    return {"audio": str(result.audio_path), "frames": result.frames, "frame_rate": FRAME_RATE,
            "audio_seconds": result.audio_seconds, "models": result.models, "decoded": result.decoded.to_json(),
            "emotion": {"valence": np.round(valence, 3).tolist(), "arousal": np.round(arousal, 3).tolist()},
            "outputs": {name: np.round(outputs[name].astype(np.float64), DECIMALS).tolist() for name in MODEL_NAMES}}


def read_recording(audio_path: str | Path) -> np.ndarray:
    """The recording as mono float32 audio at ``spec.SAMPLE_RATE``, or an :class:`InputError` if it is
    missing, not a regular file, undecodable, silent-by-corruption (non-finite) or shorter than
    :data:`MIN_SECONDS`. Cheap (no model, no feature), so ``--audio`` runs it before any work."""
    from toolchain.kelly.features import load_audio

    audio_path = Path(audio_path)
    if not audio_path.exists():
        raise InputError("no such audio file", file=audio_path)
    if not audio_path.is_file():
        raise InputError("not a regular file", file=audio_path)
    audio = load_audio(audio_path)
    if len(audio) < MIN_SECONDS * SAMPLE_RATE:
        raise InputError(f"too short: {len(audio) / SAMPLE_RATE:.3f} s, the pipeline needs at least {MIN_SECONDS:g} s",
                         file=audio_path)
    return audio


def models_missing(models_dir: str | Path) -> list[str]:
    """Why ``models_dir`` cannot stand for a trained main job's models (empty when it can): a model file
    missing, unreadable, or exported for other features (``spec.FEATURES_VERSION``)."""
    import json

    from toolchain.cpp.reference_pair import METADATA_KEY

    problems = []
    for name in MODEL_NAMES:
        path = Path(models_dir) / f"{name}.json"
        try:
            metadata = json.loads(path.read_text(encoding="utf-8")).get(METADATA_KEY) or {}
        except (OSError, ValueError, AttributeError):
            problems.append(f"{path.name} missing or unreadable")
            continue
        if metadata.get("features_version") != FEATURES_VERSION:
            problems.append(f"{path.name} was made for features version {metadata.get('features_version', 1)}, "
                            f"not {FEATURES_VERSION}")
    return problems


def process_audio(audio_path: str | Path, models_dir: str | Path, out_dir: str | Path,
                  audio: np.ndarray | None = None) -> AudioResult:
    """Decode ``audio_path`` with the models in ``models_dir``; write the MIDI and the JSON to ``out_dir``.
    ``audio``: the recording already read by :func:`read_recording` (read here otherwise)."""
    from reference_engine.pipeline import MultiModelProcessor
    from toolchain.kelly.features import frame_features

    audio_path, out_dir = Path(audio_path), Path(out_dir)
    if audio is None:
        audio = read_recording(audio_path)
    features = frame_features(audio)
    processor = MultiModelProcessor(models_dir)
    outputs, seconds = stream(processor, features)
    stem = audio_path.stem
    result = AudioResult(audio_path, out_dir / f"{stem}.mid", out_dir / f"{stem}.outputs.json", len(features),
                         len(audio) / SAMPLE_RATE, seconds, decode(outputs), processor.describe())
    atomic.write_json(result.json_path, outputs_document(result, outputs), indent=None)
    write_midi(result.decoded, result.midi_path)
    return result
