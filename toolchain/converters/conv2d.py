"""``Conv`` over two axes -> ``conv2d``; ``BatchNormalization`` on 4-D maps -> ``batchnorm2d``; the Reshape
that flattens a 2-D map back to a frame vector.

RTNeural's conv2d (RTNeural/conv2d) sees each frame as a 2-D map, ``num_features`` x ``channels``,
flattened feature-major (value ``f * channels + c``); it convolves causally over time (like conv1d:
``(Kt-1)*dilation`` frames of history, stride 1) and over the feature axis with a stride and TensorFlow's
"valid" or "same" padding, without dilation. An ONNX ``Conv`` on ``[N, C, A, B]`` computes the same
function frame for frame when one spatial axis (time) is padded ``(Kt-1)*dilation`` zeros on the left
only -- in the Conv's own ``pads`` or by a ``Pad`` before it -- with stride 1, and the other (features) has
dilation 1 and pads of exactly "valid" (none) or "same" (``layers.conv2d_pads``). Anything else is refused.

In the axis-role proof (axes.py) the map's channel axis takes the role ``channel``. A ``Reshape`` that
merges the feature and channel axes into one makes a plain frame again: merged feature-major
(``[.., F, C] -> [.., F*C]``) it IS RTNeural's frame; merged channel-major (``[.., C, F] -> [.., C*F]``,
PyTorch's usual ``permute(0, 2, 1, 3).reshape(N, T, -1)``) it is a fixed permutation of it, which the next
weighted layer absorbs by permuting its input columns (:func:`apply_frame_orders`).
"""
from __future__ import annotations

import numpy as np

from toolchain.converters.axes import BATCH, CHANNEL, FEATURE, ONE, TIME, hinted_role
from toolchain.converters.context import NodeContext
from toolchain.errors import UnsupportedError
from toolchain.layers import GRU, LSTM, Activation, BatchNorm, BatchNorm2D, Conv1D, Conv2D, Dense, PRelu, conv2d_pads, f32


def _spatial_time_axis(ctx: NodeContext, pads: list[int]) -> int:
    """Which of the two spatial axes (2 or 3) is time: the one a pending Pad pads, else the one already
    known as time, else the one named like time, else the one padded causally, else axis 2 ([N, C, T, F])."""
    options = [a for a in (2, 3) if TIME in ctx.roles.roles(ctx.in_axes[a]) and FEATURE in ctx.roles.roles(ctx.in_axes[5 - a])]
    if not options:
        raise ctx.unsupported("2-D Conv: neither spatial axis can be time with the other the feature axis "
                              f"(axes 2 and 3 are {sorted(ctx.roles.roles(ctx.in_axes[2]))} and {sorted(ctx.roles.roles(ctx.in_axes[3]))})")
    pending = ctx.state.pending_pad
    for test in (lambda a: pending is not None and ctx.roles.same(pending.time_axis, ctx.in_axes[a]),
                 lambda a: ctx.roles.role(ctx.in_axes[a]) == TIME,
                 lambda a: ctx.in_dims is not None and hinted_role(ctx.in_dims[a]) == TIME,
                 lambda a: pads[a - 2] > 0 and pads[a] == 0,
                 lambda a: a == 2):
        chosen = [a for a in options if test(a)]
        if chosen:
            return chosen[0]
    return options[0]


def _input_dims(ctx: NodeContext):
    """The Conv input's sizes, with the ones shape inference lost behind a Pad (the legacy exporter's
    ``F.pad`` computes its pads at run time) taken from the Pad's own input: a Pad the walk accepted
    changes the time axis only."""
    dims = list(ctx.in_dims) if ctx.in_dims is not None else None
    tensor = ctx.node.input[0]
    while dims is not None and any(not isinstance(d, int) for d in dims):
        producer = next((n for n in ctx.graph.nodes if tensor in n.output), None)
        if producer is None or producer.op_type not in ("Pad", "Identity", "Cast") or not producer.input:
            break
        tensor = producer.input[0]
        before = ctx.graph.dims.get(tensor)
        if before is None or len(before) != len(dims):
            break
        dims = [d if isinstance(d, int) or producer.op_type != "Pad" or not isinstance(b, int) else b for d, b in zip(dims, before)]
    return dims


