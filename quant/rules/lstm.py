"""LSTM: four gate blocks (ONNX order i, o, f, c -- see toolchain/gates.py), two stacked biases,
initial_h and initial_c, peepholes ``P [D, 3H]``. The shared gate-block logic is in ``recurrent``."""
from __future__ import annotations

from quant.rules import rule
from quant.rules.recurrent import RecurrentRule


@rule("LSTM")
class LSTMRule(RecurrentRule):
    gates = 4
    state_inputs = (5, 6)
    peephole_input = 7
