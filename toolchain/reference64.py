"""A float64 run of an ONNX model: the yardstick that separates conversion bugs from float32 rounding.

Every float32 result (onnxruntime, the engine, the real RTNeural) differs from the exact function by
rounding. How much depends on the model and the input: a trained amp GRU with outputs near 1 sits
around 1e-5 after a few hundred frames, a small dense stack around 1e-7. A fixed bound is either too
tight for the first or too loose for the second. So ``check`` runs the SAME ONNX graph in float64 and
measures each float32 result against it; onnxruntime's own float32 distance to it (the *float32 spread*)
says what correct float32 arithmetic does to this model on this input.

Why onnx's reference evaluator and not the engine in float64: the reference must be independent of the
conversion being checked (a wrong gate order in the JSON would be in an engine run too), and onnx's
evaluator is plain NumPy that computes in its inputs' dtype. The graph is made float64 by retyping every
float32 tensor it holds (initializers, Constant values, Cast targets, ConstantOfShape values, the graph
input and output); models it cannot retype (int8 DequantizeLinear scales, ops the evaluator lacks) get a
reason instead, and ``check`` falls back to its fixed bound.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

FLOAT, DOUBLE = TensorProto.FLOAT, TensorProto.DOUBLE


class Float64Unavailable(Exception):
    """The model cannot be run in float64 (the message says why)."""


def _retype_tensor(tensor: onnx.TensorProto) -> None:
    if tensor.data_type == FLOAT:
        value = numpy_helper.to_array(tensor).astype(np.float64)
        tensor.CopyFrom(numpy_helper.from_array(value, tensor.name))


def _retype_graph(graph: onnx.GraphProto) -> None:
    for tensor in graph.initializer:
        _retype_tensor(tensor)
    for value in [*graph.input, *graph.output]:
        if value.type.tensor_type.elem_type == FLOAT:
            value.type.tensor_type.elem_type = DOUBLE
    del graph.value_info[:]  # re-inferred by the evaluator; stale float32 annotations would contradict
    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
            raise Float64Unavailable(f"{node.op_type} computes in float32 by definition (an int8 model)")
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR:
                _retype_tensor(attribute.t)
            elif attribute.type == onnx.AttributeProto.GRAPH:
                _retype_graph(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    _retype_graph(sub)
            elif node.op_type == "Cast" and attribute.name == "to" and attribute.i == FLOAT:
                attribute.i = DOUBLE
            elif node.op_type == "Constant" and attribute.name in ("value_float", "value_floats"):
                raise Float64Unavailable("a Constant with a float attribute value")


def float64_model(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``proto`` computing in float64 (raises :class:`Float64Unavailable`)."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    _retype_graph(model.graph)
    return model


class Float64Session:
    """``.run(names, feeds)`` like an onnxruntime session: float32 feeds in, float64 outputs."""

    def __init__(self, proto: onnx.ModelProto):
        from onnx.reference import ReferenceEvaluator

        try:
            self.evaluator = ReferenceEvaluator(float64_model(proto))
        except Float64Unavailable:
            raise
        except Exception as error:  # the evaluator's own types: say which op and why, in one line
            raise Float64Unavailable(f"onnx's reference evaluator cannot load the float64 graph ({type(error).__name__})") from None

    def run(self, names, feeds: dict) -> list[np.ndarray]:
        feeds = {name: np.asarray(value, dtype=np.float64) for name, value in feeds.items()}
        try:
            outputs = self.evaluator.run(names, feeds)
        except Exception as error:
            raise Float64Unavailable(f"onnx's reference evaluator failed on the float64 graph ({type(error).__name__}: "
                                     f"{str(error).splitlines()[0][:120] if str(error) else ''})") from None
        if any(np.asarray(o).dtype != np.float64 for o in outputs):
            raise Float64Unavailable("an op of the graph computes in float32 whatever its inputs")
        return outputs
