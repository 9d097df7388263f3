"""Audio -> the Kelly feature frames (librosa), and audio rendering of MIDI.

:func:`frame_features` is THE feature function: training data (every dataset source), the export's and
validation's music metrics, and ``kelly-tc pipeline --audio`` (whose frames the streaming processor
consumes one per call) all call it, so the models see the same numbers everywhere. A frame holds the
three groups of ``spec.FEATURE_GROUPS``: 128 log-mel bands, 64 semitone bins (constant-Q, MIDI 36-99) and
32 level values (:data:`LEVEL_LAYOUT`). Needs the ``audio`` extra (librosa, soundfile); fluidsynth
rendering needs the ``synth`` extra plus Debian's ``libfluidsynth3`` and falls back to pretty_midi's sine
synthesis without them.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.spec import (DB_CEILING, DB_CENTER, DB_FLOOR, DB_SCALE, FEATURE_SIZE, FRAME_RATE, HOP_LENGTH,
                                  LEVEL_SIZE, N_FFT, N_MELS, PITCH_BINS, PITCH_LOWEST, SAMPLE_RATE)

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


def _decibel_features(power: np.ndarray) -> np.ndarray:
    """``spec.DB_*`` scaling of a power spectrogram ``[bins, frames]`` (dB re 1.0, no per-file normalisation)."""
    decibels = 10.0 * np.log10(np.maximum(power, 1e-12))
    return (np.clip(decibels, DB_FLOOR, DB_CEILING) - DB_CENTER) / DB_SCALE


#: The semitone bins are read from a constant-Q transform with 3 bins per semitone (the centre one on the
#: semitone): one bin per semitone leaks half its energy into both neighbours, and a semitone's peak
#: then barely stands out of the bins around it; the max over the three keeps a slightly mistuned or
#: vibrato note in its own bin.
CQT_BINS_PER_SEMITONE = 3
#: Semitone bins are dB relative to the frame's strongest one (or to this level in dBFS, if the frame is
#: quieter), over RELATIVE_RANGE_DB: pitch content independent of loudness (the level group carries that).
PITCH_REFERENCE_DBFS = -60.0
RELATIVE_RANGE_DB = 60.0


def semitone_amplitudes(audio: np.ndarray) -> np.ndarray:
    """``[frames, 64]`` amplitude of the sinusoid at each semitone from MIDI ``PITCH_LOWEST`` (1.0 = full scale).

    librosa's CQT frames are centred on ``t * HOP_LENGTH`` as the STFT's are, so frame counts agree.
    """
    import librosa

    per_octave = 12 * CQT_BINS_PER_SEMITONE
    fmin = librosa.midi_to_hz(PITCH_LOWEST - 1.0 / CQT_BINS_PER_SEMITONE)
    bins = PITCH_BINS * CQT_BINS_PER_SEMITONE
    with warnings.catch_warnings():  # short audio: the CQT's decimated low octaves warn that n_fft > length
        warnings.simplefilter("ignore", UserWarning)
        cqt = librosa.cqt(audio, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, fmin=fmin, n_bins=bins,
                          bins_per_octave=per_octave, scale=False)
    # Unscaled, a bin's response to a sine of amplitude A is A * length / 2 (its window sums to its length):
    # divide by the filter lengths librosa uses (the relative bandwidth librosa.vqt gives this resolution)
    # so every bin reads A. Checked: 1.0 and 0.1 sines at MIDI 40-95 read 1.00 and 0.100.
    ratio = 2.0 ** (2.0 / per_octave)
    lengths, _ = librosa.filters.wavelet_lengths(freqs=librosa.cqt_frequencies(bins, fmin=fmin, bins_per_octave=per_octave),
                                                 sr=SAMPLE_RATE, alpha=(ratio - 1) / (ratio + 1))
    amplitude = (2.0 * np.abs(cqt) / lengths[:, None]).T
    return amplitude.reshape(len(amplitude), PITCH_BINS, CQT_BINS_PER_SEMITONE).max(axis=2)


def semitone_bins(audio: np.ndarray) -> np.ndarray:
    """``[frames, 64]`` semitone features: dB relative to the frame's strongest semitone (floor:
    :data:`PITCH_REFERENCE_DBFS`), the top :data:`RELATIVE_RANGE_DB` mapped onto [-1.5, 1.5]."""
    decibels = 20.0 * np.log10(np.maximum(semitone_amplitudes(audio), 1e-9))
    reference = np.maximum(decibels.max(axis=1, keepdims=True), PITCH_REFERENCE_DBFS)
    relative = np.clip(decibels - reference, -RELATIVE_RANGE_DB, 0.0)
    return np.ascontiguousarray(1.5 + 3.0 * relative / RELATIVE_RANGE_DB, dtype=np.float32)


#: The 32 level values per frame. Smoothing is causal (an exponential moving average of past frames), so a
#: plugin can compute them as it streams; EMA time constants in seconds.
LEVEL_TIME_CONSTANTS = (0.25, 0.5, 1.0, 2.0)
#: Lags (frames, 0.19-1.49 s: a 16th at 80 bpm to a half note at 80) of the onset periodicity values.
PERIODICITY_LAGS = (8, 9, 10, 11, 12, 14, 16, 18, 20, 23, 26, 30, 34, 39, 45, 52)
PERIODICITY_TIME_CONSTANT = 3.0
LEVEL_LAYOUT = (("loudness", "onset", "centroid", "flatness")
                + tuple(f"loudness_ema_{t:g}s" for t in LEVEL_TIME_CONSTANTS)
                + tuple(f"onset_ema_{t:g}s" for t in LEVEL_TIME_CONSTANTS)
                + ("onset_ema_0.1s", "polyphony", "register", "register_ema_2s")
                + tuple(f"periodicity_{lag}" for lag in PERIODICITY_LAGS))
assert len(LEVEL_LAYOUT) == LEVEL_SIZE


def moving_average(values: np.ndarray, seconds: float) -> np.ndarray:
    """Causal exponential moving average along axis 0 with time constant ``seconds`` (from zero state)."""
    from scipy.signal import lfilter

    weight = 1.0 - np.exp(-1.0 / (seconds * FRAME_RATE))
    return lfilter([weight], [1.0, weight - 1.0], values, axis=0).astype(np.float32)


def level_values(mel: np.ndarray, pitch: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """``[frames, 32]`` :data:`LEVEL_LAYOUT` from the log-mel and semitone features and the audio."""
    import librosa

    frames = len(mel)
    rms = librosa.feature.rms(y=audio, frame_length=N_FFT, hop_length=HOP_LENGTH)[0][:frames]
    loudness = _decibel_features(rms ** 2)  # the frame's level on the bands' dB scale
    onset = np.maximum(np.diff(mel, axis=0, prepend=mel[:1]), 0.0).mean(axis=1) * 8.0  # spectral flux, rises only
    spectrum = np.abs(librosa.stft(audio, n_fft=N_FFT, hop_length=HOP_LENGTH))[:, :frames]
    centroid = np.log2(np.maximum(librosa.feature.spectral_centroid(S=spectrum, sr=SAMPLE_RATE)[0], 20.0) / 1000.0)
    flatness = np.log10(np.maximum(librosa.feature.spectral_flatness(S=spectrum)[0], 1e-6)) / 3.0 + 1.0
    # register and polyphony from the semitone bins: bins within 20 dB of the frame's strongest one
    # (silent frames sit at the floor of every bin: no register)
    active = (pitch >= 1.5 - 3.0 * 20.0 / RELATIVE_RANGE_DB) & (pitch.max(axis=1, keepdims=True) > pitch.min(axis=1, keepdims=True))
    count = active.sum(axis=1)
    register = np.where(count > 0, (active * np.arange(PITCH_BINS)).sum(axis=1) / np.maximum(count, 1) / PITCH_BINS, 0.0)
    periodicity = onset_periodicity(onset)
    columns = [loudness, onset, centroid, flatness]
    columns += [moving_average(loudness, t) for t in LEVEL_TIME_CONSTANTS]
    columns += [moving_average(onset, t) for t in LEVEL_TIME_CONSTANTS]
    columns += [moving_average(onset, 0.1), count / 8.0, register, moving_average(register, 2.0)]
    return np.concatenate([np.stack(columns, axis=1), periodicity], axis=1).astype(np.float32)


def onset_periodicity(onset: np.ndarray) -> np.ndarray:
    """``[frames, 16]`` causal autocorrelation of the onset curve at :data:`PERIODICITY_LAGS`, normalised by
    its energy: how strongly onsets recur at each period (the beat and its subdivisions, i.e. tempo)."""
    centred = onset - moving_average(onset, PERIODICITY_TIME_CONSTANT)
    energy = moving_average(centred * centred, PERIODICITY_TIME_CONSTANT) + 1e-4
    lagged = np.stack([np.concatenate([np.zeros(lag, np.float32), centred[:-lag]]) if lag < len(centred)
                       else np.zeros_like(centred) for lag in PERIODICITY_LAGS], axis=1)
    return moving_average(centred[:, None] * lagged, PERIODICITY_TIME_CONSTANT) / energy[:, None]


def frame_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``[frames, spec.FEATURE_SIZE]`` float32 feature frames of mono ``audio``: log-mel | semitone | level.

    THE feature function (see the module docstring). Frame t is centred on sample ``t * HOP_LENGTH``.
    """
    import librosa

    audio = np.asarray(audio, np.float32)
    if sample_rate != SAMPLE_RATE:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    if audio.size == 0:
        return np.zeros((0, FEATURE_SIZE), np.float32)
    mel = log_mel(audio)
    pitch = semitone_bins(audio)[:len(mel)]
    features = np.concatenate([mel, pitch, level_values(mel, pitch, audio)], axis=1)
    return np.ascontiguousarray(features, dtype=np.float32)


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
