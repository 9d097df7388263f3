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
a forward pass over the data path (:class:`DataDims`): Pad, Conv, Slice, Flatten, RNNs and
elementwise ops carry ``time + k`` through, so the legacy exporter's Pad -> Conv -> Flatten is sized too.
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


# ----------------------------------------------------------------------------- data-path dims
# Internally a dim is an int, a (name, offset) pair ("time" + 2 after a Pad) or None (unknown); only ints
# and offset-0 names are written back, so the rest of the converter still sees int | str | None.
def _expr(dim):
    return None if _is_unknown(dim) else ((dim, 0) if isinstance(dim, str) else int(dim))


def _plus(dim, amount: int):
    if dim is None:
        return None
    return dim + amount if isinstance(dim, int) else (dim[0], dim[1] + amount)


def _public(dim):
    if isinstance(dim, tuple):
        return dim[0] if dim[1] == 0 else None
    return dim


def _product(dims: list):
    """The product of dims if all but one are ints (the one may be symbolic), else None."""
    ints = [d for d in dims if isinstance(d, int)]
    other = [d for d in dims if not isinstance(d, int)]
    if None in other or len(other) > 1:
        return None
    total = math.prod(ints)
    if not other:
        return total
    return other[0] if total == 1 else None


ELEMENTWISE = {"Tanh", "Relu", "Sigmoid", "Elu", "LeakyRelu", "PRelu", "Softmax", "Identity", "Dropout", "Cast",
               "BatchNormalization", "Add", "Sub", "Mul", "Div", "Gelu", "Selu", "Softsign", "Softplus", "HardSigmoid"}


class DataDims:
    """Forward propagation of dims along the data path for the ops onnx leaves unknown with symbolic axes."""

    def __init__(self, constants: dict, values: ShapeValues, opset: int):
        self.constants, self.values, self.opset = constants, values, opset

    def const_ints(self, node, index: int, attribute: str | None = None):
        if attribute is not None and (len(node.input) <= index or not node.input[index]):
            value = _attr(node, attribute)
            return None if value is None else [int(v) for v in value]
        if len(node.input) > index and node.input[index] in self.constants:
            return [int(v) for v in np.asarray(self.constants[node.input[index]]).reshape(-1)]
        return None

    def infer(self, node, inputs: list):
        op, x = node.op_type, inputs[0]
        if x is None:
            return None
        if op in ELEMENTWISE:
            others = [self.constants.get(name) for name in node.input[1:] if name]
            return x if all(o is not None and np.ndim(o) <= len(x) for o in others) else None
        if op == "Transpose":
            perm = _attr(node, "perm") or list(range(len(x)))[::-1]
            return [x[p] for p in perm] if sorted(perm) == list(range(len(x))) else None
        if op == "Pad":
            pads = self.const_ints(node, 1, "pads" if self.opset < 11 else None)
            axes = self.const_ints(node, 3) if self.opset >= 18 and len(node.input) > 3 and node.input[3] else list(range(len(x)))
            if pads is None or len(pads) != 2 * len(axes):
                return None
            out = list(x)
            for i, axis in enumerate(axes):
                out[axis % len(x)] = _plus(out[axis % len(x)], pads[i] + pads[i + len(axes)])
            return out
        if op == "Conv" and node.input[1] in self.constants:
            weight = np.asarray(self.constants[node.input[1]])
            spatial = weight.ndim - 2
            pads = _attr(node, "pads") or [0] * (2 * spatial)
            dilations = _attr(node, "dilations") or [1] * spatial
            strides = _attr(node, "strides") or [1] * spatial
            if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID") or len(x) != spatial + 2:
                return None
            out = [x[0], int(weight.shape[0])]
            for i in range(spatial):
                if strides[i] != 1:
                    return None
                out.append(_plus(x[2 + i], pads[i] + pads[i + spatial] - (weight.shape[2 + i] - 1) * dilations[i]))
            return out
        if op == "Slice":
            return self._slice(node, x)
        if op == "Flatten":
            axis = _attr(node, "axis", 1) % (len(x) + 1) if x else 0
            return [_product(x[:axis]), _product(x[axis:])]
        if op in ("Squeeze", "Unsqueeze"):
            axes = self.const_ints(node, 1, "axes" if self.opset < 13 else None)
            if axes is None:
                return None
            if op == "Squeeze":
                drop = {a % len(x) for a in axes}
                return [d for i, d in enumerate(x) if i not in drop]
            rank = len(x) + len(axes)
            inserted, rest = {a % rank for a in axes}, iter(x)
            return [1 if i in inserted else next(rest) for i in range(rank)]
        if op in ("LSTM", "GRU", "RNN") and node.input[2] in self.constants:
            hidden = int(np.asarray(self.constants[node.input[2]]).shape[-1])
            directions = int(np.asarray(self.constants[node.input[2]]).shape[0])
            if len(x) != 3:
                return None
            return [x[0], directions, x[1], hidden] if _attr(node, "layout", 0) == 0 else [x[0], x[1], directions, hidden]
        if op in ("MatMul", "Gemm") and node.input[1] in self.constants:
            weight = np.asarray(self.constants[node.input[1]])
            if weight.ndim != 2:
                return None
            columns = weight.shape[0] if (op == "Gemm" and _attr(node, "transB", 0)) else weight.shape[1]
            return [*x[:-1], int(columns)]
        return None

    def _slice(self, node, x):
        if self.opset >= 10:
            starts, ends = self.const_ints(node, 1), self.const_ints(node, 2)
            axes = self.const_ints(node, 3) if len(node.input) > 3 and node.input[3] else None
            steps = self.const_ints(node, 4) if len(node.input) > 4 and node.input[4] else None
        else:
            starts, ends, axes, steps = (self.const_ints(node, 99, a) for a in ("starts", "ends", "axes", "steps"))
        if starts is None or ends is None:
            return None
        axes = axes or list(range(len(starts)))
        out = list(x)
        for axis, start, end, step in zip(axes, starts, ends, steps or [1] * len(starts)):
            axis %= len(x)
            dim = x[axis]
            if step != 1 or start < 0:
                return None
            if isinstance(dim, int):
                out[axis] = max(0, min(end if end >= 0 else dim + end, dim) - min(start, dim))
            elif end < 0:
                out[axis] = _plus(dim, end - start)
            elif end >= 1 << 31:
                out[axis] = _plus(dim, -start)
            else:
                return None
        return out


