"""Merges and splits on the unit axis: elementwise Add/Sub/Mul/Sum of computed tensors, Concat, Split.

A residual ``x + conv(x)`` or a gate ``tanh(a) * sigmoid(b)`` computes unit ``k`` of its output from unit
``k`` of every operand: removing unit ``k`` means removing it from every operand's producer and from every
reader of the sum at once (``Joined("same")``; the pass ranks such joined units together). A Concat puts its
inputs' units one after the other (``Joined("concat")``): each input keeps pruning on its own and the reader's
columns follow at the concat offsets. A Split hands each output a range of its input's units, so the halves
of a gated conv are its output rows at two offsets; once they are pruned, the split sizes are recounted.
"""
from __future__ import annotations

import numpy as np

from quant.onnx_graph import attribute, set_attribute
from quant.rules import Flow, Joined, Recount, Rule, normalize_axis, rule

#: Elementwise ops that join the units of their computed operands (Div is not a merge the converter takes).
ELEMENTWISE_MERGES = ("Add", "Sub", "Mul", "Sum")


def elementwise_join(node, graph, arriving: dict[int, int]) -> Joined | str | None:
    """Unit ``k`` of every operand that varies along the units is unit ``k`` of the output; an operand of size
    1 there broadcasts (it is read by every unit and keeps its size); a constant operand is left to
    ``receive`` (a bias or a scale, cut with the units) -- None then."""
    if any(graph.is_initializer(name) or graph.constant(name) is not None for name in node.input if name):
        return None if node.op_type != "Sum" else "a Sum with a constant operand"
    out_rank = graph.rank(node.output[0])
    if out_rank is None or any(graph.rank(node.input[i]) is None for i in arriving):
        return "the ranks of its operands are unknown"
    out_axes = {axis + out_rank - graph.rank(node.input[i]) for i, axis in arriving.items()}
    if len(out_axes) != 1:
        return "its operands carry units on different axes"
    out_axis = out_axes.pop()
    dims = {}
    for index, name in enumerate(node.input):
        shape, rank = graph.shape(name), graph.rank(name)
        local = None if rank is None else out_axis - (out_rank - rank)
        dims[index] = (local, None if shape is None or local is None or local < 0 else shape[local])
    widest = max((d for _, d in dims.values() if isinstance(d, int)), default=None)
    members = []
    for index, (local, dim) in dims.items():
        if local is None or local < 0 or (dim == 1 and widest not in (None, 1)):
            if index in arriving:
                return f"the units of input {index} are broadcast over the other operand's {widest} features"
            continue  # broadcast: read by every unit, keeps its size
        members.append((index, local))
    return Joined("same", tuple(members), (node.output[0], out_axis))


@rule("Sum")
class SumRule(Rule):
    def join(self, node, graph, arriving):
        return elementwise_join(node, graph, arriving)


@rule("Concat")
class ConcatRule(Rule):
    def join(self, node, graph, arriving):
        rank = graph.rank(node.output[0])
        axis = normalize_axis(attribute(node, "axis", 0), rank)
        if axis is None:
            return "the rank of its output is unknown"
        if any(a != axis for a in arriving.values()):
            return f"it joins along axis {axis}, not along the units' axis"
        return Joined("concat", tuple((index, axis) for index in range(len(node.input))), (node.output[0], axis))


def _split_sizes(node, graph, total: int) -> list[int] | None:
    """The sizes of a Split's parts: the ``split`` input (opset 13+), the attribute (older), or equal parts."""
    if len(node.input) > 1 and node.input[1]:
        value = graph.constant(node.input[1])
        return None if value is None else [int(v) for v in np.ravel(value)]
    if attribute(node, "split") is not None:
        return [int(v) for v in attribute(node, "split")]
    parts = len(node.output)
    if total % parts:  # opset 18's uneven num_outputs split: the last part is smaller
        step = -(-total // parts)
        return [step] * (parts - 1) + [total - step * (parts - 1)]
    return [total // parts] * parts


@rule("Split")
class SplitRule(Rule):
    def receive(self, node, graph, index, axis, size):
        rank = graph.rank(node.input[0])
        split_axis = normalize_axis(attribute(node, "axis", 0), rank)
        if index != 0 or split_axis is None:
            return None
        if split_axis != axis:  # split along another axis (time): every part carries all the units
            return Flow([], [(name, axis) for name in node.output if name])
        sizes = _split_sizes(node, graph, size)
        if sizes is None or sum(sizes) != size or len(sizes) != len(node.output):
            return None
        offsets = np.cumsum([0] + sizes)
        parts = [tuple(range(offsets[i], offsets[i + 1])) for i in range(len(sizes))]
        selected = [(name, axis, part) for name, part in zip(node.output, parts) if name]

        def recount(node, graph, count):
            kept = np.array([count(part) for part in parts], np.int64)
            if graph.opset >= 13:  # sizes as an input (opset 18's num_outputs is replaced by them)
                name = graph.add_initializer(graph.unique_name(f"{node.name or 'split'}_sizes_pruned"), kept)
                while len(node.input) < 2:
                    node.input.append("")
                node.input[1] = name
                for position, entry in enumerate(node.attribute):
                    if entry.name == "num_outputs":
                        del node.attribute[position]
                        break
            else:
                set_attribute(node, "split", kept.tolist())

        return Flow([Recount(node.name, recount)], [], selected)
