"""Shape knowledge the exporters hide: the symbolic value of shape arithmetic, and the Reshapes it sizes.

onnx shape inference knows ``Shape(x)`` of a tensor with a symbolic time axis only as "some 4 ints":
its data propagation gives up as soon as one element is symbolic. The dynamo exporter with
``dynamic_shapes`` flattens an RNN's ``[time, directions, batch, hidden]`` output with exactly such a
chain (``Shape -> Slice x4 -> Mul -> Concat -> Reshape``), so the Reshape's output came back as
``[time, 1, unk]`` and the axis tracking could not prove that it keeps each frame intact.

Here every shape-kind tensor gets a *symbolic value*: a list whose elements are ints, dimension names
(``"time"``) or None (unknown). Only the few ops exporters use on shapes are followed (Shape, Slice,
Gather, Concat, Squeeze/Unsqueeze/Reshape/Identity/Cast of a 1-D shape, elementwise Mul/Add/Sub/Div);
anything else is unknown, never guessed. A Reshape whose target is then known (``0`` copies an input
dim, ``-1`` is solved by cancelling equal factors) gets its output dims, which are written back into
the model and shape inference is run once more so every later tensor sees them.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import onnx

from toolchain.converters.folding import CONST, DATA, Dims

Value = list  # elements: int, str (a symbolic dim) or None


def _is_unknown(dim) -> bool:
    return dim is None or (isinstance(dim, str) and dim.startswith("unk__"))


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


class ShapeValues:
    """The symbolic value of every 0-D/1-D integer tensor computed from constants and shapes."""

    def __init__(self, constants: dict, dims: dict):
        self.constants, self.dims, self.values = constants, dims, {}

    def value(self, name: str) -> Value | None:
        if not name:
            return None
        if name in self.values:
            return self.values[name]
        if name in self.constants:
            array = np.asarray(self.constants[name])
            if array.dtype.kind in "iu" and array.ndim <= 1 and array.size <= 64:
                return [int(v) for v in array.reshape(-1)]
        return None

    def visit(self, node: onnx.NodeProto) -> None:
        result = self._evaluate(node)
        if result is not None and node.output and node.output[0]:
            self.values[node.output[0]] = result

    def _evaluate(self, node: onnx.NodeProto) -> Value | None:
        op, inputs = node.op_type, [self.value(name) for name in node.input]
        if op == "Shape":
            dims = self.dims.get(node.input[0])
            if dims is None:
                return None
            start, end = _attr(node, "start", 0), _attr(node, "end", None)
            return [None if _is_unknown(d) else d for d in list(dims)[start:end]]
        if op in ("Identity", "Cast", "Squeeze", "Unsqueeze", "Reshape"):
            return inputs[0]
        if op == "Concat":
            return None if any(v is None for v in inputs) else [d for v in inputs for d in v]
        if op == "Gather" and inputs[0] is not None and inputs[1] is not None and _attr(node, "axis", 0) == 0:
            try:
                return [inputs[0][i] for i in inputs[1]]
            except IndexError:
                return None
        if op == "Slice" and inputs[0] is not None:
            return self._slice(inputs)
        if op in ("Mul", "Add", "Sub", "Div") and len(inputs) == 2 and None not in inputs:
            return _elementwise(op, inputs[0], inputs[1])
        return None

    @staticmethod
    def _slice(inputs: list) -> Value | None:
        data = inputs[0]
        starts, ends = inputs[1], inputs[2]
        axes = inputs[3] if len(inputs) > 3 else None
        steps = inputs[4] if len(inputs) > 4 else None
        if starts is None or ends is None or len(starts) != 1 or (axes not in (None, [0], [-1])):
            return None
        if any(not isinstance(v, int) for v in starts + ends + (steps or [])):
            return None
        step = steps[0] if steps else 1
        return data[slice(starts[0], max(min(ends[0], 1 << 30), -(1 << 30)), step)] if step else None


def _elementwise(op: str, a: Value, b: Value) -> Value | None:
    if len(a) != len(b):
        if len(a) == 1:
            a = a * len(b)
        elif len(b) == 1:
            b = b * len(a)
        else:
            return None
    out = []
    for x, y in zip(a, b):
        if isinstance(x, int) and isinstance(y, int):
            out.append({"Mul": x * y, "Add": x + y, "Sub": x - y, "Div": x // y if y else None}[op])
        elif op == "Mul" and (x == 1 or y == 1):
            out.append(y if x == 1 else x)
        elif op in ("Add", "Sub") and y == 0:
            out.append(x)
        elif op == "Div" and y == 1:
            out.append(x)
        else:
            out.append(None)
    return out


def reshape_dims(in_dims: Dims, target: Value, allowzero: bool = False) -> Dims | None:
    """The output dims of a Reshape of ``in_dims`` to the symbolic ``target`` (None if unknowable)."""
    if in_dims is None or target is None:
        return None
    out = []
    for index, dim in enumerate(target):
        if dim == 0 and not allowzero:
            if index >= len(in_dims):
                return None
            dim = in_dims[index]
        out.append(None if _is_unknown(dim) else dim)
    if out.count(-1) > 1:
        return None
    if -1 in out:
        factors = Counter(d for d in in_dims if isinstance(d, str))
        ints = math.prod(d for d in in_dims if isinstance(d, int))
        if any(_is_unknown(d) for d in in_dims):
            return None
        for dim in out:
            if dim == -1:
                continue
            if isinstance(dim, str):
                if not factors[dim]:
                    return None
                factors[dim] -= 1
            elif isinstance(dim, int):
                if dim <= 0 or ints % dim:
                    return None
                ints //= dim
            else:
                return None
        left = [name for name, count in factors.items() for _ in range(count)]
        solved = ints if not left else (left[0] if len(left) == 1 and ints == 1 else None)
        if solved is None:
            return None
        out[out.index(-1)] = solved
    return tuple(out)


def refine_dims(model: onnx.ModelProto, nodes: list[onnx.NodeProto], kind: dict, constants: dict, dims: dict,
                infer) -> dict:
    """``dims`` with the outputs of data-path Reshapes sized from their symbolic targets (and every
    later tensor re-inferred). ``infer(model) -> dims`` is the project's shape inference."""
    values = ShapeValues(constants, dims)
    resolved = {}
    for node in nodes:
        if node.op_type == "Reshape" and kind.get(node.input[0]) == DATA and len(node.input) > 1:
            current = dims.get(node.output[0])
            if current is not None and not any(_is_unknown(d) for d in current):
                continue
            found = reshape_dims(dims.get(node.input[0]), values.value(node.input[1]), bool(_attr(node, "allowzero", 0)))
            if found is not None and not any(d is None for d in found):
                resolved[node.output[0]] = found
        elif kind.get(node.output[0] if node.output else "") != DATA or node.op_type == "Shape":
            values.visit(node)
    if not resolved:
        return dims
    annotated = onnx.ModelProto()
    annotated.CopyFrom(model)
    declared = {vi.name for vi in [*annotated.graph.input, *annotated.graph.output]}
    kept = [vi for vi in annotated.graph.value_info if vi.name not in resolved]
    del annotated.graph.value_info[:]
    annotated.graph.value_info.extend(kept)
    for name, shape in resolved.items():
        if name not in declared:
            annotated.graph.value_info.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(shape)))
    refined = dict(infer(annotated))
    refined.update(resolved)
    for name, shape in dims.items():  # never lose what the first pass knew
        if refined.get(name) is None:
            refined[name] = shape
    return refined


__all__ = ["CONST", "ShapeValues", "refine_dims", "reshape_dims"]
