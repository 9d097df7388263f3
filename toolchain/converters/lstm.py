"""``LSTM`` -> ``lstm``: gate blocks reordered from ONNX's i,o,f,c, the two biases summed."""
from __future__ import annotations

from toolchain import gates
from toolchain.converters.context import NodeContext
from toolchain.converters.recurrent import check_attributes, read_weights, require_zero_state, sequence_axes
from toolchain.converters.registry import converter
from toolchain.layers import LSTM, f32

DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh", "Tanh")


@converter("LSTM", summary="lstm (forward, layout 0/1, no peepholes, default activations, zero initial state)")
def lstm(ctx: NodeContext) -> list[int]:
    check_attributes(ctx, DEFAULT_ACTIVATIONS)
    if ctx.attr("input_forget", 0):
        raise ctx.unsupported("LSTM with input_forget=1 couples the input and forget gates; RTNeural's lstm does not")
    weights = read_weights(ctx, gates=4)
    require_zero_state(ctx, 5, "initial_h")
    require_zero_state(ctx, 6, "initial_c")
    if not ctx.is_zero(7):
        raise ctx.unsupported("LSTM with peepholes (input P); RTNeural's lstm has no peephole connections")
    out_axes = sequence_axes(ctx)
    # RTNeural has one bias per gate: x W + b_W + h R + b_R == x W + h R + (b_W + b_R).
    bias = weights.input_bias + weights.recurrent_bias

    def canonical(array):
        return gates.reorder_gates(array, gates.LSTM_ONNX, gates.LSTM_CANONICAL, axis=0)

    ctx.emit(LSTM(f32(canonical(weights.input_weight)), f32(canonical(weights.recurrent_weight)), f32(canonical(bias))))
    return out_axes
