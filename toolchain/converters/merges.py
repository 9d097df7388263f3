"""Merges and splits on the feature axis -> the graph's ``add``/``sub``/``mul``/``concat``/``slice`` layers.

A residual (``Add``/``Sub`` of two data tensors), a gate (``Mul``), a skip sum (``Sum``), ``Concat`` and
``Split`` of channels, and a ``Slice`` of a constant feature range are per-frame exactly when every
input sees the same frame on the same axes: the inputs' axes are unified position by position (a
merge of a time axis with a feature axis is a role conflict, refused naming the node), a concat or a
split must run along the feature axis, and no input may be broadcast. ``walk.py`` checks that the
branches are delayed alike. A ``Slice`` along the time axis is accepted only when it keeps every frame.
"""
from __future__ import annotations

import numpy as np

from toolchain.converters import causal_trim
from toolchain.converters.axes import FEATURE, TIME, hinted_role
from toolchain.converters.context import NodeContext, Outputs
from toolchain.converters.registry import converter
from toolchain.layers import Add, Concat, Mul, Slice, Sub

#: ONNX spells "to the end" as a huge end index (INT64_MAX, INT32_MAX).
TO_THE_END = 2 ** 31 - 1


def _aligned(ctx: NodeContext, skip_axis: int | None = None) -> list[int]:
    """Unify the data inputs' axes (all but ``skip_axis``), refusing broadcasting; the first input's axes."""
    first = ctx.sources[0][1]
    names = [name for name in ctx.node.input if name and name in ctx.graph.kind and ctx.graph.kind[name] == "data"]
    for (value, axes), name in zip(ctx.sources[1:], names[1:]):
        if len(axes) != len(first):
            raise ctx.unsupported(f"its inputs have ranks {len(first)} and {len(axes)} (a broadcast); a merge needs "
                                  "tensors of one layout")
        dims_a, dims_b = ctx.dims(names[0]), ctx.dims(name)
        for position, (a, b) in enumerate(zip(first, axes)):
            if position == skip_axis:
                continue
            if dims_a and dims_b and isinstance(dims_a[position], int) and isinstance(dims_b[position], int) \
                    and dims_a[position] != dims_b[position]:
                raise ctx.unsupported(f"broadcasts axis {position} ({dims_a[position]} vs {dims_b[position]}); "
                                      "a merge needs equal sizes on every axis")
            ctx.unify(a, b, f"{ctx.node.op_type} lines up axis {position} of its inputs")
    return list(first)


def _elementwise(ctx: NodeContext, kind) -> list[int]:
    axes = _aligned(ctx)
    ctx.emit(kind(), tuple(value for value, _ in ctx.sources))
    return axes


@converter("Add", "Sum", merge=True, summary="add (residual, skip sum) of data tensors of one layout")
def add(ctx: NodeContext) -> list[int]:
    return _elementwise(ctx, Add)


@converter("Sub", merge=True, summary="sub (a - b) of two data tensors of one layout")
def sub(ctx: NodeContext) -> list[int]:
    return _elementwise(ctx, Sub)


@converter("Mul", merge=True, summary="mul (a gate: tanh(a) * sigmoid(b)) of two data tensors of one layout")
def mul(ctx: NodeContext) -> list[int]:
    return _elementwise(ctx, Mul)


@converter("Concat", merge=True, summary="concat along the feature axis")
def concat(ctx: NodeContext) -> list[int]:
    rank = len(ctx.in_axes)
    axis = ctx.axis_index(int(ctx.attr("axis", 0)), rank)
    axes = _aligned(ctx, skip_axis=axis)
    for _, source_axes in ctx.sources:
        ctx.require(source_axes[axis], FEATURE, f"Concat joins its inputs along axis {axis} (a merge over time or "
                                                "batch would mix frames)")
    ctx.emit(Concat(), tuple(value for value, _ in ctx.sources))
    axes[axis] = ctx.new_axis(FEATURE)
    return axes


def _feature_size(ctx: NodeContext, axis: int, op: str) -> int:
    dims = ctx.in_dims
    if not dims or not isinstance(dims[axis], int):
        raise ctx.unsupported(f"{op} of axis {axis}, whose size shape inference cannot determine")
    return int(dims[axis])


