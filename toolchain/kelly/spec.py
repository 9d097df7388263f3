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
#: Log-mel front end of EmotionRecognizer (and of HarmonyPredictor's audio half): one frame per hop.
SAMPLE_RATE = 22050
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
FRAME_RATE = SAMPLE_RATE / HOP_LENGTH  # ~43.07 frames per second
#: Feature = (clip(dB, FLOOR, CEILING) - CENTER) / SCALE, so full-scale music lands in about [-1.5, 1.5].
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
              500_000, "mse", "128 log-mel bands per frame (see DB_* above)",
              "emotion embedding: dims 0-31 encode valence, 32-63 arousal (encode_emotion)"),
    ModelSpec("MelodyTransformer", 64,
              (_dense(256, "relu"), LayerSpec("lstm", 176), _dense(256, "relu"), _dense(128, "sigmoid")),
              400_000, "bce", "emotion embedding (64)",
              "probability that MIDI pitch p (0-127) sounds in the melody at this frame"),
    ModelSpec("HarmonyPredictor", 128,
              (_dense(112, "relu"), LayerSpec("gru", 112), _dense(CHORD_CLASS_COUNT, "softmax")),
              100_000, "cross_entropy", "[emotion embedding (64), log-mel bands 0-63]",
              "distribution over the 64 chord classes of toolchain.kelly.chords"),
    ModelSpec("DynamicsEngine", 32,
              (_dense(64, "relu"), LayerSpec("lstm", 40), _dense(16, "sigmoid")),
              20_000, "mse", "emotion embedding dims 0-31 (valence half)",
              "16 expression parameters in [0, 1] (EXPRESSION_PARAMETERS)"),
    ModelSpec("GroovePredictor", 64,
              (_dense(64, "relu"), LayerSpec("lstm", 44), _dense(32, "tanh")),
              25_000, "mse", "emotion embedding (64)",
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
    """Features ``start:stop`` of ``source`` (``"features"`` = the log-mel frame, or a model's output)."""

    source: str
    start: int
    stop: int


#: What each model reads, in order, per frame. The pipeline runs the models in this order.
PIPELINE: dict[str, tuple[InputSlice, ...]] = {
    "EmotionRecognizer": (InputSlice("features", 0, N_MELS),),
    "MelodyTransformer": (InputSlice("EmotionRecognizer", 0, 64),),
    "HarmonyPredictor": (InputSlice("EmotionRecognizer", 0, 64), InputSlice("features", 0, 64)),
    "DynamicsEngine": (InputSlice("EmotionRecognizer", 0, 32),),
    "GroovePredictor": (InputSlice("EmotionRecognizer", 0, 64),),
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
