"""Shape-only ops: removed, after proving from the axis roles that no frame changes.

Exporters wrap recurrent layers in these (batch_first becomes Transposes, the direction axis is
squeezed away, dynamo reshapes ``[T, 1, B, H]`` to ``[T, B, H]``). Each converter here emits no
layer: it only moves axis variables, constraining the axes it removes to be singletons.
"""
from __future__ import annotations

import numpy as np
import onnx

from toolchain.converters.axes import SINGLETON_ROLES
from toolchain.converters.common import map_by_size
from toolchain.converters.context import NodeContext
from toolchain.converters.conv2d import merge_map_axes
from toolchain.converters.registry import converter


@converter("Identity", shape_only=True, summary="removed")
def identity(ctx: NodeContext) -> list[int]:
    return list(ctx.in_axes)


@converter("Dropout", shape_only=True, summary="removed (inference mode only)")
def dropout(ctx: NodeContext) -> list[int]:
    # opset >= 12 takes training_mode as input #2; a constant False (or none) is inference.
    if ctx.has_input(2) and bool(ctx.constant(2, "training_mode").reshape(-1)[0]):
        raise ctx.unsupported("Dropout in training mode drops random values; export the model in eval() mode")
    return list(ctx.in_axes)


@converter("Cast", shape_only=True, summary="removed when it casts float32 to float32")
def cast(ctx: NodeContext) -> list[int]:
    if ctx.attr("to") != onnx.TensorProto.FLOAT:
        raise ctx.unsupported(f"Cast to {onnx.TensorProto.DataType.Name(ctx.attr('to'))} on the data path; RTNeural computes in float32")
    return list(ctx.in_axes)


@converter("Transpose", shape_only=True, summary="removed (axes followed through the permutation)")
def transpose(ctx: NodeContext) -> list[int]:
    rank = len(ctx.in_axes)
    perm = ctx.attr("perm") or list(range(rank))[::-1]
    if sorted(perm) != list(range(rank)):
        raise ctx.invalid(f"perm {perm} is not a permutation of {rank} axes")
    return [ctx.in_axes[p] for p in perm]


@converter("Squeeze", shape_only=True, summary="removed when it drops singleton (batch, direction) axes")
def squeeze(ctx: NodeContext) -> list[int]:
    rank = len(ctx.in_axes)
    axes = ctx.int_list("axes", 1)
    if axes is None:
        if ctx.in_dims is None:
            raise ctx.unsupported("Squeeze without axes on a tensor of unknown shape: cannot tell which axes go")
        axes = [i for i, d in enumerate(ctx.in_dims) if d == 1]
    removed = {ctx.axis_index(a, rank) for a in axes}
    for index in removed:
        if ctx.in_dims is not None and isinstance(ctx.in_dims[index], int) and ctx.in_dims[index] != 1:
            raise ctx.invalid(f"squeezes axis {index} of size {ctx.in_dims[index]}")
        ctx.require(ctx.in_axes[index], SINGLETON_ROLES, f"Squeeze removes axis {index}")
    return [axis for i, axis in enumerate(ctx.in_axes) if i not in removed]


@converter("Unsqueeze", shape_only=True, summary="removed (inserts singleton axes)")
def unsqueeze(ctx: NodeContext) -> list[int]:
    axes = ctx.int_list("axes", 1)
    if not axes:
        raise ctx.invalid("Unsqueeze without axes")
    rank = len(ctx.in_axes) + len(axes)
    inserted = {ctx.axis_index(a, rank) for a in axes}
    if len(inserted) != len(axes):  # e.g. [1, -3] on rank 3 (found by tests/hostile/fuzz.py)
        raise ctx.invalid(f"Unsqueeze axes {axes} name the same axis twice")
    remaining = iter(ctx.in_axes)
    return [ctx.new_axis(SINGLETON_ROLES) if i in inserted else next(remaining) for i in range(rank)]


@converter("Reshape", shape_only=True, summary="removed when it only inserts/removes size-1 axes")
def reshape(ctx: NodeContext) -> list[int]:
    merged = merge_map_axes(ctx, ctx.in_dims, ctx.out_dims, "Reshape")  # a 2-D map flattened to frames
    if merged is not None:
        return merged
    return map_by_size(ctx, ctx.in_dims, ctx.out_dims, "Reshape")


@converter("Flatten", shape_only=True, summary="removed when it only removes size-1 axes")
def flatten(ctx: NodeContext) -> list[int]:
    merged = merge_map_axes(ctx, ctx.in_dims, ctx.out_dims, "Flatten")
    if merged is not None:
        return merged
    return map_by_size(ctx, ctx.in_dims, ctx.out_dims, "Flatten")


@converter("Gather", shape_only=True, summary="removed when it takes the one index of a size-1 axis (NAM's x[:, :, 0]: a squeeze)")
def gather(ctx: NodeContext) -> list[int]:
    if ctx.data_index != 0:
        raise ctx.unsupported("Gather whose indices are computed from the model input (a data-dependent lookup)")
    rank = len(ctx.in_axes)
    axis = ctx.axis_index(int(ctx.attr("axis", 0)), rank)
    indices = np.asarray(ctx.constant(1, "indices"))
    size = ctx.in_dims[axis] if ctx.in_dims is not None and len(ctx.in_dims) == rank else None
    if indices.size != 1 or size != 1 or int(indices.reshape(-1)[0]) not in (0, -1):
        shown = "unknown" if size is None else size
        raise ctx.unsupported(f"Gather of indices {indices.reshape(-1)[:8].tolist()} along axis {axis} (size {shown}): it selects "
                              "features or frames; only taking the one element of a size-1 axis (a squeeze) is supported")
    ctx.require(ctx.in_axes[axis], SINGLETON_ROLES, f"Gather takes the one element of axis {axis}")
    if indices.ndim > 1:
        raise ctx.unsupported(f"Gather with {indices.ndim}-D indices adds axes")
    if indices.ndim == 0:  # a scalar index removes the axis; a [1] index keeps it
        return [a for i, a in enumerate(ctx.in_axes) if i != axis]
    return list(ctx.in_axes)
