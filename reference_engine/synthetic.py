"""Layers and models with seeded random weights, for tests and benchmarks (never for shipped models).

Weights are uniform in ``±1/sqrt(fan_in)`` (PyTorch's default initialisation), so activations stay in
a realistic range whatever the depth; batchnorm variances are positive and prelu alphas small.
"""
from __future__ import annotations

import numpy as np

from toolchain.layers import GRU, LSTM, Activation, BatchNorm, Conv1D, Dense, Layer, Model, PRelu


def _uniform(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def dense(rng, inputs: int, outputs: int, activation: str = "") -> Dense:
    return Dense(_uniform(rng, (outputs, inputs), inputs), _uniform(rng, (outputs,), inputs), activation=activation)


def lstm(rng, inputs: int, hidden: int) -> LSTM:
    return LSTM(_uniform(rng, (4 * hidden, inputs), hidden), _uniform(rng, (4 * hidden, hidden), hidden),
                _uniform(rng, (4 * hidden,), hidden))


def gru(rng, inputs: int, hidden: int) -> GRU:
    return GRU(_uniform(rng, (3 * hidden, inputs), hidden), _uniform(rng, (3 * hidden, hidden), hidden),
               _uniform(rng, (3 * hidden,), hidden), _uniform(rng, (3 * hidden,), hidden))


def conv1d(rng, inputs: int, outputs: int, kernel_size: int, dilation: int = 1, groups: int = 1,
           activation: str = "") -> Conv1D:
    fan_in = inputs // groups * kernel_size
    return Conv1D(_uniform(rng, (outputs, inputs // groups, kernel_size), fan_in), _uniform(rng, (outputs,), fan_in),
                  dilation=dilation, groups=groups, activation=activation)


def batchnorm(rng, size: int, epsilon: float = 1e-3) -> BatchNorm:
    return BatchNorm(rng.uniform(0.5, 1.5, size).astype(np.float32), rng.uniform(-0.5, 0.5, size).astype(np.float32),
                     rng.uniform(-0.5, 0.5, size).astype(np.float32), rng.uniform(0.2, 2.0, size).astype(np.float32),
                     epsilon=epsilon)


def prelu(rng, size: int, shared: bool = False) -> PRelu:
    return PRelu(rng.uniform(0.05, 0.4, 1 if shared else size).astype(np.float32), size=size)


def activation(size: int, name: str) -> Activation:
    return Activation(activation=name, size=size)


def model(input_size: int, layers: list[Layer], **metadata) -> Model:
    return Model(input_size, layers, dict(metadata)).validate()


def dense_stack(rng, sizes: list[int], activation: str = "relu", recurrent: dict[int, str] | None = None) -> Model:
    """A stack through ``sizes`` (``[in, h1, ..., out]``); ``recurrent[i] = "lstm"`` makes step ``i`` an LSTM.

    Hidden dense layers use ``activation``; the last layer is linear.
    """
    recurrent = recurrent or {}
    layers: list[Layer] = []
    for step, (inputs, outputs) in enumerate(zip(sizes[:-1], sizes[1:])):
        kind = recurrent.get(step)
        last = step == len(sizes) - 2
        if kind == "lstm":
            layers.append(lstm(rng, inputs, outputs))
        elif kind == "gru":
            layers.append(gru(rng, inputs, outputs))
        else:
            layers.append(dense(rng, inputs, outputs, "" if last else activation))
    return model(sizes[0], layers)


#: Issue 3's stacks, used only if the Kelly spec module is absent: (input, [(kind, size, activation), ...]).
FALLBACK_KELLY = {
    "EmotionRecognizer": (128, [("dense", 512, "relu"), ("dense", 256, "relu"), ("lstm", 128, ""), ("dense", 64, "tanh")]),
    "MelodyTransformer": (64, [("dense", 256, "relu"), ("lstm", 256, ""), ("dense", 256, "relu"), ("dense", 128, "sigmoid")]),
    "HarmonyPredictor": (128, [("dense", 256, "relu"), ("dense", 128, "relu"), ("dense", 64, "softmax")]),
    "DynamicsEngine": (32, [("dense", 128, "relu"), ("dense", 64, "relu"), ("dense", 16, "sigmoid")]),
    "GroovePredictor": (64, [("dense", 128, "relu"), ("dense", 64, "relu"), ("dense", 32, "tanh")]),
}


def kelly_stacks() -> tuple[dict[str, tuple[int, list[tuple[str, int, str]]]], str]:
    """The five Kelly stacks and where they came from."""
    try:
        from toolchain.kelly.spec import SPECS
    except ImportError:
        return FALLBACK_KELLY, "issue 3 stacks (toolchain/kelly/spec.py absent)"
    stacks = {spec.name: (spec.input_size, [(layer.kind, layer.size, layer.activation) for layer in spec.layers])
              for spec in SPECS}
    return stacks, "toolchain/kelly/spec.py"


def build_stack(rng: np.random.Generator, input_size: int, layers: list[tuple[str, int, str]]) -> Model:
    """A stack from (kind, size, activation) triples: the Kelly shapes for benchmarks and the soak run."""
    built, size = [], input_size
    for kind, out, activation_name in layers:
        if kind == "dense":
            built.append(dense(rng, size, out, activation_name))
        elif kind in ("lstm", "gru"):
            built.append((lstm if kind == "lstm" else gru)(rng, size, out))
            if activation_name:
                built.append(activation(out, activation_name))
        else:
            raise ValueError(f"no benchmark builder for {kind!r}")
        size = out
    return model(input_size, built)


def wavenet(rng, input_size: int = 1, channels: int = 3, dilations: tuple[int, ...] = (1, 2, 4), kernel_size: int = 3) -> Model:
    """A gated WaveNet-style graph (PedalNetRT's shape) exercising every merge kind: an input 1x1 conv; per
    layer a dilated causal conv to 2C, ``slice`` halves, ``tanh(a) * sigmoid(b)`` (``mul``), a 1x1 residual
    conv ``add``-ed to the layer input; the gated outputs ``concat``-enated into a dense head; the head
    minus its input's first feature (``sub``) plus an input skip."""
    layers: list[Layer] = [conv1d(rng, input_size, channels, 1)]
    x, skips = 1, []

    def append(layer: Layer, *inputs: int) -> int:
        layer.inputs = inputs
        layers.append(layer)
        return len(layers)

    from toolchain.layers import Add, Concat, Mul, Slice, Sub

    for index, dilation in enumerate(dilations):
        both = append(conv1d(rng, channels, 2 * channels, kernel_size, dilation), x)
        a = append(Slice(start=0, size=channels), both)
        b = append(Slice(start=channels, size=channels), both)
        gate = append(Mul(), append(activation(channels, "tanh"), a), append(activation(channels, "sigmoid"), b))
        skips.append(gate)
        if index < len(dilations) - 1:  # the last residual would be a dead branch
            x = append(Add(), x, append(conv1d(rng, channels, channels, 1), gate))
    mixed = append(Concat(), *skips)
    head = append(dense(rng, channels * len(dilations), 1), mixed)
    difference = append(Sub(), head, append(Slice(start=0, size=1), mixed))
    append(Add(), difference, append(Slice(start=0, size=1), 0), head)
    return model(input_size, layers)
