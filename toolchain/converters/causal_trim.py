"""The "padded Conv, then slice off the future" idiom -> a causal conv1d.

PyTorch code rarely pads only on the left. PedalNetRT's ``CausalConv1d`` and most TCN repositories write
``nn.Conv1d(..., padding=(K-1)*d)`` (zeros on BOTH sides) and then ``y[..., :-(K-1)*d]``: the conv over
the padded sequence has ``(K-1)*d`` extra frames at the end, each needing future input, and the slice
drops exactly those. What is left is the causal convolution, frame for frame.

In general a Conv with left padding ``L >= (K-1)*d`` and right padding ``R`` outputs frame ``j`` =
causal frame ``j - lead`` with ``lead = L - (K-1)*d``; a Slice along time keeping ``[lead, len - R)``
leaves exactly the causal output. The Conv converter checks (:func:`expect_trim`) that such a Slice
follows on the data path -- through shape-only ops and per-frame elementwise ops only, as in
``tanh(conv(x))[..., :-p]`` -- and emits its conv1d; the Slice converter (``merges.slice_``) hands that
Slice to :func:`trim_slice`, which proves its bounds against what the Conv left pending. Any other bound is refused, naming the frame shift.
"""
from __future__ import annotations

from dataclasses import dataclass

from toolchain.converters.context import NodeContext
from toolchain.converters.folding import DATA
from toolchain.converters.registry import REGISTRY

#: Per-frame ops that may sit between the padded Conv and its Slice: they compute each frame from that
#: frame alone, so the extra frames they also compute are simply dropped with the rest.
PER_FRAME = {"Tanh", "Relu", "Sigmoid", "Elu", "LeakyRelu", "PRelu", "BatchNormalization", "Add", "Sub", "Softmax"}
#: ONNX's "to the end" for Slice ends (int64 max; exporters also write int32 max).
TO_THE_END = 1 << 31


@dataclass
class PendingTrim:
    """A Conv computed with ``lead`` frames of delay and ``tail`` future frames, awaiting its Slice."""

    lead: int
    tail: int
    time_axis: int
    where: str


def find_trim(ctx: NodeContext, lead: int, tail: int, time_axis: int, exact_start: bool = False) -> bool:
    """If a Slice follows this Conv on the data path (through shape-only and per-frame ops, each the only
    reader of the previous), record the trim it must perform and return True. ``exact_start``: only a Slice
    that starts at ``lead`` counts (a merely delayed Conv keeps walk.py's delay tracking otherwise)."""
    tensor = ctx.node.output[0]
    for _ in range(64):  # the path to the Slice is short; a bound keeps a hostile graph from looping
        readers = [n for n in ctx.graph.consumers(tensor) if any(ctx.graph.kind.get(o) == DATA for o in n.output)]
        if len(readers) != 1:
            return False
        reader = readers[0]
        if reader.op_type == "Slice":
            if exact_start and _constant_starts(ctx, reader) != [lead]:
                return False
            ctx.state.pending_trim = PendingTrim(lead, tail, time_axis, ctx.where)
            return True
        entry = REGISTRY.get(reader.op_type)
        if reader.op_type not in PER_FRAME and not (entry and entry.shape_only):
            return False
        tensor = reader.output[0]
    return False


def _constant_starts(ctx: NodeContext, node) -> list[int] | None:
    if ctx.opset >= 10:
        value = ctx.graph.constants.get(node.input[1]) if len(node.input) > 1 else None
        return None if value is None else [int(v) for v in value.reshape(-1)]
    for attribute in node.attribute:
        if attribute.name == "starts":
            return [int(v) for v in attribute.ints]
    return None


def expect_trim(ctx: NodeContext, lead: int, tail: int, time_axis: int, refusal: str) -> None:
    """Record that this Conv's output must be trimmed by the Slice downstream, or refuse with ``refusal``."""
    if not find_trim(ctx, lead, tail, time_axis):
        frames = " and ".join(part for part in (f"the {lead} leading frames" if lead else "", f"the {tail} trailing frames" if tail else "") if part)
        raise ctx.unsupported(f"{refusal} (and no Slice after it drops {frames} to make it causal)")


def _bounds(ctx: NodeContext) -> tuple[list[int], list[int], list[int] | None, list[int] | None]:
    if ctx.opset >= 10:
        return (ctx.int_list("starts", 1), ctx.int_list("ends", 2), ctx.int_list("axes", 3) if ctx.has_input(3) else None,
                ctx.int_list("steps", 4) if ctx.has_input(4) else None)
    return ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes"), None


def trim_slice(ctx: NodeContext) -> list[int]:
    """The Slice converter's first case (``merges.slice_`` calls it while a padded Conv awaits its trim):
    removed when it drops exactly the non-causal frames, else refused naming the frame shift."""
    rank = len(ctx.in_axes)
    starts, ends, axes, steps = _bounds(ctx)
    if starts is None or ends is None or len(starts) != len(ends):
        raise ctx.invalid(f"Slice starts {starts} and ends {ends} do not pair up")
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    trim = ctx.state.pending_trim
    ctx.state.pending_trim = None
    kept = [i for i, (a, s, e) in enumerate(zip(axes, starts, ends)) if not (s == 0 and e >= TO_THE_END)]
    if len(kept) != 1 or not ctx.roles.same(ctx.in_axes[ctx.axis_index(axes[kept[0]], rank)], trim.time_axis):
        raise ctx.unsupported(f"Slice after the padded Conv at {trim.where} must cut the time axis only (starts {starts}, ends {ends}, axes {axes})")
    axis = ctx.axis_index(axes[kept[0]], rank)
    start, end, step = starts[kept[0]], ends[kept[0]], steps[kept[0]]
    if step != 1:
        raise ctx.unsupported(f"Slice with step {step} keeps 1 frame in {step}; a streaming layer outputs every frame")
    length = ctx.in_dims[axis] if ctx.in_dims is not None and len(ctx.in_dims) == rank else None
    if end < 0:
        dropped = -end
    elif end >= TO_THE_END:
        dropped = 0
    elif isinstance(length, int):
        dropped = length - min(end, length)
    else:
        raise ctx.unsupported(f"Slice end {end} on a time axis of unknown length: cannot tell how many trailing frames it drops")
    if start < 0:
        raise ctx.unsupported(f"Slice start {start} counts from the end of the sequence; a stream has no end")
    problems = []
    if start != trim.lead:
        shift = trim.lead - start
        problems.append(f"starts at frame {start} where the causal output starts at frame {trim.lead} "
                        f"(the output would be {'delayed' if shift > 0 else 'advanced'} by {abs(shift)} frames)")
    if dropped != trim.tail:
        what = (f"the last {trim.tail - dropped} kept frames still need up to {trim.tail - dropped} future frames (a non-causal remainder)"
                if dropped < trim.tail else f"{dropped - trim.tail} frames too many are dropped (the output is shorter than the input)")
        problems.append(f"drops {dropped} trailing frames where the padded Conv at {trim.where} added {trim.tail}: {what}")
    if problems:
        raise ctx.unsupported("Slice " + "; ".join(problems))
    return list(ctx.in_axes)


__all__ = ["PendingTrim", "expect_trim", "find_trim", "trim_slice"]
