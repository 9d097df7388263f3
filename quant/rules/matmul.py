"""MatMul with a constant right operand ``B [in, out]``: a dense layer without bias.

The TorchScript exporter writes ``nn.Linear`` on a 3-D input as ``MatMul(x, W.T)`` followed by
``Add(bias)``; the neurons are the columns of ``B`` and the bias Add follows them (``elementwise``).
"""
from __future__ import annotations

from quant.rules import (
    INCOMING, OUTGOING, Cut, Flow, Rule, Unfit, Units, WeightInput, broadcast_cut, known, mismatch, rule,
)


def _matrix(graph, name) -> bool:
    return graph.is_initializer(name) and len(graph.shape(name)) == 2


@rule("MatMul")
class MatMulRule(Rule):
    def weights(self, node, graph):
        if not graph.is_initializer(node.input[1]):
            return []
        # Per column of a 2-D B; a stacked (batched) B is quantized per tensor.
        return [WeightInput(1, 1 if _matrix(graph, node.input[1]) else None)]

    def activations(self, node, graph):
        return [] if graph.is_initializer(node.input[0]) else [0]

    def units(self, node, graph):
        weight, output = node.input[1], node.output[0]
        rank = graph.rank(output)
        if not graph.is_initializer(weight):
            return None  # a product of two computed tensors, not a layer
        if not _matrix(graph, weight) or rank is None:
            return "its weight is not a matrix or its output rank is unknown"
        size = graph.shape(weight)[1]
        cuts = [Cut(weight, 1, 1, INCOMING)]
        # The bias of an Add that directly follows belongs to the neuron's incoming parameters (for
        # ranking); the Add's own rule cuts it again when the units pass through it (same cut).
        uses = graph.consumers.get(output, [])
        if len(uses) == 1 and uses[0][0].op_type == "Add":
            add, index = uses[0]
            other = add.input[1 - index]
            if graph.is_initializer(other):
                try:
                    bias = broadcast_cut(graph, other, size, rank, rank - 1, INCOMING)
                except Unfit:
                    return f"the bias {graph.shape(other)} of the following Add does not follow the {size} outputs"
                cuts += [bias] if bias else []
        return Units(size, cuts, [(output, rank - 1)])

    def receive(self, node, graph, index, axis, size):
        rank = graph.rank(node.input[0])
        if index != 0 or rank is None or rank < 2 or axis != rank - 1 or not _matrix(graph, node.input[1]):
            return None
        return Flow([Cut(node.input[1], 0, 1, OUTGOING)], [])

    def validate(self, node, graph):
        a, b = graph.shape(node.input[0]), graph.shape(node.input[1])
        if a is None or b is None or len(a) < 1 or len(b) < 2:
            return
        if known(a[-1], b[-2]) and a[-1] != b[-2]:
            raise mismatch(node, f"A gives {a[-1]} input features but B {b} expects {b[-2]}")

