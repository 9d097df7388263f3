"""An independent float64 NumPy implementation of RTNeural's runtime, written from shared/rtneural-format.md.

It reads the RTNeural JSON document itself (``[in][out]`` kernels, ``[K][in/groups][out]`` conv taps,
``[[alpha]]`` prelu, ...), not the engine's packed buffers or the canonical layer records, so a layout
mistake in the engine's packing cannot be repeated here. Deliberately slow and plain.
"""
from __future__ import annotations

from collections import deque

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def apply_activation(name: str, x: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.where(x > 0, x, 0.0)  # std::max(0, x): NaN -> 0
    if name == "sigmoid":
        return sigmoid(x)
    if name == "softmax":  # RTNeural does not subtract the maximum
        return np.exp(x) / np.sum(np.exp(x))
    if name == "elu":
        return np.where(x > 0, x, np.exp(x) - 1.0)
    assert name == "", name
    return x


def layer_step(entry: dict, in_size: int):
    """A function ``x [in] -> y [out]`` for one JSON layer entry, keeping its own state."""
    kind, weights = entry["type"], [np.asarray(w, dtype=np.float64) for w in entry["weights"]]
    name = entry.get("activation", "")
    if kind in ("dense", "time-distributed-dense"):
        kernel = weights[0]  # [in][out]
        bias = weights[1] if len(weights) > 1 else np.zeros(kernel.shape[1])
        return lambda x: apply_activation(name, x @ kernel + bias)
    if kind == "lstm":
        w, u, b = weights  # [in][4H], [H][4H], [4H]; blocks i, f, c, o
        hidden = u.shape[0]
        state = {"h": np.zeros(hidden), "c": np.zeros(hidden)}

        def lstm(x):
            z = x @ w + state["h"] @ u + b
            i, f, g, o = (z[k * hidden:(k + 1) * hidden] for k in range(4))
            state["c"] = sigmoid(f) * state["c"] + sigmoid(i) * np.tanh(g)
            state["h"] = sigmoid(o) * np.tanh(state["c"])
            return state["h"]
        return lstm
    if kind == "gru":
        w, u, b = weights  # [in][3H], [H][3H], [2][3H]; blocks z, r, h
        hidden = u.shape[0]
        state = {"h": np.zeros(hidden)}

        def gru(x):
            a, c = x @ w + b[0], state["h"] @ u + b[1]
            z = sigmoid(a[:hidden] + c[:hidden])
            r = sigmoid(a[hidden:2 * hidden] + c[hidden:2 * hidden])
            n = np.tanh(a[2 * hidden:] + r * c[2 * hidden:])
            state["h"] = (1 - z) * n + z * state["h"]
            return state["h"]
        return gru
    if kind == "conv1d":
        kernel, bias = weights  # [K][in/groups][out], [out]
        taps, group_in, out = kernel.shape
        dilation = int(np.ravel(entry["dilation"])[0])  # [d] or d
        group_out = out // entry.get("groups", 1)
        past = deque([np.zeros(in_size)] * ((taps - 1) * dilation + 1), maxlen=(taps - 1) * dilation + 1)

        def conv(x):
            past.append(x)  # past[-1] is the current frame, past[-1 - j] the frame j back
            y = bias.copy()
            for o in range(out):
                channels = slice(o // group_out * group_in, (o // group_out + 1) * group_in)
                for k in range(taps):
                    y[o] += past[-1 - (taps - 1 - k) * dilation][channels] @ kernel[k, :, o]
            return apply_activation(name, y)
        return conv
    if kind == "batchnorm":
        gamma, beta, mean, var = weights
        return lambda x: gamma * (x - mean) / np.sqrt(var + entry["epsilon"]) + beta
    if kind == "prelu":
        alpha = np.broadcast_to(weights[0][0], (in_size,))
        return lambda x: np.where(x >= 0, x, alpha * x)
    if kind == "activation":
        return lambda x: apply_activation(name, x)
    raise AssertionError(f"no reference for {kind}")


def reference_run(document: dict, frames: np.ndarray) -> np.ndarray:
    """Run ``frames [T, in]`` through a fresh (reset) model, frame by frame, in float64."""
    size, steps = document["in_shape"][-1], []
    for entry in document["layers"]:
        steps.append(layer_step(entry, size))
        size = entry["shape"][-1]
    outputs = []
    for frame in np.asarray(frames, dtype=np.float64):
        for step in steps:
            frame = step(frame)
        outputs.append(frame)
    return np.array(outputs)
