"""A WaveNet-style pedal in PyTorch (PedalNetRT's architecture), exported to ONNX for kelly-tc.

    python examples/wavenet/pedal.py pedal.onnx

The README's worked example continues from the ONNX file: ``kelly-tc convert`` writes a kelly-tc graph
file (the residual adds, the gates and the skip concatenation are not a sequential stack), ``kelly-tc
cpp`` a C++ header wiring RTNeural's layers as the graph, ``plugin.cpp`` runs it. The weights here are
seeded random numbers: put your trained ``state_dict`` in their place (``--weights FILE.pt``).

The architecture, as PedalNetRT trains it: a 1x1 input conv to C channels; per layer a dilated causal
conv to 2C channels, split into halves a and b, the gate tanh(a) * sigmoid(b), a 1x1 residual conv of the
gate added to the layer's input, the gate kept as a skip; the skips concatenated and mixed by a 1x1 conv.
(PedalNetRT pads both sides and slices the tail off; padding on the left only is the same causal conv.)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from toolchain import atomic

CHANNELS = 6
DILATIONS = (1, 2, 4, 8, 1, 2, 4, 8)
KERNEL_SIZE = 3


class CausalConv1d(nn.Conv1d):
    """A conv that sees only the current and past frames: (K - 1) * dilation zeros on the left."""

    def forward(self, x):
        return super().forward(F.pad(x, ((self.kernel_size[0] - 1) * self.dilation[0], 0)))


class WaveNet(nn.Module):
    def __init__(self, channels: int = CHANNELS, dilations=DILATIONS, kernel_size: int = KERNEL_SIZE):
        super().__init__()
        self.channels = channels
        self.input = CausalConv1d(1, channels, 1)
        self.hidden = nn.ModuleList([CausalConv1d(channels, 2 * channels, kernel_size, dilation=d) for d in dilations])
        self.residuals = nn.ModuleList([nn.Conv1d(channels, channels, 1) for _ in dilations[:-1]])
        self.mix = nn.Conv1d(channels * len(dilations), 1, 1)

    def forward(self, x):  # x: [batch, 1, time] audio
        x = self.input(x)
        skips = []
        for index, layer in enumerate(self.hidden):
            a, b = torch.split(layer(x), self.channels, dim=1)
            gate = torch.tanh(a) * torch.sigmoid(b)
            skips.append(gate)
            if index < len(self.residuals):  # the last layer's residual would feed nothing
                x = x + self.residuals[index](gate)
        return self.mix(torch.cat(skips, dim=1))


def build(weights: Path | None = None, seed: int = 0) -> WaveNet:
    torch.manual_seed(seed)
    model = WaveNet()
    if weights is not None:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def export(model: WaveNet, path: Path) -> Path:
    """ONNX with the time axis dynamic (torch's dynamo exporter), so any block length streams; written
    atomically (a temporary file renamed into place)."""
    example = torch.zeros(1, 1, 256)
    time = torch.export.Dim("time", min=2, max=1 << 20)
    with atomic.atomic_path(path, suffix=".onnx") as temporary:
        torch.onnx.export(model, (example,), str(temporary), dynamo=True, external_data=False, input_names=["audio"],
                          output_names=["output"], dynamic_shapes={"x": {2: time}}, verbose=False)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the ONNX file to write")
    parser.add_argument("--weights", type=Path, help="a trained state_dict (default: seeded random weights)")
    arguments = parser.parse_args()
    print(f"wrote {export(build(arguments.weights), arguments.output)}")


if __name__ == "__main__":
    main()