def convert_conv2d(ctx: NodeContext, weight: np.ndarray) -> list[int]:
    """A 4-D ``W [out, in, kA, kB]`` Conv (called by converters/conv.py)."""
    if len(ctx.in_axes) != 4:
        raise ctx.unsupported(f"2-D Conv on a rank-{len(ctx.in_axes)} tensor; expected [N, C, time, features]")
    if int(ctx.attr("group", 1)) != 1:
        raise ctx.unsupported(f"2-D Conv with group={ctx.attr('group')}: RTNeural's conv2d has no groups")
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise ctx.unsupported(f"2-D Conv with auto_pad={auto_pad}: centres the kernel over time too (each output needs future "
                              "frames); pad the time axis on the left only and the feature axis explicitly")
    pads = [int(p) for p in (ctx.attr("pads") or [0, 0, 0, 0])] if auto_pad == "NOTSET" else [0, 0, 0, 0]
    strides = [int(s) for s in (ctx.attr("strides") or [1, 1])]
    dilations = [int(d) for d in (ctx.attr("dilations") or [1, 1])]
    if len(pads) != 4 or len(strides) != 2 or len(dilations) != 2:
        raise ctx.invalid(f"pads {pads}, strides {strides}, dilations {dilations} do not describe a 2-D Conv")
    kernel = list(ctx.attr("kernel_shape") or weight.shape[2:])
    if kernel != list(weight.shape[2:]):
        raise ctx.invalid(f"kernel_shape {kernel} contradicts W's {list(weight.shape[2:])}")
    time = _spatial_time_axis(ctx, pads)
    feature = 5 - time
    t, f = time - 2, feature - 2  # index into kernel/strides/dilations (pads: begin t, f; end t+2, f+2)
    dims = _input_dims(ctx) or [None] * 4
    features_in = dims[feature]
    known = map_shape(ctx)
    if not isinstance(features_in, int) and known is not None:
        features_in = known[0]
        dims[1] = known[1] if not isinstance(dims[1], int) else dims[1]
    if not isinstance(features_in, int):
        raise ctx.unsupported(f"2-D Conv: the feature axis (axis {feature}) has no fixed size")
    if weight.shape[1] != (dims[1] if isinstance(dims[1], int) else weight.shape[1]):
        raise ctx.invalid(f"W takes {weight.shape[1]} channels but the input has {dims[1]}")
    # time: causal, stride 1
    if strides[t] != 1:
        raise ctx.unsupported(f"2-D Conv with stride {strides[t]} over time (axis {time}): RTNeural's conv2d outputs one frame per input frame")
    needed = (kernel[t] - 1) * dilations[t]
    pending = ctx.state.pending_pad
    if pending and not ctx.roles.same(pending.time_axis, ctx.in_axes[time]):
        raise ctx.unsupported(f"the Pad at {pending.where} pads a different axis than this Conv's time axis (axis {time})")
    left = pads[t] + (pending.frames if pending else 0)
    ctx.state.pending_pad = None
    if pads[t + 2] != 0:
        raise ctx.unsupported(f"2-D Conv pads the time axis (axis {time}) with {pads[t + 2]} frames on the right (pads={pads}): its "
                              f"output at frame t needs frames after t; RTNeural's conv2d is causal (pad (Kt-1)*dilation = {needed} on the left only)")
    if left != needed:
        raise ctx.unsupported(f"2-D Conv with {left} frames of left padding on the time axis (axis {time}) but (Kt-1)*dilation = {needed}: "
                              + ("the output would be the streaming output shifted by "
                                 f"{needed - left} frames" if left < needed else f"the output would be delayed by {left - needed} frames"))
    # features: no dilation, valid or TensorFlow-same padding
    if dilations[f] != 1:
        raise ctx.unsupported(f"2-D Conv with dilation {dilations[f]} over the feature axis (axis {feature}): RTNeural's conv2d dilates time only")
    if kernel[f] > features_in:
        raise ctx.unsupported(f"2-D Conv kernel of {kernel[f]} features is wider than the {features_in} features")
    feature_pads = (pads[f], pads[f + 2])
    modes = [valid for valid in (True, False) if conv2d_pads(features_in, kernel[f], strides[f], valid) == feature_pads]
    if not modes:
        same = conv2d_pads(features_in, kernel[f], strides[f], False)
        raise ctx.unsupported(f"2-D Conv pads the feature axis (axis {feature}) by {list(feature_pads)}: RTNeural's conv2d pads features "
                              f"either not at all (\"valid\") or by {list(same)} (\"same\" for {features_in} features, kernel "
                              f"{kernel[f]}, stride {strides[f]})")
    bias = ctx.optional_weight(2, "bias B", ndim=1)
    canonical = weight if time == 2 else weight.transpose(0, 1, 3, 2)
    ctx.require(ctx.in_axes[0], {BATCH, ONE}, "2-D Conv treats this axis as batch")
    ctx.require(ctx.in_axes[1], CHANNEL, "2-D Conv reads this axis as channels")
    ctx.require(ctx.in_axes[time], TIME, "2-D Conv slides causally over this axis as time")
    ctx.require(ctx.in_axes[feature], FEATURE, "2-D Conv slides over this axis as features")
    ctx.emit(Conv2D(f32(canonical), f32(bias if bias is not None else np.zeros(weight.shape[0])), num_features_in=features_in,
                    dilation=dilations[t], stride=strides[f], valid_pad=modes[0]))
    out = list(ctx.in_axes)
    out[1], out[feature] = ctx.new_axis(CHANNEL), ctx.new_axis(FEATURE)
    return out