@converter("Split", summary="slice layers (the halves of a gated conv), along the feature axis")
def split(ctx: NodeContext) -> Outputs:
    rank = len(ctx.in_axes)
    axis = ctx.axis_index(int(ctx.attr("axis", 0)), rank)
    ctx.require(ctx.in_axes[axis], FEATURE, f"Split cuts axis {axis} into feature ranges")
    size = _feature_size(ctx, axis, "Split")
    sizes = ctx.int_list("split", 1)
    count = len(ctx.node.output)
    if sizes is None:
        parts = int(ctx.attr("num_outputs", count))
        chunk = -(-size // parts)
        sizes = [min(chunk, size - chunk * i) for i in range(parts)]
    if sum(sizes) != size or len(sizes) != count or min(sizes) < 1:
        raise ctx.invalid(f"split sizes {sizes} do not cut {size} features into {count} outputs")
    source, outputs, start = ctx.value, Outputs(), 0
    for index, part in enumerate(sizes):
        axes = list(ctx.in_axes)
        axes[axis] = ctx.new_axis(FEATURE)
        if ctx.node.output[index]:
            outputs[index] = (ctx.emit(Slice(start=start, size=part), (source,)), axes)
        start += part
    return outputs


@converter("Slice", summary="slice layer of a constant feature range; along time only an identity (keeps every frame), "
                             "or the trim after a padded Conv dropping exactly its non-causal frames (PedalNetRT's CausalConv1d)")
def slice_(ctx: NodeContext) -> list[int]:
    if ctx.state.pending_trim is not None:  # PedalNetRT's CausalConv1d: Conv(padding=(K-1)*d)[..., :-(K-1)*d]
        return causal_trim.trim_slice(ctx)
    rank = len(ctx.in_axes)
    if ctx.opset >= 10 and _shape_computed(ctx, (1, 2)):
        return _shape_computed_identity(ctx)
    if ctx.opset >= 10:
        starts, ends = ctx.int_list("starts", 1), ctx.int_list("ends", 2)
        axes = ctx.int_list("axes", 3) if ctx.has_input(3) else list(range(len(starts or [])))
        steps = ctx.int_list("steps", 4) if ctx.has_input(4) else [1] * len(starts or [])
    else:
        starts, ends = ctx.int_list("starts"), ctx.int_list("ends")
        axes, steps = ctx.int_list("axes") or list(range(len(starts or []))), [1] * len(starts or [])
    if starts is None or ends is None or not len(starts) == len(ends) == len(axes) == len(steps):
        raise ctx.invalid(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} do not line up")
    dims = ctx.in_dims or (None,) * rank
    out_axes, cut = list(ctx.in_axes), None
    for axis, start, end, step in zip((ctx.axis_index(a, rank) for a in axes), starts, ends, steps):
        size = dims[axis] if isinstance(dims[axis], int) else None
        if step != 1:
            raise ctx.unsupported(f"Slice with step {step} along axis {axis}: it decimates frames or features")
        keeps_all = _normal(start, size) == 0 and (end >= TO_THE_END or (size is not None and end >= size))
        trims_delay = ctx.source_delay and start == 0 and -ctx.source_delay <= end < 0
        if keeps_all or (trims_delay and ctx.roles.roles(ctx.in_axes[axis]) == {TIME}):
            continue  # an identity (or the padding tail of a delayed stream: walk.py refuses the delay itself)
        ctx.require(ctx.in_axes[axis], FEATURE, f"Slice keeps only part of axis {axis} (from {start} to {end}); "
                                                "over time that drops frames")
        if size is None:
            raise ctx.unsupported(f"Slice of feature axis {axis}, whose size shape inference cannot determine")
        begin, stop = _normal(start, size), min(_normal(end, size), size)
        if cut is not None or stop <= begin:
            raise ctx.unsupported(f"Slice keeps features [{begin}, {stop}) of axis {axis}" +
                                  (" and cuts another axis" if cut is not None else ""))
        cut = (axis, begin, stop)
    if cut is None:
        return out_axes
    axis, begin, stop = cut
    ctx.emit(Slice(start=begin, size=stop - begin))
    out_axes[axis] = ctx.new_axis(FEATURE)
    return out_axes


def _normal(index: int, size: int | None) -> int:
    """A start/end index as a position from the start (ONNX clamps; a negative index counts from the end)."""
    if index < 0:
        return max(index + size, 0) if size is not None else index
    return int(np.clip(index, 0, size)) if size is not None else index


# ------------------------------------------------------------------ bounds computed from shapes
#: Time lengths at which shape-computed Slice bounds are evaluated (odd, coprime: -T matches only itself).
PROBE_LENGTHS = (7, 11)


def _shape_computed(ctx: NodeContext, indices) -> bool:
    return any(ctx.has_input(i) and ctx.graph.kind.get(ctx.node.input[i]) == "shape" for i in indices)


def _shape_computed_identity(ctx: NodeContext) -> list[int]:
    """``x[:, :, -out.size(2):]`` (PedalNetRT) exported with a dynamic time axis: the bounds are computed from
    tensor shapes. Evaluate them for two time lengths (every per-frame tensor has the input's length) and
    accept the Slice only if it keeps every frame at both: starts at 0 (or -T) and ends at T or beyond."""
    rank = len(ctx.in_axes)
    for length in PROBE_LENGTHS:
        starts, ends, axes, steps = (_probe(ctx, i, length) for i in (1, 2, 3, 4))
        axes = axes if axes is not None else list(range(len(starts)))
        steps = steps if steps is not None else [1] * len(starts)
        for axis, start, end, step in zip(axes, starts, ends, steps):
            axis = ctx.axis_index(int(axis), rank)
            dims = ctx.in_dims
            size = dims[axis] if dims and isinstance(dims[axis], int) else length
            if step != 1 or _normal(int(start), size) != 0 or min(int(end), TO_THE_END) < size:
                raise ctx.unsupported(f"Slice bounds computed from tensor shapes keep [{start}, {end}) of an axis of "
                                      f"{size} frames (evaluated at time length {length}): not every frame")
    return list(ctx.in_axes)


def _probe(ctx: NodeContext, index: int, length: int):
    """Input ``index`` of the node as integers when every data tensor's time axis has ``length`` frames."""
    if not ctx.has_input(index):
        return None
    return [int(v) for v in np.asarray(_evaluate(ctx, ctx.node.input[index], length, {})).reshape(-1)]


def _evaluate(ctx: NodeContext, name: str, length: int, memo: dict):
    from toolchain.converters.folding import CONST, evaluate_node

    graph = ctx.graph
    if name in memo:
        return memo[name]
    if graph.kind.get(name) == CONST:
        return graph.constants[name]
    node = graph.producer.get(name)
    if node is None or graph.kind.get(name) != "shape":
        raise ctx.unsupported(f"Slice bound '{name}' depends on the input's values, not only its shape")
    if node.op_type in ("Shape", "Size") and graph.kind.get(node.input[0]) == "data":
        shape = np.array([_length(ctx, node.input[0], axis, length) for axis in range(_rank(ctx, node.input[0]))], np.int64)
        inputs = [np.zeros(shape, np.float32)]
    else:
        inputs = [_evaluate(ctx, i, length, memo) if i else None for i in node.input]
    for output, value in zip(node.output, evaluate_node(node, inputs, graph.opsets)):
        memo[output] = np.asarray(value)
    return memo[name]


def _rank(ctx: NodeContext, tensor: str) -> int:
    axes = ctx.tensor_axes(tensor)
    if axes is None:
        raise ctx.unsupported(f"Slice bounds read the shape of '{tensor}', which is not on the path walked so far")
    return len(axes)


def _length(ctx: NodeContext, tensor: str, axis: int, length: int) -> int:
    """The size of ``tensor``'s ``axis``: its static size, ``length`` for the time axis, else 1 (batch, one)."""
    dims = ctx.graph.dims.get(tensor)
    dim = dims[axis] if dims and axis < len(dims) else None
    if isinstance(dim, int):
        return dim
    is_time = ctx.roles.roles(ctx.tensor_axes(tensor)[axis]) == {TIME} or hinted_role(dim) == TIME
    return length if is_time else 1
