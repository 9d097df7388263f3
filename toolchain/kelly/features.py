"""Audio -> EmotionRecognizer's input: 128-band log-mel frames (librosa), and audio rendering of MIDI.

One implementation for training data, the pipeline's ``--audio`` path and the tests. Needs the
``audio`` extra (librosa, soundfile); fluidsynth rendering needs the ``synth`` extra plus Debian's
``libfluidsynth3`` and falls back to pretty_midi's sine synthesis without them.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.spec import DB_CEILING, DB_CENTER, DB_FLOOR, DB_SCALE, HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE

log = logging.getLogger(__name__)
#: Output level of rendered MIDI: full-velocity polyphony stays below clipping, soft notes stay audible.
RENDER_GAIN = 4.0


def log_mel(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[frames, 128]`` float32 features of mono ``audio`` (resampled to ``spec.SAMPLE_RATE`` if needed).

    Frame t covers samples around ``t * HOP_LENGTH`` (librosa's centred frames); power in dB re 1.0 is
    clipped to [DB_FLOOR, DB_CEILING] and mapped by (dB - DB_CENTER) / DB_SCALE. No per-file
    normalisation: loudness is part of what EmotionRecognizer hears (arousal).
    """
    import librosa

    audio = np.asarray(audio, np.float32)
    if sample_rate != SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    if audio.size == 0:
        return np.zeros((0, N_MELS), np.float32)
    mel = librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS)
    decibels = 10.0 * np.log10(np.maximum(mel, 1e-12))
    features = (np.clip(decibels, DB_FLOOR, DB_CEILING) - DB_CENTER) / DB_SCALE
    return np.ascontiguousarray(features.T, dtype=np.float32)


def audio_failure(path: str | Path, error: Exception) -> str:
    """Why ``path`` did not decode, in words: audioread's NoBackendError carries no message at all."""
    reason = " ".join(str(error).split())[:160]
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except OSError:
        head = b""
    if Path(path).suffix.lower() == ".wav" and head[:4] not in (b"RIFF", b"RIFX", b"RF64"):
        return "not a WAV file: no RIFF header"
    if not reason:
        reason = "no decoder recognises the content: not audio, cut short, or a format that needs ffmpeg"
    return f"{type(error).__name__}: {reason}"


def load_audio(path: str | Path, max_seconds: float | None = None) -> np.ndarray:
    """Mono float32 audio at ``spec.SAMPLE_RATE``; an unreadable file is an :class:`InputError`."""
    import librosa

    try:
        with warnings.catch_warnings():  # librosa warns before falling back to audioread: we report failures
            warnings.simplefilter("ignore")
            audio, _ = librosa.load(str(path), sr=SAMPLE_RATE, mono=True, duration=max_seconds)
    except Exception as error:  # librosa raises many types (soundfile, audioread, EOF ...) for bad files
        raise InputError(f"unreadable audio ({audio_failure(path, error)})", file=path) from None
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise InputError("audio is empty or not finite", file=path)
    return audio.astype(np.float32)


def fluidsynth_available() -> bool:
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; loading it also loads libfluidsynth)
    except (ImportError, OSError):
        return False
    return True


def render_midi(midi, max_seconds: float | None = None) -> np.ndarray:
    """Audio of a ``pretty_midi.PrettyMIDI`` at ``spec.SAMPLE_RATE``: fluidsynth with pretty_midi's
    General MIDI SoundFont, or sine synthesis without it. Not normalised per file: velocities set the level.
    """
    if fluidsynth_available():
        audio = midi.fluidsynth(fs=SAMPLE_RATE, normalize=False) * RENDER_GAIN
    else:
        log.info("pyfluidsynth/libfluidsynth not available: rendering MIDI with sine waves")
        audio = midi.synthesize(fs=SAMPLE_RATE) * 0.1
    if max_seconds is not None:
        audio = audio[: int(max_seconds * SAMPLE_RATE)]
    return np.clip(audio, -1.0, 1.0).astype(np.float32)
