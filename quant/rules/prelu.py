"""PRelu: ``Y = X if X >= 0 else slope * X``, ``slope`` broadcast onto X (``[C]``, or ``[C, 1]`` for
conv outputs). The slope is quantized per tensor: one scale per slope value would store as many
float scales as int8 values and save nothing."""
from __future__ import annotations

from quant.rules import Flow, Rule, Unfit, WeightInput, broadcast_cut, broadcastable, mismatch, rule


@rule("PRelu")
class PReluRule(Rule):
    def weights(self, node, graph):
        return [WeightInput(1, None)] if graph.is_initializer(node.input[1]) else []

    def receive(self, node, graph, index, axis, size):
        if index != 0 or not graph.is_initializer(node.input[1]):
            return None
        try:
            cut = broadcast_cut(graph, node.input[1], size, graph.rank(node.input[0]), axis)
        except Unfit:
            return None
        return Flow([cut] if cut else [], [(node.output[0], axis)])

    def validate(self, node, graph):
        x, slope = graph.shape(node.input[0]), graph.shape(node.input[1])
        if x is not None and slope is not None and not broadcastable(slope, x):
            raise mismatch(node, f"slope {slope} does not broadcast onto the input {x}")
