"""Pad: units pass through an axis it does not pad.

The causal time padding in front of a convolution (``F.pad(x, (0, 0, (Kt-1)*d, 0))`` before a 2-D Conv,
``F.pad(x, (p, 0))`` before a 1-D one) pads the time axis only, so the channels the previous Conv
produced reach the next Conv unchanged: pruning a conv2d's filters can continue into the next one.
"""
from __future__ import annotations

import numpy as np

from quant.onnx_graph import attribute
from quant.rules import Flow, Rule, normalize_axis, rule


@rule("Pad")
class PadRule(Rule):
    def receive(self, node, graph, index, axis, size):
        rank = graph.rank(node.input[0])
        if index != 0 or rank is None:
            return None
        if len(node.input) > 1 and node.input[1]:  # opset 11+: pads (and opset 18+: axes) are inputs
            pads = graph.constant(node.input[1])
            axes = graph.constant(node.input[3]) if len(node.input) > 3 and node.input[3] else np.arange(rank)
        else:
            pads, axes = attribute(node, "pads"), np.arange(rank)
        if pads is None or axes is None:
            return None
        pads, axes = np.ravel(pads).astype(int).tolist(), [normalize_axis(int(a), rank) for a in np.ravel(axes)]
        if len(pads) != 2 * len(axes):
            return None
        padded = {a for a, begin, end in zip(axes, pads[:len(axes)], pads[len(axes):]) if begin or end}
        return None if axis in padded else Flow([], [(node.output[0], axis)])
