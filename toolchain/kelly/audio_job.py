"""``kelly-tc pipeline --audio FILE``: a recording through the five models, frame by frame, to MIDI.

The audio is read with librosa (mono, 22,050 Hz) and turned into 128-band log-mel frames by
``toolchain.kelly.features.log_mel`` -- the function that made the training features. The frames are
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
from toolchain.kelly.spec import FRAME_RATE, MODEL_NAMES, N_FFT, SAMPLE_RATE, decode_emotion, get_spec

DECIMALS = 6


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


def process_audio(audio_path: str | Path, models_dir: str | Path, out_dir: str | Path) -> AudioResult:
    """Decode ``audio_path`` with the models in ``models_dir``; write the MIDI and the JSON to ``out_dir``."""
    from reference_engine.pipeline import MultiModelProcessor
    from toolchain.kelly.features import load_audio, log_mel

    audio_path, out_dir = Path(audio_path), Path(out_dir)
    if not audio_path.is_file():
        raise InputError("no such audio file", file=audio_path)
    audio = load_audio(audio_path)
    if len(audio) < N_FFT:  # shorter than one analysis window: librosa would also print a warning on stderr
        raise InputError(f"too short: {len(audio)} samples, less than one {N_FFT}-sample analysis window", file=audio_path)
    features = log_mel(audio)
    if len(features) < 2:
        raise InputError("too short: fewer than two feature frames", file=audio_path)
    processor = MultiModelProcessor(models_dir)
    outputs, seconds = stream(processor, features)
    stem = audio_path.stem
    result = AudioResult(audio_path, out_dir / f"{stem}.mid", out_dir / f"{stem}.outputs.json", len(features),
                         len(audio) / SAMPLE_RATE, seconds, decode(outputs), processor.describe())
    atomic.write_json(result.json_path, outputs_document(result, outputs), indent=None)
    write_midi(result.decoded, result.midi_path)
    return result
