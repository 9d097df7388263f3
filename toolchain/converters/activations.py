"""Activations, ``PRelu``/``LeakyRelu`` and ``BatchNormalization``: per-feature, stateless layers.

An activation directly after a dense or conv1d layer without one becomes that layer's
``activation`` field (what RTNeural's own exporter writes); anywhere else it is an ``activation``
layer. Sizes of size-agnostic layers are filled in once the chain is complete (see walk.py).
"""
from __future__ import annotations

import logging

import numpy as np

from toolchain.converters.axes import FEATURE
from toolchain.converters.common import per_feature
from toolchain.converters.context import NodeContext
from toolchain.converters.conv2d import conv2d_without_activation, convert_batchnorm2d
from toolchain.converters.registry import converter
from toolchain.layers import Activation, BatchNorm, PRelu, f32

log = logging.getLogger(__name__)

RTNEURAL_NAMES = {"Tanh": "tanh", "Relu": "relu", "Sigmoid": "sigmoid", "Softmax": "softmax", "Elu": "elu"}

SOFTMAX_NOTE = ("softmax: RTNeural computes exp(x)/sum(exp(x)) without subtracting the maximum, so inputs "
                "above ~88 overflow to Inf/NaN in float32 (onnxruntime subtracts the maximum)")


def _activation(ctx: NodeContext, name: str) -> list[int]:
    layer = ctx.foldable_layer() or conv2d_without_activation(ctx)
    if layer is not None:
        layer.activation = name
    else:
        ctx.emit(Activation(activation=name, size=0))
    return list(ctx.in_axes)


@converter("Tanh", "Relu", "Sigmoid", summary="activation field of the preceding dense/conv1d, else an activation layer")
def elementwise(ctx: NodeContext) -> list[int]:
    return _activation(ctx, RTNEURAL_NAMES[ctx.node.op_type])


@converter("Elu", summary="elu activation (alpha = 1 only: RTNeural fixes it)")
def elu(ctx: NodeContext) -> list[int]:
    alpha = float(ctx.attr("alpha", 1.0))
    if alpha != 1.0:
        raise ctx.unsupported(f"Elu with alpha={alpha:g}; RTNeural's elu has alpha fixed at 1")
    return _activation(ctx, "elu")


@converter("Softmax", summary="softmax activation (over the feature axis only)")
def softmax(ctx: NodeContext) -> list[int]:
    rank = len(ctx.in_axes)
    axis = ctx.axis_index(int(ctx.attr("axis", -1 if ctx.opset >= 13 else 1)), rank)
    if ctx.opset < 13 and axis != rank - 1:
        # Before opset 13 Softmax normalises over all axes from `axis` on, flattened together.
        raise ctx.unsupported(f"Softmax (opset {ctx.opset}) with axis={axis} normalises over axes {list(range(axis, rank))} together; "
                              "RTNeural's softmax covers one frame's features only")
    ctx.require(ctx.in_axes[axis], FEATURE, f"Softmax normalises over axis {axis}")
    log.info(SOFTMAX_NOTE)
    if SOFTMAX_NOTE not in ctx.state.notes:
        ctx.state.notes.append(SOFTMAX_NOTE)
    return _activation(ctx, "softmax")


@converter("PRelu", summary="prelu (slope shared or one per feature)")
def prelu(ctx: NodeContext) -> list[int]:
    alpha = per_feature(ctx, ctx.weight(1, "slope"), ctx.in_axes, "slope")
    ctx.emit(PRelu(f32(alpha), size=alpha.size if alpha.size > 1 else 0))
    return list(ctx.in_axes)


@converter("LeakyRelu", summary="prelu with one shared slope")
def leaky_relu(ctx: NodeContext) -> list[int]:
    ctx.emit(PRelu(np.array([ctx.attr("alpha", 0.01)], np.float32), size=0))
    return list(ctx.in_axes)


@converter("BatchNormalization", summary="batchnorm (inference mode, channels on axis 1); batchnorm2d on a 4-D [N, C, time, features] map")
def batch_normalization(ctx: NodeContext) -> list[int]:
    if ctx.attr("training_mode", 0):
        raise ctx.unsupported("BatchNormalization in training mode uses batch statistics; export the model in eval() mode")
    if len(ctx.in_axes) < 2:
        raise ctx.invalid("BatchNormalization needs an input of rank >= 2 ([N, C, ...])")
    gamma, beta, mean, var = (ctx.weight(i, what, ndim=1) for i, what in enumerate(("scale", "bias B", "input_mean", "input_var"), start=1))
    if not gamma.shape == beta.shape == mean.shape == var.shape:
        raise ctx.invalid(f"scale, B, mean and var have different lengths {[len(gamma), len(beta), len(mean), len(var)]}")
    if len(ctx.in_axes) == 4:  # a [N, C, time, features] map: RTNeural's batchnorm2d
        return convert_batchnorm2d(ctx, gamma, beta, mean, var, float(ctx.attr("epsilon", 1e-5)))
    ctx.require(ctx.in_axes[1], FEATURE, "BatchNormalization normalises channels along axis 1")
    ctx.emit(BatchNorm(gamma, beta, mean, var, epsilon=float(ctx.attr("epsilon", 1e-5))))
    return list(ctx.in_axes)
