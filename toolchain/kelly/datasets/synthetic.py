"""Synthetic sequences whose targets are a learnable function of the inputs (fixed seed).

Inputs are smooth random sequences (an AR(1) process per feature). The target at frame t is a fixed
random two-layer function of an exponential moving average of the inputs up to t -- so it depends on
the past (a recurrent model has something to remember) and is exactly learnable by the model's stack.
The final nonlinearity matches the model's output (tanh, sigmoid, softmax; EmotionRecognizer's targets
are proper emotion codes of a valence and an arousal computed that way), so "predict the mean" is a
real baseline to beat.
"""
from __future__ import annotations

import numpy as np

from toolchain.kelly.datasets.base import Sequences
from toolchain.kelly.spec import MODEL_NAMES, encode_emotion, get_spec

AR_COEFFICIENT = 0.7  # input smoothness
MEMORY = 0.35  # EMA weight of the newest frame in the target's memory
HIDDEN = 8  # rank of the hidden function
SHARPNESS = 3.0  # logit scale of probability targets: mostly near 0/1 (notes) or one dominant class (chords)


def smooth_noise(rng: np.random.Generator, count: int, seq_len: int, size: int) -> np.ndarray:
    """``[count, seq_len, size]`` AR(1) sequences with unit stationary variance."""
    noise = rng.standard_normal((count, seq_len, size)).astype(np.float32)
    x = np.empty_like(noise)
    x[:, 0] = noise[:, 0]
    innovation = np.sqrt(1 - AR_COEFFICIENT ** 2)
    for t in range(1, seq_len):
        x[:, t] = AR_COEFFICIENT * x[:, t - 1] + innovation * noise[:, t]
    return x


def moving_average(x: np.ndarray) -> np.ndarray:
    memory = np.empty_like(x)
    memory[:, 0] = MEMORY * x[:, 0]
    for t in range(1, x.shape[1]):
        memory[:, t] = (1 - MEMORY) * memory[:, t - 1] + MEMORY * x[:, t]
    return memory


def synthetic_sequences(name: str, count: int, seq_len: int, seed: int) -> Sequences:
    """``count`` sequences of ``seq_len`` frames for model ``name`` (the same for the same seed)."""
    spec = get_spec(name)
    rng = np.random.default_rng([seed, MODEL_NAMES.index(name)])
    inputs = smooth_noise(rng, count, seq_len, spec.input_size)
    memory = moving_average(inputs) / np.sqrt(MEMORY / (2 - MEMORY))  # back to ~unit variance
    first = rng.standard_normal((spec.input_size, HIDDEN)).astype(np.float32) * (1.5 / np.sqrt(spec.input_size))
    hidden = np.tanh(memory @ first)
    outputs = 2 if name == "EmotionRecognizer" else spec.output_size
    second = rng.standard_normal((HIDDEN, outputs)).astype(np.float32) * (2.0 / np.sqrt(HIDDEN))
    z = hidden @ second
    if name == "EmotionRecognizer":
        targets = encode_emotion(np.tanh(z[..., 0]), np.tanh(z[..., 1]))
    elif spec.loss == "bce":
        targets = 1 / (1 + np.exp(-SHARPNESS * z))
    elif spec.output_activation == "sigmoid":
        targets = 1 / (1 + np.exp(-z))
    elif spec.output_activation == "softmax":
        z = SHARPNESS * z
        exp = np.exp(z - z.max(axis=-1, keepdims=True))
        targets = exp / exp.sum(axis=-1, keepdims=True)
    else:
        targets = np.tanh(z)
    return Sequences(inputs, targets.astype(np.float32), np.arange(count))