def convert_batchnorm2d(ctx: NodeContext, gamma, beta, mean, var, epsilon: float) -> list[int]:
    """BatchNormalization on a 4-D ``[N, C, A, B]`` map (called by converters/activations.py)."""
    ctx.require(ctx.in_axes[1], CHANNEL, "BatchNormalization on a 4-D map normalises channels along axis 1")
    feature = next((a for a in (3, 2) if ctx.roles.role(ctx.in_axes[a]) == FEATURE), None)
    if feature is None:  # no conv2d decided it yet: the conventional [N, C, time, features]
        feature = 3
    ctx.require(ctx.in_axes[feature], FEATURE, "batchnorm2d reads this axis as features")
    ctx.require(ctx.in_axes[5 - feature], {TIME, BATCH, ONE}, "batchnorm2d steps over this axis as time")
    features = ctx.in_dims[feature] if ctx.in_dims is not None else None
    if not isinstance(features, int) and map_shape(ctx) is not None:
        features = map_shape(ctx)[0]
    if not isinstance(features, int):
        raise ctx.unsupported(f"BatchNormalization on a 4-D map whose feature axis (axis {feature}) has no fixed size")
    ctx.emit(BatchNorm2D(gamma, beta, mean, var, num_features=features, epsilon=epsilon))
    return list(ctx.in_axes)


def conv2d_without_activation(ctx: NodeContext) -> Conv2D | None:
    """The previous layer if it is a conv2d with no activation yet whose output only this node reads
    (an activation then merges into it, as into a dense/conv1d)."""
    previous = ctx.state.layers[-1] if ctx.state.layers and ctx.foldable else None
    return previous if isinstance(previous, Conv2D) and previous.activation == "" else None


# ------------------------------------------------------------------------------------- flattening
def map_shape(ctx: NodeContext) -> tuple[int, int] | None:
    """(features, channels) of the 2-D map the node's data input holds, from the layers that computed it
    (shape inference loses them behind the legacy exporter's run-time Pad); None if no map layer did."""
    value = ctx.value
    while value > 0:
        layer = ctx.state.layers[value - 1]
        if isinstance(layer, Conv2D):
            return layer.num_features_out, layer.filters_out
        if isinstance(layer, BatchNorm2D):
            return layer.num_features, layer.channels
        if not isinstance(layer, (Activation, PRelu)):
            return None
        value = layer.inputs[0] if layer.inputs else value - 1
    return None


