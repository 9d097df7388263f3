"""GRU: three gate blocks (ONNX order z, r, h -- see toolchain/gates.py), two stacked biases,
initial_h. The shared gate-block logic is in ``recurrent``; ``linear_before_reset`` changes nothing
for pruning or quantization (every tensor stays indexed by gate row)."""
from __future__ import annotations

from quant.rules import rule
from quant.rules.recurrent import RecurrentRule


@rule("GRU")
class GRURule(RecurrentRule):
    gates = 3
    state_inputs = (5,)
