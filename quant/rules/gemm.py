"""Gemm: ``Y = alpha * A' @ B' + beta * C`` with ``A' = A.T if transA``, ``B' = B.T if transB``.

The output features (dense neurons) are the columns of ``B'``: rows of ``B`` when ``transB`` (the
PyTorch ``nn.Linear`` export, ``B [out, in]``), columns otherwise.
"""
from __future__ import annotations

from quant.onnx_graph import attribute
from quant.rules import (
    INCOMING, OUTGOING, Cut, DataWeightBiasRule, Flow, Unfit, Units, WeightInput, broadcast_cut, broadcastable, known, mismatch, rule,
)


def _out_axis(node) -> int:
    """The axis of B that holds the output features."""
    return 0 if attribute(node, "transB", 0) else 1


@rule("Gemm")
class GemmRule(DataWeightBiasRule):
    def weights(self, node, graph):
        return [WeightInput(1, _out_axis(node))] if graph.is_initializer(node.input[1]) else []

    def units(self, node, graph):
        weight = node.input[1]
        if not graph.is_initializer(weight):
            return "its weight B is computed, not a constant"
        size = graph.shape(weight)[_out_axis(node)]
        cuts = [Cut(weight, _out_axis(node), 1, INCOMING)]
        if len(node.input) > 2 and node.input[2]:
            if not graph.is_initializer(node.input[2]):
                return "its bias C is computed, not a constant"
            try:
                bias = broadcast_cut(graph, node.input[2], size, 2, 1, INCOMING)
            except Unfit:
                return f"its bias C {graph.shape(node.input[2])} does not follow the {size} outputs"
            cuts += [bias] if bias else []
        return Units(size, cuts, [(node.output[0], 1)])

    def receive(self, node, graph, index, axis, size):
        feature_axis = 0 if attribute(node, "transA", 0) else 1
        if index != 0 or axis != feature_axis or not graph.is_initializer(node.input[1]):
            return None
        return Flow([Cut(node.input[1], 1 - _out_axis(node), 1, OUTGOING)], [])

    def validate(self, node, graph):
        a, b = graph.shape(node.input[0]), graph.shape(node.input[1])
        if b is not None and len(b) != 2:
            raise mismatch(node, f"B has shape {b}, expected 2 dims")
        if a is None or b is None:
            return
        if len(a) != 2:
            raise mismatch(node, f"A has shape {a}, expected 2 dims")
        rows, inner = (a[1], a[0]) if attribute(node, "transA", 0) else (a[0], a[1])
        weight_inner, columns = (b[1], b[0]) if attribute(node, "transB", 0) else (b[0], b[1])
        if known(inner, weight_inner) and inner != weight_inner:
            raise mismatch(node, f"A gives {inner} input features but B {b} expects {weight_inner}")
        if len(node.input) > 2 and node.input[2]:
            c = graph.shape(node.input[2])
            if c is not None and not broadcastable(c, [rows, columns]):
                raise mismatch(node, f"C {c} does not broadcast to the output [{rows}, {columns}]")
