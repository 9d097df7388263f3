"""A float64 NumPy evaluation of a layer list (the RTNeural semantics, no PyTorch, no compiler).

Two uses: the GuitarML converter checks the RTNeural JSON it wrote against this evaluation of the
weights it read (``toolchain.guitarml``), and ``kelly-tc check MODEL.json`` measures with it how far
float32 rounding moves this model on the file's own reference input (``toolchain.check_json``).
Plain formulas, one per layer kind, written from RTNeural's definitions (gate orders in
``toolchain.gates``): it shares no code with the Numba engine it is compared with.
"""
from __future__ import annotations

import numpy as np

from toolchain.layers import GRU, LSTM, Activation, Add, BatchNorm, Concat, Conv1D, Dense, Model, Mul, PRelu, Slice, Sub


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {"": lambda x: x, "tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), "sigmoid": _sigmoid,
               "softmax": _softmax, "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))}


def _w(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


def _sequence(layer, x: np.ndarray) -> np.ndarray:
    """``x [frames, in]`` through ``layer`` from zero state, as ``[frames, out]``."""
    if isinstance(layer, Dense):
        return ACTIVATIONS[layer.activation](x @ _w(layer.weight).T + _w(layer.bias))
    if isinstance(layer, LSTM):  # gate blocks i, f, c, o; one bias (input + recurrent)
        hidden = layer.hidden_size
        h, c, out = np.zeros(hidden), np.zeros(hidden), np.empty((len(x), hidden))
        wi, wh, b = _w(layer.weight_ih), _w(layer.weight_hh), _w(layer.bias)
        for t, frame in enumerate(x):
            z = wi @ frame + wh @ h + b
            i, f, g, o = _sigmoid(z[:hidden]), _sigmoid(z[hidden:2 * hidden]), np.tanh(z[2 * hidden:3 * hidden]), _sigmoid(z[3 * hidden:])
            c = f * c + i * g
            h = out[t] = o * np.tanh(c)
        return out
    if isinstance(layer, GRU):  # gate blocks z, r, h; the reset gate scales the recurrent candidate (linear_before_reset)
        hidden = layer.hidden_size
        h, out = np.zeros(hidden), np.empty((len(x), hidden))
        wi, wh, bi, bh = _w(layer.weight_ih), _w(layer.weight_hh), _w(layer.bias_ih), _w(layer.bias_hh)
        for t, frame in enumerate(x):
            a, r_ = wi @ frame + bi, wh @ h + bh
            z = _sigmoid(a[:hidden] + r_[:hidden])
            r = _sigmoid(a[hidden:2 * hidden] + r_[hidden:2 * hidden])
            n = np.tanh(a[2 * hidden:] + r * r_[2 * hidden:])
            h = out[t] = (1.0 - z) * n + z * h
        return out
    if isinstance(layer, Conv1D):
        weight, span = _w(layer.weight), (layer.kernel_size - 1) * layer.dilation
        padded = np.concatenate([np.zeros((span, x.shape[1])), x])
        group_in, group_out = layer.in_size // layer.groups, layer.out_size // layer.groups
        out = np.zeros((len(x), layer.out_size))
        for k in range(layer.kernel_size):
            window = padded[k * layer.dilation: k * layer.dilation + len(x)]
            for g in range(layer.groups):
                out[:, g * group_out:(g + 1) * group_out] += window[:, g * group_in:(g + 1) * group_in] @ weight[g * group_out:(g + 1) * group_out, :, k].T
        return ACTIVATIONS[layer.activation](out + _w(layer.bias))
    if isinstance(layer, BatchNorm):
        return _w(layer.gamma) * (x - _w(layer.mean)) / np.sqrt(_w(layer.var) + layer.epsilon) + _w(layer.beta)
    if isinstance(layer, PRelu):
        return np.where(x >= 0, x, _w(layer.alpha) * x)
    if isinstance(layer, Activation):
        return ACTIVATIONS[layer.activation](x)
    raise NotImplementedError(f"no float64 evaluation of {layer.kind} layers")


def _merge(layer, inputs: list[np.ndarray]) -> np.ndarray:
    if isinstance(layer, Add):
        return np.sum(inputs, axis=0)
    if isinstance(layer, Sub):
        return inputs[0] - inputs[1]
    if isinstance(layer, Mul):
        return inputs[0] * inputs[1]
    if isinstance(layer, Concat):
        return np.concatenate(inputs, axis=1)
    if isinstance(layer, Slice):
        return inputs[0][:, layer.start:layer.start + layer.size]
    raise NotImplementedError(f"no float64 evaluation of {layer.kind} layers")


def evaluate(model: Model, frames: np.ndarray) -> np.ndarray:
    """``frames [F, in]`` through ``model`` from reset, in float64: ``[F, out]``."""
    values = [np.asarray(frames, dtype=np.float64)]
    for layer, inputs in zip(model.layers, model.wiring()):
        sources = [values[i] for i in inputs]
        merge = isinstance(layer, (Add, Sub, Mul, Concat, Slice))
        values.append(_merge(layer, sources) if merge else _sequence(layer, sources[0]))
    return values[-1]
