"""What LSTM and GRU share: gate blocks stacked along the rows of W, R and B.

ONNX inputs: ``X, W [D, G*H, in], R [D, G*H, H], B [D, 2*G*H], sequence_lens, initial_h [D, batch, H]``
(LSTM adds ``initial_c`` and peepholes ``P [D, 3H]``), with ``G`` gates (LSTM 4, GRU 3) and ``D``
directions. Outputs ``Y [seq, D, batch, H]`` and ``Y_h [D, batch, H]`` (``layout=1`` moves batch first:
the hidden axis stays 3 and 2). A hidden unit ``j`` owns row ``j`` of every gate block of W and R
(quantized per row: one scale per gate row), entry ``j`` of every block of B, column ``j`` of R (its
recurrent output) and entry ``j`` of the initial states.
"""
from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from quant.onnx_graph import attribute, set_attribute
from quant.rules import INCOMING, OUTGOING, CARRIED, Cut, Flow, Rule, Units, WeightInput, known, mismatch

#: Hidden axis of each output (Y, Y_h, Y_c) for both layouts.
OUTPUT_HIDDEN_AXIS = (3, 2, 2)
#: Hidden axis of initial_h / initial_c (``[D, batch, H]`` or, with layout=1, ``[batch, D, H]``).
STATE_HIDDEN_AXIS = 2


def _input(node, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


#: Ops that only select or rearrange values: a zero tensor through them stays zero.
_VALUE_PRESERVING = ("Slice", "Gather", "Squeeze", "Unsqueeze", "Reshape", "Expand", "Identity", "Transpose", "Cast")


def _computed_zero(graph, name: str) -> bool:
    """True if ``name`` is computed at run time but always zero: a zero ``ConstantOfShape`` (the
    TorchScript export of a zero initial state), possibly sliced per layer or reshaped."""
    node = graph.producer.get(name)
    while node is not None and node.op_type in _VALUE_PRESERVING:
        node = graph.producer.get(node.input[0])
    if node is None or node.op_type != "ConstantOfShape":
        return False
    value = attribute(node, "value")
    return value is None or not np.any(numpy_helper.to_array(value))


class RecurrentRule(Rule):
    gates = 0
    state_inputs: tuple[int, ...] = (5,)
    peephole_input: int | None = None

    def hidden_size(self, node, graph) -> int | None:
        size = attribute(node, "hidden_size")
        if size is None and graph.shape(node.input[2]) is not None:
            size = graph.shape(node.input[2])[-1]
        return size

    def weights(self, node, graph):
        return [WeightInput(i, 1) for i in (1, 2) if graph.is_initializer(node.input[i])]

    def activations(self, node, graph):
        return [] if graph.is_initializer(node.input[0]) else [0]

    def biases(self, node, graph):
        return [3] if graph.is_initializer(_input(node, 3)) else []

    def units(self, node, graph):
        weight, recurrent, bias = node.input[1], node.input[2], _input(node, 3)
        if not (graph.is_initializer(weight) and graph.is_initializer(recurrent)):
            return "its W or R is computed, not a constant"
        cuts = [Cut(weight, 1, self.gates, INCOMING), Cut(recurrent, 1, self.gates, INCOMING),
                Cut(recurrent, 2, 1, OUTGOING)]
        optional = [(bias, 1, 2 * self.gates, INCOMING)]
        optional += [(_input(node, i), STATE_HIDDEN_AXIS, 1, CARRIED) for i in self.state_inputs]
        if self.peephole_input is not None:
            optional.append((_input(node, self.peephole_input), 1, 3, INCOMING))
        for name, axis, blocks, role in optional:
            if not name:
                continue
            if not graph.is_initializer(name):  # a state fed from outside fixes the hidden size
                return f"its input '{name}' is computed, not a constant"
            cuts.append(Cut(name, axis, blocks, role))
        outputs = [(name, axis) for name, axis in zip(node.output, OUTPUT_HIDDEN_AXIS) if name]
        return Units(self.hidden_size(node, graph), cuts, outputs)

    def simplify(self, node, graph):
        """A zero initial state built at run time (TorchScript: ``ConstantOfShape([1, batch, H])``) is
        what ONNX computes for an absent one: drop it, so that H is no longer spelled out elsewhere."""
        changed = False
        for index in self.state_inputs:
            name = _input(node, index)
            if name and _computed_zero(graph, name):
                node.input[index] = ""
                changed = True
        while node.input and not node.input[-1]:  # trailing empty inputs are simply absent
            del node.input[-1]
        return changed

    def receive(self, node, graph, index, axis, size):
        if index != 0 or axis != 2 or not graph.is_initializer(node.input[1]):
            return None
        return Flow([Cut(node.input[1], 2, 1, OUTGOING)], [])

    def resize(self, node, size):
        set_attribute(node, "hidden_size", int(size))

    def validate(self, node, graph):
        hidden = self.hidden_size(node, graph)
        directions = 2 if attribute(node, "direction", b"forward") in (b"bidirectional", "bidirectional") else 1
        x = graph.shape(node.input[0])
        features = x[2] if x is not None and len(x) == 3 else None
        gated = self.gates * hidden if known(hidden) else None
        expected = {1: ("W", [directions, gated, features]), 2: ("R", [directions, gated, hidden]),
                    3: ("B", [directions, 2 * gated if gated else None])}
        for index in self.state_inputs:
            expected[index] = ("initial state", [None, None, hidden])
        if self.peephole_input is not None:
            expected[self.peephole_input] = ("P", [directions, 3 * hidden if known(hidden) else None])
        for index, (label, want) in expected.items():
            name = _input(node, index)
            have = graph.shape(name) if name else None
            if have is None:
                continue
            if len(have) != len(want) or any(known(h, w) and h != w for h, w in zip(have, want)):
                shown = ["?" if w is None else w for w in want]
                raise mismatch(node, f"{label} has shape {have}, expected {shown} (hidden_size {hidden}, {self.gates} gates)")
