"""``Conv`` over one axis (+ a causal left ``Pad``) -> ``conv1d``.

RTNeural's conv1d is causal and streaming: each output frame uses the current frame and the
``(K-1)*dilation`` frames before it, stride 1. An ONNX Conv computes the same function frame for
frame exactly when the time axis is padded with ``(K-1)*dilation`` zeros on the left and none on the
right -- written either as ``pads=[(K-1)*d, 0]`` (what the dynamo exporter emits) or as a ``Pad`` node
followed by a valid Conv (what ``F.pad(x, (p, 0))`` exports with dynamo=False). Anything else
produces a shifted, shortened or decimated output: refused, with the reason -- unless a Slice drops
exactly the frames that make it non-causal (:mod:`causal_trim`, PedalNetRT's ``CausalConv1d``).
"""
from __future__ import annotations

import numpy as np

from toolchain.converters.axes import BATCH, FEATURE, ONE, TIME
from toolchain.converters.causal_trim import expect_trim, find_trim
from toolchain.converters.context import NodeContext, PendingPad
from toolchain.converters.conv2d import convert_conv2d
from toolchain.converters.registry import converter
from toolchain.layers import Conv1D, f32


@converter("Pad", shape_only=False, summary="merged into the next Conv as its causal left padding (zeros, time axis, left only)")
def pad(ctx: NodeContext) -> list[int]:
    rank = len(ctx.in_axes)
    mode = ctx.attr("mode", "constant")
    if mode != "constant":
        raise ctx.unsupported(f"Pad mode '{mode}': RTNeural's causal conv1d pads with zeros")
    pads = ctx.int_list("pads", 1 if ctx.opset >= 11 else None)
    value = ctx.weight(2, "pad value") if ctx.opset >= 11 and ctx.has_input(2) else np.float32(ctx.attr("value", 0.0))
    if np.any(np.asarray(value) != 0):
        raise ctx.unsupported("Pad with a non-zero value: RTNeural's causal conv1d pads with zeros")
    axes = ctx.int_list("axes", 3) if ctx.opset >= 18 else None
    axes = [ctx.axis_index(a, rank) for a in axes] if axes else list(range(rank))
    if pads is None or len(pads) != 2 * len(axes):
        raise ctx.invalid(f"pads {pads} do not match {len(axes)} axes")
    begins, ends = pads[: len(axes)], pads[len(axes):]
    if any(e != 0 for e in ends):
        raise ctx.unsupported(f"Pad adds {max(ends)} values after the end of an axis (right padding): "
                              "a streaming layer cannot see frames that have not arrived")
    padded = [axis for axis, begin in zip(axes, begins) if begin != 0]
    if any(b < 0 for b in begins) or len(padded) > 1:
        raise ctx.unsupported(f"Pad {pads} crops or pads several axes; only a left pad of the time axis is causal")
    if padded:
        axis = ctx.in_axes[padded[0]]
        ctx.require(axis, TIME, "Pad adds zeros before the first frame along this axis (a causal delay)")
        frames = begins[axes.index(padded[0])]
        previous = ctx.state.pending_pad
        ctx.state.pending_pad = PendingPad(frames + (previous.frames if previous else 0), axis, ctx.where)
    return list(ctx.in_axes)


def _padding(ctx: NodeContext, kernel_size: int) -> tuple[int, int]:
    """The Conv's own (left, right) padding; refuses 'same' padding."""
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        raise ctx.unsupported(f"Conv with auto_pad={auto_pad} ('same' padding) centres the kernel: each output needs "
                              "future frames, and a streaming conv1d would output it shifted; pad only on the left instead")
    if auto_pad not in ("NOTSET", "VALID"):
        raise ctx.invalid(f"unknown auto_pad {auto_pad!r}")
    pads = ctx.attr("pads", [0, 0]) if auto_pad == "NOTSET" else [0, 0]
    if len(pads) != 2:
        raise ctx.invalid(f"pads {pads} for a 1-D Conv")
    return int(pads[0]), int(pads[1])


