"""The weight-shape validator: every weight tensor agrees with its op's attributes, with the other
weights of the same op (all gate blocks of W, R and B) and with the shape of the tensor it reads.

A pass that rewrites weights (pruning above all) runs it on its result: a cut that forgot one gate
block, the recurrent columns or the next layer's input columns is reported here, naming the node,
instead of surfacing as a crash or a silently wrong model later.
"""
from __future__ import annotations

import onnx

from toolchain.errors import KellyError

from quant.onnx_graph import Graph
from quant.rules import rule_for


def check_weight_shapes(model: onnx.ModelProto, file=None) -> None:
    """Raise :class:`InputError` (naming ``file`` and the node) on the first inconsistent weight shape."""
    graph = Graph(model)
    for node in model.graph.node:
        rule = rule_for(node)
        if rule is None:
            continue
        try:
            rule.validate(node, graph)
        except KellyError as error:
            raise error.with_file(file) if file is not None else error
