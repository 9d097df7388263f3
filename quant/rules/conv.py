"""Conv: ``W [out, in/group, k...]``, ``B [out]``; the output channels are the rows of ``W``.

Only ungrouped convolutions take part in pruning: a grouped one ties its channels together.
"""
from __future__ import annotations

from quant.onnx_graph import attribute
from quant.rules import INCOMING, OUTGOING, Cut, DataWeightBiasRule, Flow, Units, WeightInput, known, mismatch, rule


@rule("Conv")
class ConvRule(DataWeightBiasRule):
    def weights(self, node, graph):
        return [WeightInput(1, 0)] if graph.is_initializer(node.input[1]) else []

    def units(self, node, graph):
        weight = node.input[1]
        if attribute(node, "group", 1) != 1:
            return "a grouped convolution ties its channels together"
        if not graph.is_initializer(weight):
            return "its weight is computed, not a constant"
        cuts = [Cut(weight, 0, 1, INCOMING)]
        if len(node.input) > 2 and node.input[2]:
            if not graph.is_initializer(node.input[2]):
                return "its bias is computed, not a constant"
            cuts.append(Cut(node.input[2], 0, 1, INCOMING))
        return Units(graph.shape(weight)[0], cuts, [(node.output[0], 1)])

    def receive(self, node, graph, index, axis, size):
        if index != 0 or axis != 1 or attribute(node, "group", 1) != 1 or not graph.is_initializer(node.input[1]):
            return None
        return Flow([Cut(node.input[1], 1, 1, OUTGOING)], [])

    def validate(self, node, graph):
        x, w = graph.shape(node.input[0]), graph.shape(node.input[1])
        group = attribute(node, "group", 1)
        if w is None:
            return
        if len(w) < 3:
            raise mismatch(node, f"W has shape {w}, expected [out, in/group, kernel...]")
        if known(w[0]) and w[0] % group:
            raise mismatch(node, f"group {group} does not divide the {w[0]} output channels of W {w}")
        if x is not None and len(x) >= 2 and known(x[1], w[1]) and x[1] != w[1] * group:
            raise mismatch(node, f"X has {x[1]} channels but W {w} with group {group} expects {w[1] * group}")
        if len(node.input) > 2 and node.input[2]:
            b = graph.shape(node.input[2])
            if b is not None and (len(b) != 1 or (known(b[0], w[0]) and b[0] != w[0])):
                raise mismatch(node, f"B has shape {b} but W {w} has {w[0]} output channels")