@converter("Conv", summary="conv1d (1-D, stride 1, causal: left padding (K-1)*dilation); conv2d (2-D: time causal as conv1d, features valid/same with a stride, no groups)")
def conv(ctx: NodeContext) -> list[int]:
    if ctx.data_index != 0:
        raise ctx.unsupported("Conv whose weight is computed from the model input (a dynamic weight)")
    weight = ctx.weight(1, "weight W")
    if weight.ndim == 4:  # over two axes: RTNeural's conv2d
        return convert_conv2d(ctx, weight)
    if weight.ndim != 3 or len(ctx.in_axes) != 3:
        raise ctx.unsupported(f"{weight.ndim - 2}-D Conv; RTNeural's conv1d convolves over one (time) axis")
    out_channels, channels_per_group, kernel_size = weight.shape
    dilation = int((ctx.attr("dilations") or [1])[0])
    groups = int(ctx.attr("group", 1))
    strides = ctx.attr("strides") or [1]
    if list(ctx.attr("kernel_shape") or [kernel_size]) != [kernel_size]:
        raise ctx.invalid(f"kernel_shape {ctx.attr('kernel_shape')} contradicts W's {kernel_size} taps")
    if list(strides) != [1]:
        raise ctx.unsupported(f"Conv with stride {strides[0]}: the output has 1/{strides[0]} of the frames; "
                              "RTNeural's conv1d outputs one frame per input frame (stride 1)")
    if groups < 1 or out_channels % groups:
        raise ctx.invalid(f"group {groups} does not divide {out_channels} output channels")
    needed = (kernel_size - 1) * dilation
    pending = ctx.state.pending_pad
    left, right = _padding(ctx, kernel_size)
    total = left + (pending.frames if pending else 0)
    if pending and not ctx.roles.same(pending.time_axis, ctx.in_axes[2]):
        raise ctx.unsupported(f"the Pad at {pending.where} pads a different axis than this Conv's time axis")
    ctx.state.pending_pad = None
    right_refusal = (f"Conv with right padding {right} (pads={[left, right]}): its output at frame t needs frames after t; "
                     f"RTNeural's conv1d is causal (use pads=[(K-1)*dilation, 0])")
    if right and total < needed:
        raise ctx.unsupported(right_refusal)
    if total < needed:
        raise ctx.unsupported(f"Conv with {total} frames of left padding but (K-1)*dilation = {needed}: a valid (unpadded) "
                              f"convolution's output is the streaming output shifted by {needed - total} frames (and shorter); "
                              f"pad {needed} zeros on the left to make it causal")
    if right:
        expect_trim(ctx, total - needed, right, ctx.in_axes[2], right_refusal)
    elif total > needed and not find_trim(ctx, total - needed, 0, ctx.in_axes[2], exact_start=True):
        # More left padding than the causal (K-1)*dilation delays the output: walk.py refuses the delayed
        # stream where a layer, the output or an undelayed branch reads it (naming both branches).
        ctx.state.delay = total - needed
        ctx.state.delay_reason = (f"Conv with {total} frames of left padding but (K-1)*dilation = {needed}: "
                                  f"the output would be delayed by {total - needed} frames")
    bias = ctx.optional_weight(2, "bias B", ndim=1)
    batch, channels, time = ctx.in_axes
    ctx.require(batch, {BATCH, ONE}, "Conv treats this axis as batch")
    ctx.require(channels, FEATURE, "Conv reads this axis as channels")
    ctx.require(time, TIME, "Conv slides over this axis as time")
    if channels_per_group * groups != (ctx.in_dims[1] if ctx.in_dims and isinstance(ctx.in_dims[1], int) else channels_per_group * groups):
        raise ctx.invalid(f"W takes {channels_per_group * groups} channels but the input has {ctx.in_dims[1]}")
    ctx.emit(Conv1D(f32(weight), f32(bias if bias is not None else np.zeros(out_channels)), dilation=dilation, groups=groups))
    return [batch, ctx.new_axis(FEATURE), time]
