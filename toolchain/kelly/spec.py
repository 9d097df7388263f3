"""The ONE spec of the five Kelly models: sizes, layer stacks, parameter targets, losses, output
meanings and the pipeline wiring. Training, export, validation and the pipeline all read it.

Importable without PyTorch (numpy only).

Parameter counting: a model's parameters are counted as in its exported RTNeural JSON, i.e. every
stored weight and bias float (``toolchain.layers.Model.parameter_count``). PyTorch's ``nn.LSTM`` keeps
two bias vectors (``bias_ih`` and ``bias_hh``, 4H each) that the exporter sums into RTNeural's single
bias, so PyTorch counts 4H more per LSTM layer; GRU keeps both biases in both. The +-10% targets apply
to the RTNeural count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolchain.errors import InputError
from toolchain.kelly.chords import CHORD_CLASS_COUNT

# ------------------------------------------------------------------------------------ audio features
#: One feature frame per hop, computed by ``toolchain.kelly.features.frame_features`` (the one function used
#: for training data, export checks, validation and the streaming processor). A frame is three groups:
SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
FRAME_RATE = SAMPLE_RATE / HOP_LENGTH  # ~43.07 frames per second
#: ``mel``: 128 log-mel bands (timbre, loudness: EmotionRecognizer).
N_MELS = 128
#: ``pitch``: 64 constant-Q bins, one per semitone, MIDI 36 (C2) .. 99 (D#7): the pitches a melody line and
#: a chord's notes sound at, resolved (a 2048-point STFT cannot separate semitones below ~C4).
PITCH_BINS = 64
PITCH_LOWEST = 36
#: ``level``: 32 loudness / onset / register measurements (``features.LEVEL_LAYOUT``), causal smoothing only.
LEVEL_SIZE = 32
FEATURE_GROUPS = {"mel": (0, N_MELS), "pitch": (N_MELS, N_MELS + PITCH_BINS),
                  "level": (N_MELS + PITCH_BINS, N_MELS + PITCH_BINS + LEVEL_SIZE)}
FEATURE_SIZE = N_MELS + PITCH_BINS + LEVEL_SIZE  # 224
#: Bump whenever the feature frame or the wiring changes: exported models carry it, and the ``--audio``
#: path refuses to stream through models made for other features (they would compute nonsense).
FEATURES_VERSION = 2
#: Spectral magnitudes become features as (clip(dB, FLOOR, CEILING) - CENTER) / SCALE, so full-scale music
#: lands in about [-1.5, 1.5]; no per-file normalisation (loudness is information: arousal, dynamics).
DB_FLOOR, DB_CEILING, DB_CENTER, DB_SCALE = -80.0, 40.0, -20.0, 40.0


@dataclass(frozen=True)
class LayerSpec:
    """One layer: RTNeural kind (``dense``, ``lstm``, ``gru``), output size, activation after it."""

    kind: str
    size: int
    activation: str = ""

    def parameter_count(self, in_size: int, convention: str = "rtneural") -> int:
        if self.kind == "dense":
            return in_size * self.size + self.size
        if self.kind == "lstm":
            biases = 2 if convention == "torch" else 1
            return 4 * self.size * (in_size + self.size + biases)
        if self.kind == "gru":  # two biases in PyTorch and in RTNeural
            return 3 * self.size * (in_size + self.size + 2)
        raise ValueError(f"unknown layer kind {self.kind!r}")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_size: int
    layers: tuple[LayerSpec, ...]
    parameter_target: int
    loss: str  # "mse" (on the activated output), "bce" (sigmoid logits), "cross_entropy" (softmax logits)
    input_meaning: str
    output_meaning: str

    @property
    def output_size(self) -> int:
        return self.layers[-1].size

    @property
    def output_activation(self) -> str:
        return self.layers[-1].activation

    @property
    def recurrent(self) -> bool:
        return any(layer.kind in ("lstm", "gru") for layer in self.layers)

    def parameter_count(self, convention: str = "rtneural") -> int:
        """Parameters as RTNeural stores them (``"rtneural"``) or as PyTorch holds them (``"torch"``)."""
        if convention not in ("rtneural", "torch"):
            raise ValueError(f"convention must be 'rtneural' or 'torch', not {convention!r}")
        total, size = 0, self.input_size
        for layer in self.layers:
            total += layer.parameter_count(size, convention)
            size = layer.size
        return total

    def parameter_bounds(self, tolerance: float = 0.10) -> tuple[int, int]:
        return int(self.parameter_target * (1 - tolerance)), int(self.parameter_target * (1 + tolerance))

    def stack(self) -> str:
        """``128 -> dense512 relu -> ... -> dense64 tanh``: the stack in one line (docs, reports)."""
        parts = [str(self.input_size)] + [f"{l.kind}{l.size}{' ' + l.activation if l.activation else ''}" for l in self.layers]
        return " -> ".join(parts)


def _dense(size: int, activation: str = "") -> LayerSpec:
    return LayerSpec("dense", size, activation)


SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("EmotionRecognizer", N_MELS,
              (_dense(512, "relu"), _dense(256, "relu"), LayerSpec("lstm", 176), _dense(64, "tanh")),
              500_000, "mse", "features: log-mel bands 96-127, 64 semitone bins, 32 level values",
              "emotion embedding: dims 0-31 encode valence, 32-63 arousal (encode_emotion)"),
    ModelSpec("MelodyTransformer", 64,
              (_dense(256, "relu"), LayerSpec("lstm", 176), _dense(256, "relu"), _dense(128, "sigmoid")),
              400_000, "bce", "features: 64 semitone (constant-Q) bins, MIDI 36-99",
              "probability that MIDI pitch p (0-127) is the top voice's (soprano's) pitch at this frame"),
    ModelSpec("HarmonyPredictor", 128,
              (_dense(112, "relu"), LayerSpec("gru", 112), _dense(CHORD_CLASS_COUNT, "softmax")),
              100_000, "cross_entropy", "[emotion embedding (64), features: 64 semitone bins]",
              "distribution over the 64 chord classes of toolchain.kelly.chords"),
    ModelSpec("DynamicsEngine", 32,
              (_dense(64, "relu"), LayerSpec("lstm", 40), _dense(16, "sigmoid")),
              20_000, "mse", "features: 32 level values (loudness, onsets, register)",
              "16 expression parameters in [0, 1] (EXPRESSION_PARAMETERS)"),
    ModelSpec("GroovePredictor", 64,
              (_dense(64, "relu"), LayerSpec("lstm", 44), _dense(32, "tanh")),
              25_000, "mse", "[features: 32 level values, emotion embedding dims 32-63 (arousal)]",
              "dims 0-15 timing offset per 16th step of the bar, 16-31 accent per step (GROOVE_LAYOUT)"),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
MODEL_NAMES = tuple(SPEC_BY_NAME)


def get_spec(name: str) -> ModelSpec:
    if name not in SPEC_BY_NAME:
        raise InputError(f"unknown Kelly model {name!r}; the models are {', '.join(MODEL_NAMES)}")
    return SPEC_BY_NAME[name]


# ------------------------------------------------------------------------------------ pipeline wiring
@dataclass(frozen=True)
class InputSlice:
    """Values ``start:stop`` of ``source`` (``"features"`` = the feature frame, or a model's output)."""

    source: str
    start: int
    stop: int


def feature_slice(group: str) -> InputSlice:
    return InputSlice("features", *FEATURE_GROUPS[group])


#: EmotionRecognizer hears the top log-mel bands (brightness), then every semitone bin (mode: valence) and
#: every level value (loudness, onset density, tempo: arousal) -- one contiguous slice of 128.
EMOTION_MEL_BANDS = 32

#: What each model reads, in order, per frame. The pipeline runs the models in this order. Each model sees
#: the information its target is made of: melody and harmony the semitone bins (pitches), dynamics and
#: groove the level group (loudness, onsets), harmony and groove also the emotion embedding (mode and
#: arousal colour chord choice and accents).
PIPELINE: dict[str, tuple[InputSlice, ...]] = {
    "EmotionRecognizer": (InputSlice("features", N_MELS - EMOTION_MEL_BANDS, FEATURE_SIZE),),
    "MelodyTransformer": (feature_slice("pitch"),),
    "HarmonyPredictor": (InputSlice("EmotionRecognizer", 0, 64), feature_slice("pitch")),
    "DynamicsEngine": (feature_slice("level"),),
    "GroovePredictor": (feature_slice("level"), InputSlice("EmotionRecognizer", 32, 64)),
}


def pipeline_input(name: str, values: dict[str, np.ndarray]) -> np.ndarray:
    """Assemble model ``name``'s input from ``values`` (``[..., F]`` arrays by source name)."""
    parts = [values[piece.source][..., piece.start:piece.stop] for piece in PIPELINE[name]]
    return np.ascontiguousarray(np.concatenate(parts, axis=-1), dtype=np.float32)


# ------------------------------------------------------------------------------------ output layouts
#: Emotion embedding: 32 soft-thermometer units per axis. Unit k of an axis holds
#: tanh(EMOTION_GAIN * (value - center_k)) with centers spread evenly over (-1, 1); the code is
#: monotonic in the value, so decode_emotion inverts it, and nearby values get nearby codes.
EMOTION_UNITS = 32
EMOTION_GAIN = 4.0
EMOTION_CENTERS = (-1.0 + (2.0 * np.arange(EMOTION_UNITS) + 1.0) / EMOTION_UNITS).astype(np.float32)
_DECODE_GRID = np.linspace(-1.0, 1.0, 2001, dtype=np.float32)


def encode_axis(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, np.float32)
    return np.tanh(EMOTION_GAIN * (values[..., None] - EMOTION_CENTERS)).astype(np.float32)


def encode_emotion(valence, arousal) -> np.ndarray:
    """``[..., 64]`` embedding of valence and arousal in [-1, 1]: valence dims 0-31, arousal 32-63."""
    return np.concatenate([encode_axis(valence), encode_axis(arousal)], axis=-1)


_GRID_CODES = encode_axis(_DECODE_GRID)  # [2001, 32]


def decode_axis(code: np.ndarray) -> np.ndarray:
    """The value whose code is nearest (least squares, on a 0.001 grid) to each ``[..., 32]`` code."""
    code = np.asarray(code, np.float32)
    flat = code.reshape(-1, EMOTION_UNITS)
    distances = (flat ** 2).sum(1, keepdims=True) - 2 * flat @ _GRID_CODES.T + (_GRID_CODES ** 2).sum(1)
    return _DECODE_GRID[np.argmin(distances, axis=1)].reshape(code.shape[:-1])


def decode_emotion(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valence, arousal) from a ``[..., 64]`` embedding."""
    embedding = np.asarray(embedding, np.float32)
    return decode_axis(embedding[..., :EMOTION_UNITS]), decode_axis(embedding[..., EMOTION_UNITS:])


#: DynamicsEngine's 16 outputs, each scaled to [0, 1] (see datasets/music.py for the measurement).
EXPRESSION_PARAMETERS = (
    "velocity_mean", "velocity_spread", "velocity_max", "velocity_min", "velocity_trend", "accent_contrast",
    "note_density", "articulation", "timing_spread", "timing_push", "tempo", "ioi_variation",
    "polyphony", "pitch_range", "register", "sustain_pedal",
)
#: GroovePredictor's 32 outputs in [-1, 1]: per 16th step s of the current bar, the onset's timing offset
#: from the grid in half-steps (0 with no onset), then its accent (velocity mapped to [-1, 1]; -1 = no onset).
GROOVE_STEPS = 16
GROOVE_LAYOUT = tuple(f"offset_{s}" for s in range(GROOVE_STEPS)) + tuple(f"accent_{s}" for s in range(GROOVE_STEPS))
