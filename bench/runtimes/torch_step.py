"""PyTorch eager, one step per call with the state carried: ``LSTMCell``/``GRUCell``, ``F.linear``,
``F.conv1d`` over a kept window, ``F.batch_norm``, ``F.prelu``; one thread, no autograd."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.runtimes import Runner, layer_chain
from toolchain.gates import GRU_CANONICAL, GRU_TORCH, reorder_gates
from toolchain.layers import GRU, LSTM, Activation, BatchNorm, Conv1D, Dense, Model, PRelu

ACTIVATIONS = {"": lambda x: x, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
               "softmax": lambda x: torch.softmax(x, dim=-1), "elu": F.elu}


def tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def layer_step(layer, state: dict):
    if isinstance(layer, Dense):
        weight, bias, act = tensor(layer.weight), tensor(layer.bias), ACTIVATIONS[layer.activation]
        return lambda x: act(F.linear(x, weight, bias))
    if isinstance(layer, LSTM):  # PyTorch's i, f, g, o is RTNeural's i, f, c, o: no reorder
        cell = torch.nn.LSTMCell(layer.in_size, layer.hidden_size).requires_grad_(False)
        cell.weight_ih.copy_(tensor(layer.weight_ih)), cell.weight_hh.copy_(tensor(layer.weight_hh))
        cell.bias_ih.copy_(tensor(layer.bias)), cell.bias_hh.zero_()

        def lstm(x):
            state["h"], state["c"] = cell(x, (state["h"], state["c"]))
            return state["h"]
        state["init"] = lambda: state.update(h=torch.zeros(1, layer.hidden_size), c=torch.zeros(1, layer.hidden_size))
        return lstm
    if isinstance(layer, GRU):  # PyTorch orders the gate blocks r, z, n
        cell = torch.nn.GRUCell(layer.in_size, layer.hidden_size).requires_grad_(False)
        for name, array in (("weight_ih", layer.weight_ih), ("weight_hh", layer.weight_hh),
                            ("bias_ih", layer.bias_ih), ("bias_hh", layer.bias_hh)):
            getattr(cell, name).copy_(tensor(reorder_gates(array, GRU_CANONICAL, GRU_TORCH)))

        def gru(x):
            state["h"] = cell(x, state["h"])
            return state["h"]
        state["init"] = lambda: state.update(h=torch.zeros(1, layer.hidden_size))
        return gru
    if isinstance(layer, Conv1D):
        weight, bias, act = tensor(layer.weight), tensor(layer.bias), ACTIVATIONS[layer.activation]
        span = (layer.kernel_size - 1) * layer.dilation + 1

        def conv(x):  # window [1, in, span], oldest frame first; the last tap meets the current frame
            state["window"] = torch.cat([state["window"][:, :, 1:], x[:, :, None]], dim=2)
            return act(F.conv1d(state["window"], weight, bias, dilation=layer.dilation, groups=layer.groups)[:, :, 0])
        state["init"] = lambda: state.update(window=torch.zeros(1, layer.in_size, span))
        return conv
    if isinstance(layer, BatchNorm):
        mean, var, gamma, beta = (tensor(a) for a in (layer.mean, layer.var, layer.gamma, layer.beta))
        return lambda x: F.batch_norm(x, mean, var, gamma, beta, training=False, eps=layer.epsilon)
    if isinstance(layer, PRelu):
        alpha = tensor(layer.alpha)
        return lambda x: F.prelu(x, alpha)
    if isinstance(layer, Activation):
        return ACTIVATIONS[layer.activation]
    raise NotImplementedError(f"no torch step for {layer.kind}")


def make_step(model: Model) -> Runner:
    torch.set_num_threads(1)
    steps, reset = layer_chain(model, layer_step)

    @torch.inference_mode()
    def step(frame):
        x = torch.from_numpy(frame)[None]
        for layer in steps:
            x = layer(x)
        return x[0].numpy()

    return Runner(step, reset)
