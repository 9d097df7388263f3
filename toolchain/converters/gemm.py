"""``Gemm``, ``MatMul`` (+ ``Add``/``Sub`` of a constant) -> ``dense``.

PyTorch exports ``nn.Linear`` on a 2-D input as one Gemm, and on a 3-D ``[batch, time, feature]``
input as ``MatMul(x, W^T)`` followed by ``Add(bias)``. The Add merges into the dense layer's bias.
"""
from __future__ import annotations

import numpy as np

from toolchain.converters.axes import FEATURE
from toolchain.converters.common import per_feature
from toolchain.converters.context import NodeContext
from toolchain.converters.registry import converter
from toolchain.layers import Dense, f32


@converter("Gemm", summary="dense (constant B and C, input 2-D [rows, features])")
def gemm(ctx: NodeContext) -> list[int]:
    if ctx.data_index != 0:
        raise ctx.unsupported("Gemm with a constant A and the model input as B; only the input as A is supported")
    if len(ctx.in_axes) != 2:
        raise ctx.invalid(f"Gemm needs a 2-D input, got rank {len(ctx.in_axes)}")
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    contracted = 0 if ctx.attr("transA", 0) else 1
    rows = ctx.in_axes[1 - contracted]
    ctx.require(ctx.in_axes[contracted], FEATURE, "Gemm contracts over this axis as features")
    b = ctx.weight(1, "weight B", ndim=2)
    kernel = b if ctx.attr("transB", 0) else b.T  # -> [out, in]
    out_axes = [ctx.new_axis(FEATURE)]
    out_axes.insert(0, rows)
    bias = np.zeros(kernel.shape[0], np.float32)
    c = ctx.optional_weight(2, "bias C")
    if c is not None:
        vector = per_feature(ctx, c, out_axes, "bias C", dims=ctx.out_dims)
        if vector.size not in (1, kernel.shape[0]):  # e.g. transB contradicting B's layout (found by tests/hostile/fuzz.py)
            raise ctx.invalid(f"bias C has {vector.size} values for {kernel.shape[0]} outputs")
        bias = bias + vector * np.float32(beta)
    ctx.emit(Dense(f32(kernel * np.float32(alpha)), f32(np.broadcast_to(bias, kernel.shape[:1]))))
    return out_axes


@converter("MatMul", summary="dense (one operand a constant 2-D matrix)")
def matmul(ctx: NodeContext) -> list[int]:
    weight_index = 1 - ctx.data_index
    weight = ctx.weight(weight_index, "weight", ndim=None)
    if weight.ndim != 2:
        raise ctx.unsupported(f"MatMul with a {weight.ndim}-D constant operand; a dense layer needs a 2-D matrix")
    rank = len(ctx.in_axes)
    # x @ W contracts x's last axis; W @ x contracts x's second-to-last (x is then [..., features, rows]).
    contracted = rank - 1 if ctx.data_index == 0 else rank - 2
    if contracted < 0:
        raise ctx.unsupported("MatMul of a constant matrix with a 1-D input")
    ctx.require(ctx.in_axes[contracted], FEATURE, "MatMul contracts over this axis as features")
    kernel = weight.T if ctx.data_index == 0 else weight  # -> [out, in]
    out_axes = list(ctx.in_axes)
    out_axes[contracted] = ctx.new_axis(FEATURE)
    ctx.emit(Dense(f32(kernel), np.zeros(kernel.shape[0], np.float32)))
    return out_axes


@converter("Add", "Sub", summary="merged into the preceding dense/conv1d bias (constant operand)")
def add_bias(ctx: NodeContext) -> list[int]:
    op = ctx.node.op_type
    if op == "Sub" and ctx.data_index != 0:
        raise ctx.unsupported("Sub of the model data from a constant (c - x) is not a bias")
    value = ctx.weight(1 - ctx.data_index, "added constant")
    layer = ctx.foldable_layer()
    if layer is None:
        raise ctx.unsupported(f"{op} of a constant that no preceding dense/conv1d layer without activation can absorb "
                              "(RTNeural has no bias-only layer)")
    vector = per_feature(ctx, value, ctx.in_axes, "added constant")
    if vector.size not in (1, layer.out_size):
        raise ctx.invalid(f"added constant has {vector.size} values for {layer.out_size} features")
    layer.bias = f32(layer.bias + (-vector if op == "Sub" else vector))
    return list(ctx.in_axes)
