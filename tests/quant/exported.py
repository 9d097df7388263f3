"""Torch models exported with BOTH exporters, sized so that the dynamo exporter keeps its weight
subgraphs (needs torch; built once per session by the ``exported`` fixture of ``conftest.py``).

onnxscript's optimizer folds a constant subgraph only while its inputs have at most 8192 elements
(``DEFAULT_CONSTANT_FOLD_INPUT_SIZE_LIMIT``). Above that, a dynamo-exported LSTM/GRU reads
``W = Unsqueeze(Concat(Slice(weight_ih), ...))`` -- torch's gate order shuffled into ONNX's at run
time -- instead of an initializer: the pattern of every Kelly recurrent layer. So here one recurrent
matrix of each kind is above the limit (LSTM ``R [188, 47]``, GRU ``R [159, 53]``) and the other
below it, and the dense and conv weights are near it. Sizes stay small and odd otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from tests.fixtures.export import export_dynamo, export_legacy

TIME_STEPS = 16  # the dynamo exporter fixes it into the model
BATCH_FIRST = {0: "batch", 1: "time"}
FRAMES = {0: "time"}
EXPORTERS = ("legacy", "dynamo")


class LinearStack(nn.Module):
    """Linear -> relu -> Linear -> tanh -> Linear on [batch, time, 13] (MatMul of a transposed weight)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(13, 101), nn.ReLU(), nn.Linear(101, 97), nn.Tanh(), nn.Linear(97, 5))

    def forward(self, x):
        return self.layers(x)


class LinearFrames(LinearStack):
    """The same stack on a 2-D [frames, 13] input: Gemm with transB=1."""


class Recurrent(nn.Module):
    """Linear -> tanh -> LSTM/GRU (batch first) -> Linear."""

    def __init__(self, kind: type[nn.Module], features: int, hidden: int):
        super().__init__()
        self.inner = nn.Linear(13, features)
        self.rnn = kind(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 5)

    def forward(self, x):
        return self.head(self.rnn(torch.tanh(self.inner(x)))[0])


class CausalConv(nn.Module):
    """Causal Conv1d (left pad K-1) -> relu -> causal Conv1d -> tanh -> 1x1 Conv1d on [batch, time, 6]."""

    def __init__(self):
        super().__init__()
        self.first, self.second, self.last = nn.Conv1d(6, 43, 3), nn.Conv1d(43, 47, 5), nn.Conv1d(47, 5, 1)

    def forward(self, x):
        x = torch.relu(self.first(functional.pad(x.transpose(1, 2), (2, 0))))
        x = torch.tanh(self.second(functional.pad(x, (4, 0))))
        return self.last(x).transpose(1, 2)


#: Kind -> (builder, input features, dynamic axes of the input).
KINDS = {
    "linear_stack": (LinearStack, 13, BATCH_FIRST),
    "linear_gemm": (LinearFrames, 13, FRAMES),
    "lstm": (lambda: Recurrent(nn.LSTM, 45, 47), 13, BATCH_FIRST),
    "gru": (lambda: Recurrent(nn.GRU, 41, 53), 13, BATCH_FIRST),
    "causal_conv": (CausalConv, 6, BATCH_FIRST),
}
IDS = tuple(f"{kind}-{exporter}" for kind in KINDS for exporter in EXPORTERS)


@dataclass(frozen=True)
class Exported:
    kind: str
    exporter: str
    onnx_path: Path

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.exporter}"


def export_all(folder: Path) -> dict[str, Exported]:
    """Every kind with both exporters, seeded, as ``{id: Exported}``."""
    exported = {}
    for index, (kind, (build, features, axes)) in enumerate(KINDS.items()):
        torch.manual_seed(600 + index)
        model = build().eval()
        shape = (TIME_STEPS, features) if axes is FRAMES else (1, TIME_STEPS, features)
        example = torch.from_numpy(np.random.default_rng(index).uniform(-1, 1, shape).astype(np.float32))
        for exporter in EXPORTERS:
            path = folder / f"{kind}-{exporter}.onnx"
            if exporter == "dynamo":
                export_dynamo(model, example, path)
            else:
                export_legacy(model, example, path, axes)
            exported[f"{kind}-{exporter}"] = Exported(kind, exporter, path)
    return exported
