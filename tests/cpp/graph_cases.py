"""Hand-built graph models (residual, gated, concat, sub, in_skip) for the graph-header tests, and an
evaluator independent of the fused engine's graph program.

Every pattern of issue 11 built straight from ``toolchain.layers`` records with wiring, random weights
and odd sizes. ``layerwise_outputs`` evaluates a graph node by node over the WHOLE sequence: each layer
as a one-layer sequential model through the reference engine's per-layer kernels (the code RTNeural's
own test data verifies), each merge as a float32 NumPy expression over all frames. A graph of per-frame
causal nodes computes the same frame by frame, so this checks the generated ``forward()`` wiring without
trusting the engine's graph router (which the header is also compared with, separately).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from tests.cpp.cases import batchnorm, conv1d, dense, gru, lstm
from toolchain.layers import Activation, Add, Concat, Merge, Model, Mul, PRelu, Slice, Sub, f32


def _named(layer, name: str, *inputs: int):
    layer.source, layer.inputs = name, tuple(inputs)
    return layer


def residual_dense(rng) -> Model:
    """x -> dense(tanh) -> dense, added back to x, then a head (the issue's "dense net with a residual add")."""
    return Model(7, [
        _named(dense(rng, 7, 13, "tanh"), "hidden", 0),
        _named(dense(rng, 13, 7), "project", 1),
        _named(Add(), "residual", 0, 2),
        _named(dense(rng, 7, 3, "elu"), "head", 3),
    ])


def tcn(rng) -> Model:
    """Two TCN blocks (conv -> PReLU -> dilated conv, plus a 1x1 residual conv), as RTNeural's microtcn test."""
    layers, x, channels_in = [], 0, 1
    for block, (channels, dilation) in enumerate([(5, 1), (5, 2)]):
        base = len(layers)
        layers += [
            _named(conv1d(rng, channels_in, channels, 3, dilation=dilation), f"conv_a{block}", x),
            _named(PRelu(f32(rng.uniform(0.05, 0.5, channels)), size=channels), f"prelu{block}", base + 1),
            _named(conv1d(rng, channels, channels, 3, dilation=2 * dilation, activation="relu"), f"conv_b{block}", base + 2),
            _named(conv1d(rng, channels_in, channels, 1), f"res{block}", x),
            _named(Add(), f"out{block}", base + 3, base + 4),
        ]
        x, channels_in = base + 5, channels
    layers.append(_named(batchnorm(rng, 5), "norm", x))
    layers.append(_named(dense(rng, 5, 1), "mix", x + 1))
    return Model(1, layers)


def wavenet(rng, channels: int = 5, dilations=(1, 2, 4)) -> Model:
    """A 3-layer gated WaveNet: input 1x1 conv; per layer a dilated conv to 2C, the two halves through
    tanh and sigmoid, their product (the gate), a 1x1 residual conv added to the layer's input; the
    gates summed (skip sum) and concatenated, then a dense head."""
    layers = [_named(conv1d(rng, 1, channels, 1), "input_conv", 0)]
    x, gates = 1, []

    def add(layer, name, *inputs):
        layers.append(_named(layer, name, *inputs))
        return len(layers)

    for index, dilation in enumerate(dilations):
        conv = add(conv1d(rng, channels, 2 * channels, 3, dilation=dilation), f"dilated{index}", x)
        a = add(Slice(start=0, size=channels), f"filter{index}", conv)
        b = add(Slice(start=channels, size=channels), f"gate_in{index}", conv)
        tanh = add(Activation(activation="tanh", size=channels), f"tanh{index}", a)
        sigmoid = add(Activation(activation="sigmoid", size=channels), f"sigmoid{index}", b)
        gate = add(Mul(), f"gate{index}", tanh, sigmoid)
        gates.append(gate)
        if index < len(dilations) - 1:  # the last layer's residual would feed nothing
            residual = add(conv1d(rng, channels, channels, 1), f"residual{index}", gate)
            x = add(Add(), f"layer{index}", x, residual)
    skips = add(Add(), "skips", *gates)
    both = add(Concat(), "both", skips, gates[-1])
    add(dense(rng, 2 * channels, 1), "head", both)
    return Model(1, layers)


def branches(rng) -> Model:
    """An LSTM and a GRU side by side on the input, concatenated, minus a dense of the input, softmax head."""
    return Model(3, [
        _named(lstm(rng, 3, 7), "lstm", 0),
        _named(gru(rng, 3, 5), "gru", 0),
        _named(Concat(), "joined", 1, 2),
        _named(dense(rng, 3, 12, "sigmoid"), "bypass", 0),
        _named(Sub(), "difference", 3, 4),
        _named(dense(rng, 12, 4, "softmax"), "head", 5),
    ])


def in_skip(rng, recurrent: str = "lstm", inputs: int = 1) -> Model:
    """The SimpleRNN of Automated-GuitarAmpModelling / AIDA-X with skip=1: rnn -> dense, plus input feature 0."""
    rnn = lstm(rng, inputs, 9) if recurrent == "lstm" else gru(rng, inputs, 9)
    return Model(inputs, [rnn, dense(rng, 9, 1), _named(Slice(start=0, size=1), "skip", 0), _named(Add(), "out", 2, 3)])


def graph_models(rng) -> dict[str, Model]:
    return {
        "residual_dense": residual_dense(rng),
        "tcn": tcn(rng),
        "wavenet": wavenet(rng),
        "branches": branches(rng),
    }


def in_skip_models(rng) -> dict[str, Model]:
    return {
        "in_skip_lstm": in_skip(rng, "lstm", 1),
        "in_skip_gru_knob": in_skip(rng, "gru", 2),
    }


# ------------------------------------------------------------------------------- layer-wise evaluator
MERGES = {
    "add": lambda values, layer: functools.reduce(np.add, values),  # left to right, as the header sums
    "sub": lambda values, layer: values[0] - values[1],
    "mul": lambda values, layer: values[0] * values[1],
    "concat": lambda values, layer: np.concatenate(values, axis=1),
    "slice": lambda values, layer: values[0][:, layer.start:layer.start + layer.size],
}


def layerwise_outputs(model: Model, frames: np.ndarray) -> np.ndarray:
    """The outputs [T, out] of ``model`` on ``frames`` [T, in], evaluated node by node over all frames."""
    from reference_engine.model import Engine

    model.validate()
    values = [f32(frames)]
    for layer, wiring in zip(model.layers, model.wiring()):
        inputs = [values[v] for v in wiring]
        if isinstance(layer, Merge):
            values.append(f32(MERGES[layer.kind](inputs, layer)))
            continue
        engine = Engine(Model(layer.in_size, [dataclasses.replace(layer, inputs=())]).validate())
        engine.reset()
        values.append(f32(engine.run(inputs[0])))
    return values[-1]
