"""What ``LSTM`` and ``GRU`` share: the attributes RTNeural cannot represent, weight shapes, axes.

ONNX packs an RNN as ``W [directions, gates*H, in]``, ``R [directions, gates*H, H]`` and
``B [directions, 2*gates*H]`` (input biases, then recurrent biases). ``X`` is ``[time, batch, in]``
with ``layout=0`` and ``[batch, time, in]`` with ``layout=1``; ``Y`` adds a direction axis:
``[time, directions, batch, H]`` or ``[batch, time, directions, H]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from toolchain.converters.axes import BATCH, FEATURE, ONE, TIME
from toolchain.converters.context import NodeContext


@dataclass
class RecurrentWeights:
    hidden_size: int
    input_weight: np.ndarray  # [gates*H, in], ONNX gate order
    recurrent_weight: np.ndarray  # [gates*H, H]
    input_bias: np.ndarray  # [gates*H]
    recurrent_bias: np.ndarray  # [gates*H]


def check_attributes(ctx: NodeContext, default_activations: tuple[str, ...]) -> None:
    """Refuse the RNN variants a streaming RTNeural layer cannot compute."""
    op = ctx.node.op_type
    direction = ctx.attr("direction", "forward")
    if direction == "reverse":
        raise ctx.unsupported(f"{op} with direction 'reverse' reads the sequence backwards; a streaming layer only has past frames")
    if direction == "bidirectional":
        raise ctx.unsupported(f"bidirectional {op}: its backward half needs future frames, which a streaming layer never has")
    if direction != "forward":
        raise ctx.invalid(f"unknown direction {direction!r}")
    if ctx.attr("layout", 0) not in (0, 1):
        raise ctx.invalid(f"unknown layout {ctx.attr('layout')}")
    activations = ctx.attr("activations")
    if activations is not None and [a.decode() if isinstance(a, bytes) else a for a in activations] != list(default_activations):
        raise ctx.unsupported(f"{op} activations {activations} differ from the defaults {list(default_activations)} RTNeural implements")
    for name in ("activation_alpha", "activation_beta", "clip"):
        if ctx.attr(name) is not None:
            raise ctx.unsupported(f"{op} attribute '{name}' is not supported by RTNeural's {op.lower()}")
    if ctx.has_input(4):
        raise ctx.unsupported(f"{op} with sequence_lens: per-sequence lengths have no meaning for a frame stream")


def read_weights(ctx: NodeContext, gates: int) -> RecurrentWeights:
    """W, R and B with their shapes checked against each other and against ``hidden_size``."""
    w = ctx.weight(1, "input weight W", ndim=3)
    r = ctx.weight(2, "recurrent weight R", ndim=3)
    declared = ctx.attr("hidden_size")
    hidden = ctx.check_size(declared if declared is not None else r.shape[-1], "hidden_size")
    input_size = w.shape[2]
    expected = {"W": (1, gates * hidden, input_size), "R": (1, gates * hidden, hidden)}
    for label, array in (("W", w), ("R", r)):
        if array.shape != expected[label]:
            raise ctx.invalid(f"{label} has shape {list(array.shape)} but hidden_size {hidden} with one direction needs {list(expected[label])}")
    b = ctx.optional_weight(3, "bias B", ndim=2)
    if b is None:
        b = np.zeros((1, 2 * gates * hidden), np.float32)
    if b.shape != (1, 2 * gates * hidden):
        raise ctx.invalid(f"B has shape {list(b.shape)} but hidden_size {hidden} needs {[1, 2 * gates * hidden]}")
    if ctx.in_dims and isinstance(ctx.in_dims[-1], int) and ctx.in_dims[-1] != input_size:  # () for a scalar (fuzz)
        raise ctx.invalid(f"W expects {input_size} input features but the input has {ctx.in_dims[-1]}")
    return RecurrentWeights(hidden, w[0], r[0], b[0, : gates * hidden], b[0, gates * hidden:])


def require_zero_state(ctx: NodeContext, index: int, what: str) -> None:
    """RTNeural starts from zero state after reset(): a non-zero initial state cannot be expressed."""
    if not ctx.is_zero(index):
        raise ctx.unsupported(f"{what} '{ctx.node.input[index]}' is not provably zero; RTNeural's state starts at zero after reset()")


def sequence_axes(ctx: NodeContext) -> list[int]:
    """Constrain X's axes (time, batch, feature per layout) and return Y's axes."""
    if len(ctx.in_axes) != 3:
        raise ctx.invalid(f"X must be 3-D, got rank {len(ctx.in_axes)}")
    layout = ctx.attr("layout", 0)
    time_axis, batch_axis, feature_axis = (ctx.in_axes[i] for i in ((0, 1, 2) if layout == 0 else (1, 0, 2)))
    op = ctx.node.op_type
    ctx.require(time_axis, TIME, f"{op} (layout {layout}) steps over this axis as time")
    ctx.require(batch_axis, {BATCH, ONE}, f"{op} (layout {layout}) treats this axis as batch")
    ctx.require(feature_axis, FEATURE, f"{op} reads this axis as input features")
    direction, hidden = ctx.new_axis(ONE), ctx.new_axis(FEATURE)
    return [time_axis, direction, batch_axis, hidden] if layout == 0 else [batch_axis, time_axis, direction, hidden]
