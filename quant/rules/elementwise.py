"""Ops that keep every feature where it is: activations, a constant bias or scale, BatchNormalization.

Units pass through them unchanged; a constant operand that varies along the units is cut with them.
"""
from __future__ import annotations

from quant.rules import Cut, Flow, Rule, Unfit, broadcast_cut, broadcastable, known, mismatch, rule

#: Unary ops (input 0 -> output 0, feature by feature). Clip's min/max are scalars.
UNARY = ("Relu", "Tanh", "Sigmoid", "LeakyRelu", "Elu", "Selu", "Celu", "Softsign", "Softplus", "HardSigmoid",
         "HardSwish", "Gelu", "Mish", "Clip", "Identity", "Dropout", "Cast", "Neg", "Abs")
#: Binary ops where one side may be a constant broadcast onto the other.
BINARY = ("Add", "Sub", "Mul", "Div")


@rule(*UNARY)
class UnaryRule(Rule):
    def receive(self, node, graph, index, axis, size):
        return Flow([], [(node.output[0], axis)]) if index == 0 else None


@rule(*BINARY)
class BinaryRule(Rule):
    def biases(self, node, graph):
        """The constant of an Add right after a MatMul: the bias of a TorchScript-exported Linear."""
        if node.op_type != "Add":
            return []
        for index in (0, 1):
            producer = graph.producer.get(node.input[1 - index])
            if graph.is_initializer(node.input[index]) and producer is not None and producer.op_type == "MatMul":
                return [index]
        return []

    def join(self, node, graph, arriving):
        """Two computed operands (a residual sum, a gate): their units are the same units (``quant.rules.merge``)."""
        from quant.rules.merge import ELEMENTWISE_MERGES, elementwise_join

        return elementwise_join(node, graph, arriving) if node.op_type in ELEMENTWISE_MERGES else None

    def receive(self, node, graph, index, axis, size):
        other = node.input[1 - index]
        if not graph.is_initializer(other):  # two computed operands: ``join`` handles them (not Div)
            return None
        output_rank, input_rank = graph.rank(node.output[0]), graph.rank(node.input[index])
        if output_rank is None or input_rank is None:
            return None
        axis += output_rank - input_rank
        try:
            cut = broadcast_cut(graph, other, size, output_rank, axis)
        except Unfit:
            return None
        return Flow([cut] if cut else [], [(node.output[0], axis)])

    def validate(self, node, graph):
        shapes = [graph.shape(name) for name in node.input]
        if any(s is None for s in shapes):
            return
        small, big = sorted(shapes, key=len)
        if not broadcastable(small, big):
            raise mismatch(node, f"operands {shapes[0]} and {shapes[1]} do not broadcast")


@rule("BatchNormalization")
class BatchNormRule(Rule):
    def receive(self, node, graph, index, axis, size):
        params = node.input[1:5]
        if index != 0 or axis != 1 or not all(graph.is_initializer(p) for p in params):
            return None
        return Flow([Cut(p, 0) for p in params], [(node.output[0], 1)])

    def validate(self, node, graph):
        x = graph.shape(node.input[0])
        channels = x[1] if x is not None and len(x) >= 2 else None
        for name in node.input[1:5]:
            shape = graph.shape(name)
            if shape is not None and (len(shape) != 1 or (known(channels, shape[0]) and shape[0] != channels)):
                raise mismatch(node, f"{name} has shape {shape} but the input has {channels} channels")
