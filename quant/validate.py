"""The weight-shape validator: every weight tensor agrees with its op's attributes, with the other
weights of the same op (all gate blocks of W, R and B) and with the shape of the tensor it reads.

A pass that rewrites weights (pruning above all) runs it on its result: a cut that forgot one gate
block, the recurrent columns or the next layer's input columns is reported here, naming the node,
instead of surfacing as a crash or a silently wrong model later.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from toolchain.errors import InputError, KellyError

from quant.onnx_graph import Graph
from quant.rules import rule_for


def check_weight_shapes(model: onnx.ModelProto, file=None) -> None:
    """Raise :class:`InputError` (naming ``file`` and the node) on the first inconsistent weight shape."""
    graph = Graph(model)
    for node in model.graph.node:
        rule = rule_for(node)
        if rule is None:
            continue
        try:
            rule.validate(node, graph)
        except KellyError as error:
            raise error.with_file(file) if file is not None else error


def check_finite_weights(model: onnx.ModelProto, file=None) -> None:
    """Refuse NaN or Inf in any float constant (initializers, Constant values): their int8 scales and
    pruning norms would be NaN, and the written model silently garbage (tests/hostile: nan_weight)."""
    for tensor in external_data_helper._get_all_tensors(model):
        if tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            if not np.all(np.isfinite(numpy_helper.to_array(tensor).astype(np.float32))):
                raise InputError("contains NaN or Inf", file=file, where=f"initializer '{tensor.name}'")


def check_inferred_sizes(model: onnx.ModelProto, file=None) -> None:
    """Refuse a graph that computes a tensor above the converter's size limit from a few bytes of
    constants (``Expand``/``Tile``/``ConstantOfShape`` bombs): the passes run the model in onnxruntime,
    which would try to allocate it. Sizes from onnx shape inference; symbolic axes count as 1."""
    from onnx import shape_inference

    from toolchain.converters.folding import MAX_TENSOR_ELEMENTS
    from toolchain.errors import node_where

    try:
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # inference is a best effort here; the checker and onnxruntime judge validity
        return
    shapes = {value.name: value.type.tensor_type.shape for value in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for node in inferred.graph.node:
        for name in node.output:
            dims = [d.dim_value if d.HasField("dim_value") else 1 for d in shapes[name].dim] if name in shapes else []
            elements = math.prod([max(d, 1) for d in dims]) if dims else 1
            if elements > MAX_TENSOR_ELEMENTS:
                raise InputError(f"computes '{name}' of shape {dims} ({elements} elements), above the {MAX_TENSOR_ELEMENTS} limit",
                                 file=file, where=node_where(node.name, node.op_type))
