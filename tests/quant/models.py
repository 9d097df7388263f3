"""Small ONNX models of every layer kind, built with onnx.helper (fast, exact control of every tensor).

Each builder takes a numpy Generator and odd sizes, and returns a checked ``ModelProto`` at opset 17
with random weights. Sequence models take ``[time, 1, features]`` like the TorchScript export of an
``nn.LSTM``; conv models take ``[1, channels, time]``.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
TIME = "time"


class Builder:
    """Accumulates nodes and initializers; ``weight`` names and registers a random tensor."""

    def __init__(self, rng: np.random.Generator):
        self.rng, self.nodes, self.initializers, self.count = rng, [], [], 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}{self.count}"

    def constant(self, base: str, array) -> str:
        name = self.name(base)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, base: str, *shape, scale: float = 0.5) -> str:
        return self.constant(base, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op: str, inputs, **attributes) -> str:
        output = self.name(op.lower() + "_out")
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=self.name(op), **attributes))
        return output

    def multi(self, op: str, inputs, outputs: int, **attributes) -> list[str]:
        names = [self.name(op.lower() + f"_out{i}_") for i in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, name=self.name(op), **attributes))
        return names

    # ------------------------------------------------------------- layers
    def gemm(self, x: str, inputs: int, outputs: int) -> str:
        return self.node("Gemm", [x, self.weight("W", outputs, inputs), self.weight("b", outputs)], transB=1)

    def matmul_add(self, x: str, inputs: int, outputs: int) -> str:
        return self.node("Add", [self.node("MatMul", [x, self.weight("W", inputs, outputs)]), self.weight("b", outputs)])

    def recurrent(self, op: str, x: str, inputs: int, hidden: int) -> str:
        """LSTM or GRU over ``[T, 1, inputs]`` -> Squeeze(direction axis) -> ``[T, 1, hidden]``."""
        gates = 4 if op == "LSTM" else 3
        extra = {"linear_before_reset": 1} if op == "GRU" else {}
        y, _ = self.multi(op, [x, self.weight("W", 1, gates * hidden, inputs), self.weight("R", 1, gates * hidden, hidden),
                              self.weight("B", 1, 2 * gates * hidden)], 2, hidden_size=hidden, **extra)
        return self.node("Squeeze", [y, self.constant("axes", np.array([1], np.int64))])

    def conv(self, x: str, inputs: int, outputs: int, kernel: int = 3) -> str:
        return self.node("Conv", [x, self.weight("W", outputs, inputs, kernel), self.weight("b", outputs)],
                         pads=[kernel - 1, 0])

    def prelu(self, x: str, size: int, rank_tail: int = 0) -> str:
        slope = (self.rng.uniform(0.05, 0.3, (size,) + (1,) * rank_tail)).astype(np.float32)
        return self.node("PRelu", [x, self.constant("slope", slope)])

    def build(self, x_shape, output: str) -> onnx.ModelProto:
        """The model from input ``x`` to ``output`` (same rank as the input, dims left unnamed)."""
        graph = helper.make_graph(self.nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                                  [helper.make_tensor_value_info(output, TensorProto.FLOAT, [None] * len(x_shape))],
                                  self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def dense_stack(rng, sizes=(7, 13, 11, 5), activation="Relu") -> onnx.ModelProto:
    """Gemm layers (``nn.Linear`` export: transB=1) with ``activation`` between them."""
    b, x = Builder(rng), "x"
    for index, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
        x = b.gemm(x, inputs, outputs)
        if index < len(sizes) - 2:
            x = b.node(activation, [x])
    return b.build(["batch", sizes[0]], x)


def matmul_stack(rng, sizes=(7, 13, 9, 5)) -> onnx.ModelProto:
    """MatMul + Add layers with tanh between, on ``[T, 1, features]``."""
    b, x = Builder(rng), "x"
    for index, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
        x = b.matmul_add(x, inputs, outputs)
        if index < len(sizes) - 2:
            x = b.node("Tanh", [x])
    return b.build([TIME, 1, sizes[0]], x)


def recurrent_model(rng, op="LSTM", inputs=5, hidden=11, outputs=3, layers=1) -> onnx.ModelProto:
    """``layers`` stacked LSTM/GRU layers and a MatMul+Add head."""
    b, x, size = Builder(rng), "x", inputs
    for _ in range(layers):
        x, size = b.recurrent(op, x, size, hidden), hidden
    return b.build([TIME, 1, inputs], b.matmul_add(x, hidden, outputs))


def conv_model(rng, channels=(3, 9, 7, 4), kernel=3) -> onnx.ModelProto:
    """Causal Conv1d layers (left padding) with relu between, on ``[1, channels, T]``."""
    b, x = Builder(rng), "x"
    for index, (inputs, outputs) in enumerate(zip(channels, channels[1:])):
        x = b.conv(x, inputs, outputs, kernel)
        if index < len(channels) - 2:
            x = b.node("Relu", [x])
    return b.build([1, channels[0], TIME], x)


def prelu_model(rng, sizes=(6, 13, 4)) -> onnx.ModelProto:
    """Gemm -> PRelu (per-channel slope) -> Gemm."""
    b = Builder(rng)
    x = b.prelu(b.gemm("x", sizes[0], sizes[1]), sizes[1])
    return b.build(["batch", sizes[0]], b.gemm(x, sizes[1], sizes[2]))


def mixed_stack(rng, channels=4, conv=9, lstm=11, gru=7, dense=5, outputs=3) -> onnx.ModelProto:
    """Conv1d -> PRelu -> Transpose -> LSTM -> GRU -> MatMul+Add -> relu -> MatMul+Add: every kind chained."""
    b = Builder(rng)
    x = b.prelu(b.conv("x", channels, conv), conv, rank_tail=1)  # [1, conv, T]
    x = b.node("Transpose", [x], perm=[2, 0, 1])  # [T, 1, conv]
    x = b.recurrent("GRU", b.recurrent("LSTM", x, conv, lstm), lstm, gru)
    x = b.node("Relu", [b.matmul_add(x, gru, dense)])
    return b.build([1, channels, TIME], b.matmul_add(x, dense, outputs))


#: Every builder with its input shape rule, for tests that run all kinds.
KINDS = {
    "gemm": dense_stack,
    "matmul": matmul_stack,
    "lstm": lambda rng: recurrent_model(rng, "LSTM"),
    "gru": lambda rng: recurrent_model(rng, "GRU"),
    "lstm_stack": lambda rng: recurrent_model(rng, "LSTM", layers=2),
    "conv1d": conv_model,
    "prelu": prelu_model,
    "mixed": mixed_stack,
}
