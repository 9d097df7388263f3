"""onnxruntime, one ``session.run`` per frame with the recurrent state passed in and out as graph
inputs/outputs (how a plugin would drive ORT), one intra-op and one inter-op thread.

The step graph is built here with ``onnx.helper`` from the layer records: ``Gemm`` (+ activation) for
dense; ``LSTM``/``GRU`` over a one-frame sequence with ``initial_h``/``initial_c`` fed back from
``Y_h``/``Y_c`` (ONNX LSTM gates i,o,f,c, reordered from RTNeural's i,f,c,o; GRU ``linear_before_reset=1``);
conv1d as ``Concat`` of the kept window with the new frame, a valid ``Conv`` (dilation, groups) and a
``Slice`` that becomes the next window.
"""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from bench.runtimes import Runner
from toolchain.gates import LSTM_CANONICAL, LSTM_ONNX, reorder_gates
from toolchain.layers import GRU, LSTM, Activation, BatchNorm, Conv1D, Dense, Model, PRelu

OPSET = 17
ACTIVATION_OPS = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax", "elu": "Elu"}


class GraphBuilder:
    def __init__(self):
        self.nodes, self.initializers, self.inputs, self.outputs, self.state = [], [], [], [], []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, array, stem: str) -> str:
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int | list[str] = 1, **attributes) -> list[str]:
        names = outputs if isinstance(outputs, list) else [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, **attributes))
        return names

    def state_input(self, stem: str, shape: list[int]) -> tuple[str, str]:
        """A state tensor fed in as ``stem`` and returned as ``stem_next``."""
        self.inputs.append(helper.make_tensor_value_info(stem, TensorProto.FLOAT, shape))
        self.outputs.append(helper.make_tensor_value_info(f"{stem}_next", TensorProto.FLOAT, shape))
        self.state.append((stem, np.zeros(shape, np.float32)))
        return stem, f"{stem}_next"

    def activation(self, x: str, name: str) -> str:
        if not name:
            return x
        attributes = {"axis": -1} if name == "softmax" else {"alpha": 1.0} if name == "elu" else {}
        return self.node(ACTIVATION_OPS[name], [x], **attributes)[0]


def add_layer(graph: GraphBuilder, layer, x: str, index: int) -> str:
    """Append ``layer`` acting on ``x`` ([1, in]); return the name of its [1, out] output."""
    if isinstance(layer, Dense):
        y = graph.node("Gemm", [x, graph.constant(layer.weight, "W"), graph.constant(layer.bias, "b")], transB=1)[0]
        return graph.activation(y, layer.activation)
    if isinstance(layer, (LSTM, GRU)):
        hidden = layer.hidden_size
        sequence = graph.node("Reshape", [x, graph.constant(np.array([1, 1, layer.in_size], np.int64), "shape")])[0]
        h_in, h_out = graph.state_input(f"h{index}", [1, 1, hidden])
        if isinstance(layer, LSTM):
            weights = [reorder_gates(a, LSTM_CANONICAL, LSTM_ONNX) for a in (layer.weight_ih, layer.weight_hh, layer.bias)]
            bias = np.concatenate([weights[2], np.zeros(4 * hidden, np.float32)])  # RTNeural's one bias as Wb, Rb = 0
            c_in, c_out = graph.state_input(f"c{index}", [1, 1, hidden])
            inputs = [sequence, graph.constant(weights[0][None], "W"), graph.constant(weights[1][None], "R"),
                      graph.constant(bias[None], "B"), "", h_in, c_in]
            graph.node("LSTM", inputs, [graph.name("Y"), h_out, c_out], hidden_size=hidden)
        else:  # ONNX GRU gates z, r, h == RTNeural's; linear_before_reset=1 is RTNeural's (Keras reset_after) GRU
            bias = np.concatenate([layer.bias_ih, layer.bias_hh])
            inputs = [sequence, graph.constant(layer.weight_ih[None], "W"), graph.constant(layer.weight_hh[None], "R"),
                      graph.constant(bias[None], "B"), "", h_in]
            graph.node("GRU", inputs, [graph.name("Y"), h_out], hidden_size=hidden, linear_before_reset=1)
        return graph.node("Reshape", [h_out, graph.constant(np.array([1, hidden], np.int64), "shape")])[0]
    if isinstance(layer, Conv1D):
        span = (layer.kernel_size - 1) * layer.dilation + 1
        frame = graph.node("Reshape", [x, graph.constant(np.array([1, layer.in_size, 1], np.int64), "shape")])[0]
        window = frame
        if span > 1:  # keep the previous span-1 frames as state
            kept, kept_next = graph.state_input(f"window{index}", [1, layer.in_size, span - 1])
            window = graph.node("Concat", [kept, frame], axis=2)[0]
            graph.node("Slice", [window, graph.constant(np.array([1], np.int64), "start"),
                                 graph.constant(np.array([span], np.int64), "end"),
                                 graph.constant(np.array([2], np.int64), "axis")], [kept_next])
        y = graph.node("Conv", [window, graph.constant(layer.weight, "W"), graph.constant(layer.bias, "b")],
                       dilations=[layer.dilation], group=layer.groups)[0]
        y = graph.node("Reshape", [y, graph.constant(np.array([1, layer.out_size], np.int64), "shape")])[0]
        return graph.activation(y, layer.activation)
    if isinstance(layer, BatchNorm):
        inputs = [x] + [graph.constant(a, n) for a, n in ((layer.gamma, "gamma"), (layer.beta, "beta"),
                                                          (layer.mean, "mean"), (layer.var, "var"))]
        return graph.node("BatchNormalization", inputs, epsilon=float(layer.epsilon))[0]
    if isinstance(layer, PRelu):
        return graph.node("PRelu", [x, graph.constant(np.broadcast_to(layer.alpha, (layer.size,)).copy(), "slope")])[0]
    if isinstance(layer, Activation):
        return graph.activation(x, layer.activation)
    raise NotImplementedError(f"no ONNX step for {layer.kind}")


def step_model(model: Model) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The one-frame ONNX graph of ``model`` and its state inputs (name, zero value)."""
    graph = GraphBuilder()
    x = "x"
    for index, layer in enumerate(model.layers):
        x = add_layer(graph, layer, x, index)
    graph.node("Identity", [x], ["y"])
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, model.input_size])] + graph.inputs
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, model.output_size])] + graph.outputs
    proto = helper.make_model(helper.make_graph(graph.nodes, "step", inputs, outputs, graph.initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(proto, full_check=True)
    return proto, graph.state


def make_step(model: Model) -> Runner:
    proto, state = step_model(model)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = [name for name, _ in state]
    outputs = ["y"] + [f"{name}_next" for name in names]
    feed: dict[str, np.ndarray] = {}

    def reset():
        feed.update({name: zeros.copy() for name, zeros in state})

    def step(frame):
        feed["x"] = frame[None]
        results = session.run(outputs, feed)
        for name, value in zip(names, results[1:]):
            feed[name] = value
        return results[0][0]

    reset()
    return Runner(step, reset)