def merge_map_axes(ctx: NodeContext, in_dims, out_dims, op: str) -> list[int] | None:
    """Output axes of a Reshape/Flatten that merges a 2-D map's feature and channel axes into one frame
    axis, all other axes kept in place; None when the input is no 2-D map (then the ordinary rule
    applies). A channel-major merge records the frame permutation for the next layer."""
    channel = next((i for i, axis in enumerate(ctx.in_axes) if ctx.roles.role(axis) == CHANNEL), None)
    feature = next((i for i, axis in enumerate(ctx.in_axes) if ctx.roles.role(axis) == FEATURE), None)
    if channel is None:
        return None
    known = map_shape(ctx)
    features = in_dims[feature] if in_dims is not None and feature is not None and isinstance(in_dims[feature], int) else (known or (None,))[0]
    channels = in_dims[channel] if in_dims is not None and isinstance(in_dims[channel], int) else (known or (None, None))[1]
    if channels == 1 and in_dims is not None and in_dims[channel] == 1:
        return None  # a one-channel map is a plain frame: the ordinary size-1 rule applies
    if feature is None or abs(feature - channel) != 1 or not isinstance(features, int) or not isinstance(channels, int):
        raise ctx.unsupported(f"{op} of a 2-D feature map: only merging its adjacent feature and channel axes into one frame "
                              f"axis keeps each frame intact (input axes {list(in_dims) if in_dims else '?'})")
    first = min(feature, channel)
    rank = len(ctx.in_axes)
    if out_dims is None or len(out_dims) != rank - 1:
        raise ctx.unsupported(f"{op} to shape {list(out_dims) if out_dims else '?'}: only merging the 2-D map's feature and channel "
                              f"axes (a rank-{rank - 1} result) is proven to keep each frame intact")
    if isinstance(out_dims[first], int) and out_dims[first] != features * channels:
        raise ctx.unsupported(f"{op} makes an axis of {out_dims[first]} from the {features}x{channels} map")
    others = [i for i in range(rank) if i not in (feature, channel)]
    for i, j in zip(others, [j for j in range(rank - 1) if j != first]):
        a, b = (in_dims[i] if in_dims else None), out_dims[j]
        if isinstance(a, int) and isinstance(b, int) and a != b:
            raise ctx.unsupported(f"{op} {list(in_dims)} -> {list(out_dims)} regroups more than the 2-D map's feature and channel axes")
    if channel < feature:  # channel-major: frame[c * F + f] holds RTNeural's [f * C + c]
        order = (np.arange(channels)[None, :] * features + np.arange(features)[:, None]).reshape(-1)
        ctx.state.frame_orders.append((len(ctx.state.layers), order, ctx.where))
        ctx.state.notes.append(f"{ctx.where}: flattens the {features}x{channels} map channel-major; the next weighted layer's "
                               "inputs were permuted to RTNeural's feature-major frame")
    merged = ctx.new_axis(FEATURE)
    return [ctx.in_axes[i] for i in range(first)] + [merged] + [ctx.in_axes[i] for i in range(first + 2, rank)]


def apply_frame_orders(state) -> None:
    """Let the first weighted layer after each channel-major flatten read RTNeural's feature-major frame.

    ``order[i]`` is the position in the ONNX frame of RTNeural's value ``i``; the layer's input columns
    are gathered by it. Elementwise layers in between commute with the permutation (per-feature vectors
    are gathered too); a frame that reaches the output unabsorbed is refused (its order would differ)."""
    for start, order, where in state.frame_orders:
        for index, layer in enumerate(state.layers[start:], start=start):
            if layer.inputs and tuple(layer.inputs) != (index,):  # the order would have to follow a branch
                raise UnsupportedError("flattens a 2-D map channel-major inside a branching graph: RTNeural's frame is "
                                       "feature-major; flatten as permute(0, 2, 3, 1).reshape(N, T, F*C)", where=where)
            if isinstance(layer, Dense):
                layer.weight = f32(layer.weight[:, order])
                break
            if isinstance(layer, (LSTM, GRU)):
                layer.weight_ih = f32(layer.weight_ih[:, order])
                break
            if isinstance(layer, Conv1D) and layer.groups == 1:
                layer.weight = f32(layer.weight[:, order, :])
                break
            if isinstance(layer, BatchNorm):
                layer.gamma, layer.beta, layer.mean, layer.var = (f32(v[order]) for v in (layer.gamma, layer.beta, layer.mean, layer.var))
            elif isinstance(layer, PRelu) and layer.alpha.shape[0] > 1:
                layer.alpha = f32(layer.alpha[order])
            elif not isinstance(layer, (Activation, PRelu)):
                raise UnsupportedError(f"flattens a 2-D map channel-major and a {layer.kind} layer follows: RTNeural's frame is "
                                       "feature-major; flatten as permute(0, 2, 3, 1).reshape(N, T, F*C)", where=where)
        else:
            raise UnsupportedError("flattens a 2-D map channel-major and no weighted layer follows to absorb the order: the "
                                   "output frame would differ from RTNeural's feature-major one; flatten as "
                                   "permute(0, 2, 3, 1).reshape(N, T, F*C)", where=where)
