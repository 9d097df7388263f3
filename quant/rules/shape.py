"""Shape-only ops units pass through when they only move or drop other axes.

A TorchScript-exported LSTM is ``LSTM -> Squeeze(1)`` (dropping the direction axis), a
``batch_first`` model adds Transposes, and ``out[:, -1]`` is a Gather or Slice on the time axis.
Flatten, and a Reshape that merges the units with another axis, stop pruning.
"""
from __future__ import annotations

import numpy as np

from quant.onnx_graph import attribute
from quant.rules import Flow, Recount, Rule, SizeEdit, normalize_axis, rule


def _axes(node, graph, rank: int | None) -> list[int] | None:
    """Axes from the attribute (old opsets) or the constant second input (opset 13+), normalized."""
    axes = attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = graph.constant(node.input[1])
        axes = None if value is None else np.asarray(value).ravel().tolist()
    if axes is None or rank is None:
        return None
    return sorted(a + rank if a < 0 else a for a in axes)


@rule("Transpose")
class TransposeRule(Rule):
    def receive(self, node, graph, index, axis, size):
        rank = graph.rank(node.input[0])
        perm = attribute(node, "perm") or (list(reversed(range(rank))) if rank is not None else None)
        return None if perm is None else Flow([], [(node.output[0], list(perm).index(axis))])


@rule("Squeeze")
class SqueezeRule(Rule):
    def receive(self, node, graph, index, axis, size):
        shape = graph.shape(node.input[0])
        axes = _axes(node, graph, None if shape is None else len(shape))
        if axes is None and shape is not None and len(node.input) < 2 and attribute(node, "axes") is None:
            axes = [i for i, d in enumerate(shape) if d == 1] if all(d is not None for d in shape) else None
        if index != 0 or axes is None or axis in axes:
            return None
        return Flow([], [(node.output[0], axis - sum(a < axis for a in axes))])


@rule("Unsqueeze")
class UnsqueezeRule(Rule):
    def receive(self, node, graph, index, axis, size):
        axes = _axes(node, graph, graph.rank(node.output[0]))
        if index != 0 or axes is None:
            return None
        kept = [i for i in range(graph.rank(node.output[0])) if i not in axes]
        return Flow([], [(node.output[0], kept[axis])])


@rule("Gather")
class GatherRule(Rule):
    def receive(self, node, graph, index, axis, size):
        rank = graph.rank(node.input[0])
        gathered = normalize_axis(attribute(node, "axis", 0), rank)
        indices_rank = graph.rank(node.input[1])
        if index != 0 or gathered is None or indices_rank is None or axis == gathered:
            return None
        return Flow([], [(node.output[0], axis if axis < gathered else axis - 1 + indices_rank)])


@rule("Slice")
class SliceRule(Rule):
    def receive(self, node, graph, index, axis, size):
        rank = graph.rank(node.input[0])
        if index != 0 or rank is None:
            return None
        if len(node.input) > 3 and node.input[3]:
            value = graph.constant(node.input[3])
            axes = None if value is None else [normalize_axis(int(a), rank) for a in np.ravel(value)]
        elif len(node.input) > 1:  # opset 10+ without axes: starts/ends cover axes 0..n-1
            starts = graph.constant(node.input[1])
            axes = None if starts is None else list(range(np.size(starts)))
        else:
            axes = attribute(node, "axes") or list(range(len(attribute(node, "starts") or [])))
            axes = [normalize_axis(a, rank) for a in axes]
        if axes is None:
            return None
        if axis in axes:
            return _feature_slice(node, graph, axes.index(axis), axis, size)
        return Flow([], [(node.output[0], axis)])


def _feature_slice(node, graph, position: int, axis: int, size: int) -> Flow | None:
    """A Slice of a constant range of the units (one half of a gated conv, the first k features): the output
    carries units ``[start, end)``; once pruned, both bounds become the counts of kept units before them.
    Only step 1 and bounds given as constants (opset 10+)."""
    bounds = [graph.constant(node.input[i]) if len(node.input) > i and node.input[i] else None for i in (1, 2, 4)]
    starts, ends, steps = bounds
    if starts is None or ends is None or (steps is not None and int(np.ravel(steps)[position]) != 1):
        return None
    start, end, _ = slice(int(np.ravel(starts)[position]), int(np.ravel(ends)[position])).indices(size)
    end = max(start, end)

    def recount(node, graph, count):
        for index, bound in ((1, start), (2, end)):
            value = np.array(graph.constant(node.input[index])).ravel().copy()
            value[position] = count(tuple(range(bound)))
            node.input[index] = graph.add_initializer(graph.unique_name(f"{node.input[index]}_pruned"), value)

    return Flow([Recount(node.name, recount)], [], [(node.output[0], axis, tuple(range(start, end)))])


@rule("Shape", "Size")
class ShapeRule(Rule):
    """Reading a tensor's shape ends the units' path: the shape is computed at run time, so it
    follows the new unit count by itself."""

    def receive(self, node, graph, index, axis, size):
        return Flow([], [])


@rule("Reshape")
class ReshapeRule(Rule):
    """Only the case exporters write around recurrent layers: the units stay the last axis (the
    dynamo exporter's ``[T, 1, B, H] -> Transpose -> Reshape([T, B, H])``). A target shape that
    spells out ``H`` gets the new size."""

    def receive(self, node, graph, index, axis, size):
        rank = graph.rank(node.input[0])
        target = graph.constant(node.input[1]) if len(node.input) > 1 else None
        if index != 0 or rank is None or axis != rank - 1 or target is None or not node.name or target.ndim != 1:
            return None
        last, out_axis = int(target[-1]), len(target) - 1
        if last == size:
            return Flow([SizeEdit(node.name, 1, out_axis)], [(node.output[0], out_axis)])
        output_shape = graph.shape(node.output[0])
        copies_units = last == 0 and not attribute(node, "allowzero", 0) and out_axis == axis
        infers_units = last == -1 and output_shape is not None and output_shape[-1] == size
        return Flow([], [(node.output[0], out_axis)]) if copies_units or infers_units else None
