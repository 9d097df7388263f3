"""``GRU`` (``linear_before_reset=1``) -> ``gru``: gate blocks z,r,h, the two biases kept apart."""
from __future__ import annotations

from toolchain import gates
from toolchain.converters.context import NodeContext
from toolchain.converters.recurrent import check_attributes, read_weights, require_zero_state, sequence_axes
from toolchain.converters.registry import converter
from toolchain.layers import GRU, f32

DEFAULT_ACTIVATIONS = ("Sigmoid", "Tanh")


@converter("GRU", summary="gru (linear_before_reset=1, forward, layout 0/1, zero initial state)")
def gru(ctx: NodeContext) -> list[int]:
    check_attributes(ctx, DEFAULT_ACTIVATIONS)
    if ctx.attr("linear_before_reset", 0) != 1:
        # RTNeural's gru (Keras reset_after=True) computes r * (h R_h + b_Rh); with
        # linear_before_reset=0 ONNX computes (r * h) R_h + b_Rh, a different function.
        raise ctx.unsupported("GRU with linear_before_reset=0 applies the reset gate before the recurrent product; "
                              "RTNeural's gru implements linear_before_reset=1 only (what PyTorch exports)")
    weights = read_weights(ctx, gates=3)
    require_zero_state(ctx, 5, "initial_h")
    out_axes = sequence_axes(ctx)

    def canonical(array):
        return f32(gates.reorder_gates(array, gates.GRU_ONNX, gates.GRU_CANONICAL, axis=0))

    # The recurrent candidate bias sits inside r * (...): the biases must NOT be summed.
    ctx.emit(GRU(canonical(weights.input_weight), canonical(weights.recurrent_weight),
                 canonical(weights.input_bias), canonical(weights.recurrent_bias)))
    return out_axes
