"""The five Kelly models as PyTorch modules, built from ``toolchain.kelly.spec`` (needs torch).

A model maps ``[batch, time, in]`` to ``[batch, time, out]``: dense layers act per frame, recurrent
layers run over time from zero state (``batch_first``), exactly what RTNeural's streaming ``forward``
computes one frame after another after ``reset()``. The module is one ``nn.Sequential`` of
Linear / activation / recurrent blocks, the shape the ONNX exporter and our converter expect.
"""
from __future__ import annotations

import torch
from torch import nn

from toolchain.gates import GRU_CANONICAL, GRU_TORCH, LSTM_CANONICAL, LSTM_TORCH, reorder_gates
from toolchain.kelly.spec import ModelSpec, get_spec
from toolchain.layers import GRU, LSTM, Dense, Model

ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "elu": nn.ELU,
                      "softmax": lambda: nn.Softmax(dim=-1)}
ACTIVATION_NAMES = {nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.ELU: "elu", nn.Softmax: "softmax"}


class Recurrent(nn.Module):
    """An ``nn.LSTM`` / ``nn.GRU`` that returns only its output sequence (so it fits in a Sequential).

    ``state`` (a dict the caller owns) lets a frame-by-frame caller carry the state between calls.
    """

    def __init__(self, kind: str, in_size: int, hidden_size: int):
        super().__init__()
        cls = nn.LSTM if kind == "lstm" else nn.GRU
        self.rnn = cls(in_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


class KellyModel(nn.Module):
    """One Kelly model. ``forward`` applies the output activation; ``logits`` stops just before it."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        blocks: list[nn.Module] = []
        size = spec.input_size
        for layer in spec.layers:
            if layer.kind == "dense":
                blocks.append(nn.Linear(size, layer.size))
            else:
                blocks.append(Recurrent(layer.kind, size, layer.size))
            if layer.activation:
                blocks.append(ACTIVATION_MODULES[layer.activation]())
            size = layer.size
        self.body = nn.Sequential(*blocks)

    @property
    def name(self) -> str:
        return self.spec.name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The output before the final activation (losses on logits are numerically stable)."""
        last = len(self.body) - 1 if self.spec.output_activation else len(self.body)
        for block in list(self.body)[:last]:
            x = block(x)
        return x

    def stream(self, frames: torch.Tensor) -> torch.Tensor:
        """Run ``[T, in]`` one frame per step with the recurrent state carried between steps.

        Computes what RTNeural's ``forward`` does per call; tests compare it with ``forward``.
        """
        states: dict[int, object] = {}
        outputs = []
        for frame in frames:
            x = frame.reshape(1, 1, -1)
            for index, block in enumerate(self.body):
                if isinstance(block, Recurrent):
                    x, states[index] = block.rnn(x, states.get(index))
                else:
                    x = block(x)
            outputs.append(x.reshape(-1))
        return torch.stack(outputs)


def build_model(name: str, seed: int | None = None) -> KellyModel:
    """The untrained model ``name``; ``seed`` makes its initial weights reproducible."""
    spec = get_spec(name)
    if seed is None:
        return KellyModel(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return KellyModel(spec)


def torch_parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _array(tensor: torch.Tensor):
    return tensor.detach().cpu().numpy()


def to_layer_model(model: KellyModel) -> Model:
    """The model as ``toolchain.layers`` records, straight from the PyTorch weights (no ONNX).

    An independent route to the layer list (the exporter goes through ONNX and the converter); used to
    count parameters the RTNeural way and to cross-check the converter's output.
    """
    layers = []
    blocks = list(model.body)
    for index, block in enumerate(blocks):
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        activation = ACTIVATION_NAMES.get(type(following), "")
        if isinstance(block, nn.Linear):
            layers.append(Dense(_array(block.weight), _array(block.bias), activation=activation))
        elif isinstance(block, Recurrent) and isinstance(block.rnn, nn.LSTM):
            rnn = block.rnn  # PyTorch gates i,f,g,o == canonical i,f,c,o; the two biases sum into one
            layers.append(LSTM(reorder_gates(_array(rnn.weight_ih_l0), LSTM_TORCH, LSTM_CANONICAL),
                               reorder_gates(_array(rnn.weight_hh_l0), LSTM_TORCH, LSTM_CANONICAL),
                               reorder_gates(_array(rnn.bias_ih_l0 + rnn.bias_hh_l0), LSTM_TORCH, LSTM_CANONICAL)))
        elif isinstance(block, Recurrent):
            rnn = block.rnn  # PyTorch gates r,z,n -> canonical z,r,h; biases stay apart
            layers.append(GRU(*(reorder_gates(_array(t), GRU_TORCH, GRU_CANONICAL)
                                for t in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0))))
    return Model(model.spec.input_size, layers, {"kelly_tc": {"model": model.spec.name}}).validate()


def reference_pair(model: KellyModel, frames: int = 8, seed: int = 0) -> tuple[list, list]:
    """A reference (input, output) pair to ship with an exported model: ``frames`` seeded input frames in
    the range the model sees, and the PyTorch output for them from zero state, as nested lists
    ``[frames][in]`` / ``[frames][out]`` (JSON-ready; stored under ``"kelly_tc": {"reference": ...}``)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(1, frames, model.spec.input_size, generator=generator) * 2 - 1
    with torch.no_grad():
        outputs = model.eval()(inputs)
    return inputs[0].double().tolist(), outputs[0].double().tolist()
