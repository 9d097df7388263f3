"""A plain NumPy implementation (float32, one frame per call, state in arrays): what one would write
without a compiler. Every RTNeural layer kind."""
from __future__ import annotations

import numpy as np

from bench.runtimes import Runner, layer_chain
from toolchain.layers import GRU, LSTM, Activation, BatchNorm, Conv1D, Dense, Model, PRelu


def sigmoid(x):
    return np.float32(1) / (np.float32(1) + np.exp(-x))


ACTIVATIONS = {"": lambda x: x, "tanh": np.tanh, "relu": lambda x: np.maximum(x, np.float32(0)), "sigmoid": sigmoid,
               "softmax": lambda x: np.exp(x) / np.exp(x).sum(),
               "elu": lambda x: np.where(x > 0, x, np.exp(x) - np.float32(1))}


def layer_step(layer, state: dict):
    if isinstance(layer, Dense):
        act = ACTIVATIONS[layer.activation]
        return lambda x: act(layer.weight @ x + layer.bias)
    if isinstance(layer, LSTM):
        hidden = layer.hidden_size

        def lstm(x):
            z = layer.weight_ih @ x + layer.weight_hh @ state["h"] + layer.bias
            i, f, o = sigmoid(z[:hidden]), sigmoid(z[hidden:2 * hidden]), sigmoid(z[3 * hidden:])
            state["c"] = f * state["c"] + i * np.tanh(z[2 * hidden:3 * hidden])
            state["h"] = o * np.tanh(state["c"])
            return state["h"]
        state["init"] = lambda: state.update(h=np.zeros(hidden, np.float32), c=np.zeros(hidden, np.float32))
        return lstm
    if isinstance(layer, GRU):
        hidden = layer.hidden_size

        def gru(x):
            a = layer.weight_ih @ x + layer.bias_ih
            b = layer.weight_hh @ state["h"] + layer.bias_hh
            z = sigmoid(a[:hidden] + b[:hidden])
            r = sigmoid(a[hidden:2 * hidden] + b[hidden:2 * hidden])
            n = np.tanh(a[2 * hidden:] + r * b[2 * hidden:])
            state["h"] = (np.float32(1) - z) * n + z * state["h"]
            return state["h"]
        state["init"] = lambda: state.update(h=np.zeros(hidden, np.float32))
        return gru
    if isinstance(layer, Conv1D):
        span = (layer.kernel_size - 1) * layer.dilation + 1
        taps = np.arange(layer.kernel_size) * layer.dilation  # window rows, oldest first; the last is now
        act, groups = ACTIVATIONS[layer.activation], layer.groups
        group_in, group_out = layer.in_size // groups, layer.out_size // groups

        def conv(x):
            state["window"][:-1] = state["window"][1:]
            state["window"][-1] = x
            picked = state["window"][taps]  # [K, in]
            y = np.empty(layer.out_size, np.float32)
            for g in range(groups):
                patch = picked[:, g * group_in:(g + 1) * group_in]  # [K, in_g]
                weight = layer.weight[g * group_out:(g + 1) * group_out]  # [out_g, in_g, K]
                y[g * group_out:(g + 1) * group_out] = np.einsum("oik,ki->o", weight, patch)
            return act(y + layer.bias)
        state["init"] = lambda: state.update(window=np.zeros((span, layer.in_size), np.float32))
        return conv
    if isinstance(layer, BatchNorm):
        scale = layer.gamma / np.sqrt(layer.var + np.float32(layer.epsilon))
        return lambda x: scale * (x - layer.mean) + layer.beta
    if isinstance(layer, PRelu):
        return lambda x: np.where(x >= 0, x, layer.alpha * x)
    if isinstance(layer, Activation):
        return ACTIVATIONS[layer.activation]
    raise NotImplementedError(f"no NumPy step for {layer.kind}")


def make_step(model: Model) -> Runner:
    steps, reset = layer_chain(model, layer_step)

    def step(frame):
        for layer in steps:
            frame = layer(frame)
        return frame

    return Runner(step, reset)