def refine_dims(model: onnx.ModelProto, nodes: list[onnx.NodeProto], kind: dict, constants: dict, dims: dict,
                infer=None) -> dict:
    """``dims`` with the unknown dims of data-path tensors filled in where the ops prove them.

    Walks the live nodes in order: shape arithmetic gets symbolic values (:class:`ShapeValues`, so a
    ``Shape`` reads the refined dims), data nodes get dims from :class:`DataDims` (Reshape from its
    symbolic target). A refined dim only replaces an unknown one; a known dim is never changed."""
    del infer  # onnx's own inference already ran; this pass only adds what it could not see
    opset = next((imp.version for imp in model.opset_import if imp.domain in ("", "ai.onnx")), 0)
    refined = dict(dims)
    values = ShapeValues(constants, refined)
    propagate = DataDims(constants, values, opset)
    internal: dict[str, list] = {}
    for name, shape in dims.items():
        if kind.get(name) == DATA and shape is not None:
            internal[name] = [_expr(d) for d in shape]
    for node in nodes:
        output = node.output[0] if node.output else ""
        if kind.get(output) != DATA or node.op_type == "Shape":
            values.visit(node)
            continue
        inputs = [internal.get(name) for name in node.input]
        if node.op_type == "Reshape" and len(node.input) > 1:
            in_dims = refined.get(node.input[0])
            found = reshape_dims(in_dims, values.value(node.input[1]), bool(_attr(node, "allowzero", 0)))
            ours = None if found is None else [_expr(d) for d in found]
        else:
            ours = propagate.infer(node, inputs)
        theirs = internal.get(output)
        if ours is None or (theirs is not None and len(theirs) != len(ours)):
            continue
        # onnx's dim wins unless it is unknown, or a name where the ops prove a number (the legacy exporter
        # names a static Flatten's outputs "Flatteny_dim_0")
        merged = [o if t is None or (isinstance(o, int) and not isinstance(t, int)) else t
                  for t, o in zip(theirs, ours)] if theirs is not None else ours
        internal[output] = merged
        refined[output] = tuple(_public(d) for d in merged)
    return refined


__all__ = ["CONST", "ShapeValues", "refine_dims", "reshape_dims"]
