"""Helpers shared by several converters: per-feature constants and size-preserving reshapes."""
from __future__ import annotations

import numpy as np

from toolchain.converters.axes import FEATURE, SINGLETON_ROLES, TIME
from toolchain.converters.context import NodeContext


def per_feature(ctx: NodeContext, value: np.ndarray, axes: list[int], what: str, dims=None) -> np.ndarray:
    """``value`` broadcast against a tensor with ``axes``, as one number per feature ([1] or [n]).

    A per-frame layer (a bias, a PReLU slope) holds one value per feature. A constant that varies
    along any other axis (time, batch) would make frames differ: refuse it. The axis it does vary
    along becomes (or must already be) the feature axis. ``dims`` are the tensor's inferred sizes
    (default: those of the node's data input).
    """
    value = np.asarray(value, dtype=np.float32)
    rank = len(axes)
    while value.ndim > rank and value.shape[0] == 1:
        value = value.reshape(value.shape[1:])
    if value.ndim > rank:
        raise ctx.unsupported(f"{what} of shape {list(value.shape)} adds axes to its rank-{rank} input")
    varying = [i for i in range(value.ndim) if value.shape[i] != 1]
    if not varying:
        return np.ascontiguousarray(value.reshape(1))
    if len(varying) > 1:
        raise ctx.unsupported(f"{what} of shape {list(value.shape)} varies along {len(varying)} axes; a per-frame layer holds one value per feature")
    axis = rank - value.ndim + varying[0]
    ctx.require(axes[axis], FEATURE, f"{what} varies along axis {axis} as per-feature values")
    dims = ctx.in_dims if dims is None else dims
    if dims is not None and len(dims) == rank and isinstance(dims[axis], int) and dims[axis] != value.shape[varying[0]]:
        raise ctx.invalid(f"{what} has {value.shape[varying[0]]} values along axis {axis}, which has {dims[axis]}")
    return np.ascontiguousarray(value.reshape(-1))


def _format(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def map_by_size(ctx: NodeContext, in_dims, out_dims, op: str) -> list[int]:
    """Output axes of a reshape that only inserts or removes size-1 axes.

    Row-major reshapes that keep the sequence of non-1 sizes keep every element where it was: the
    non-1 axes map one to one, in order. Anything else (merging batch and time, splitting features)
    regroups elements and is refused: we cannot prove it leaves each frame alone.
    """
    if in_dims is None or out_dims is None:
        raise ctx.unsupported(f"{op} with shapes that onnx shape inference cannot determine: cannot prove it keeps each frame intact")
    big_in = [(i, d) for i, d in enumerate(in_dims) if d != 1]
    big_out = [(j, d) for j, d in enumerate(out_dims) if d != 1]
    same = len(big_in) == len(big_out) and all(a is not None and a == b for (_, a), (_, b) in zip(big_in, big_out))
    if not same and len(big_in) == len(big_out):
        fixed = [(i, a, b) for (i, a), (_, b) in zip(big_in, big_out) if isinstance(a, str) and isinstance(b, int)]
        if fixed and all(a == b or isinstance(a, str) and isinstance(b, int) for (_, a), (_, b) in zip(big_in, big_out)):
            _pin_time(ctx, fixed, f"{op} {_format(in_dims)} -> {_format(out_dims)}")
            same = True
    if not same:
        raise ctx.unsupported(f"{op} {_format(in_dims)} -> {_format(out_dims)} regroups axes; only size-1 axes may appear or vanish")
    source = {j: i for (j, _), (i, _) in zip(big_out, big_in)}
    kept = set(source.values())
    for i, d in enumerate(in_dims):
        if i not in kept:
            ctx.require(ctx.in_axes[i], SINGLETON_ROLES, f"{op} removes size-1 axis {i}")
    return [ctx.in_axes[source[j]] if j in source else ctx.new_axis(SINGLETON_ROLES) for j in range(len(out_dims))]


def _pin_time(ctx: NodeContext, fixed: list[tuple[int, str, int]], what: str) -> None:
    """A reshape target that fixes the variable time axis to a number (torch 2.13's dynamo exporter bakes the
    example's length into the Reshape after a time-major RNN even with dynamic_shapes, and for Dim.AUTO).

    Every frame is still computed by itself, so the per-frame model is the same; only the ONNX graph is
    limited to that length (onnxruntime fails at any other). The length is recorded: the import gives it to
    the check as the model's fixed time length (fed in chunks of it), and says so in a note. A variable axis
    fixed that is not time, or two different lengths, are refused."""
    lengths = {length for _, _, length in fixed}
    if len(lengths) > 1:
        raise ctx.unsupported(f"{what} fixes variable axes to {sorted(lengths)}: the exporter baked example sizes into the graph")
    length = lengths.pop()
    for axis, name, _ in fixed:
        ctx.require(ctx.in_axes[axis], TIME, f"{what} fixes the variable axis '{name}' to {length}, which only the time "
                                            f"axis may be (the exporter baked the example's length into the graph)")
    pinned = ctx.state.pinned_time
    if pinned is not None and pinned[0] != length:
        raise ctx.unsupported(f"{what} fixes the time axis to {length} frames, but {pinned[1]} fixed it to {pinned[0]}")
    if pinned is None:
        ctx.state.pinned_time = (length, ctx.where)
        ctx.state.notes.append(
            f"{ctx.where}: {what} fixes the variable time axis to {length} frames (the exporter baked the example's "
            f"length into the graph, as torch 2.13's dynamo exporter does after a time-major RNN): the ONNX model runs "
            f"only at {length} frames per run, so check feeds it in runs of {length} from zero state; the converted model "
            f"runs per frame at any length (or export with dynamo=False and dynamic_axes, or batch_first)")
