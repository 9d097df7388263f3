"""The graph walk shared by the compression passes: an index over an ONNX graph, plus load/save.

The passes (``int8``, ``prune``, ``validate``) never touch op-specific details here; they ask the
per-op rules in ``quant.rules`` and use this module to find initializers, producers, consumers and
tensor shapes.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from toolchain import atomic
from toolchain.errors import node_where

log = logging.getLogger(__name__)

#: Initializers of these element types count as weights (float, and int8 after quantization).
WEIGHT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8}


def load_model(path: str | Path) -> onnx.ModelProto:
    """Load and check an ONNX file (external data beside it) or raise a one-line :class:`InputError`:
    the converter's hardened loader, so the passes accept exactly what ``convert`` accepts."""
    from toolchain.onnx_import import load_onnx

    return load_onnx(path)


def save_model(model: onnx.ModelProto, path: str | Path) -> Path:
    """Check ``model`` and write it atomically as one self-contained file (no external data)."""
    onnx.checker.check_model(model)
    with atomic.atomic_path(path, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return Path(path)


def opset_version(model: onnx.ModelProto) -> int:
    """The model's default-domain opset."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of every float or int8 initializer (weights, biases, scales): what an engine must store."""
    total = 0
    for tensor in model.graph.initializer:
        if tensor.data_type in WEIGHT_TYPES:
            total += numpy_helper.to_array(tensor).nbytes
    return total


def parameter_count(model: onnx.ModelProto) -> int:
    """Number of weight values: elements of the float or int8 initializers, minus quantization
    parameters (scales and zero points, which ``weight_bytes`` does count)."""
    qparams = {name for node in model.graph.node if node.op_type in ("DequantizeLinear", "QuantizeLinear")
               for name in node.input[1:]}
    return sum(int(np.prod(tensor.dims, dtype=np.int64)) for tensor in model.graph.initializer
               if tensor.data_type in WEIGHT_TYPES and tensor.name not in qparams)


def infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with value_info filled by onnx's shape inference (a failure leaves shapes unknown)."""
    try:
        return shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    except Exception as error:  # inference is a help for finding ranks, never a requirement
        log.debug("shape inference failed: %s", error)
        return model


def _dims(type_proto: onnx.TypeProto) -> list[int | None] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in type_proto.tensor_type.shape.dim]


class Graph:
    """A read-mostly index over ``model.graph``: initializers, producers, consumers, shapes.

    Build a new one after changing the graph's structure; ``set_initializer`` keeps it in step when
    only weight values change.
    """

    def __init__(self, model: onnx.ModelProto, shapes: bool = True):
        self.model = model
        self.graph = model.graph
        self.opset = opset_version(model)
        self.initializers: dict[str, onnx.TensorProto] = {t.name: t for t in self.graph.initializer}
        self._arrays: dict[str, np.ndarray] = {}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
        for node in self.graph.node:
            for name in node.output:
                self.producer[name] = node
            for index, name in enumerate(node.input):
                if name:
                    self.consumers.setdefault(name, []).append((node, index))
        self.outputs = {o.name for o in self.graph.output}
        self.inputs = {i.name for i in self.graph.input} - set(self.initializers)
        self._shapes: dict[str, list[int | None] | None] = {}
        if shapes:
            inferred = infer_shapes(model).graph
            for info in list(inferred.input) + list(inferred.value_info) + list(inferred.output):
                self._shapes[info.name] = _dims(info.type)

    # ------------------------------------------------------------------ constants
    def is_initializer(self, name: str) -> bool:
        return name in self.initializers

    def array(self, name: str) -> np.ndarray:
        """The value of initializer ``name`` (cached; do not modify in place)."""
        if name not in self._arrays:
            self._arrays[name] = numpy_helper.to_array(self.initializers[name])
        return self._arrays[name]

    def constant(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is an initializer or a ``Constant`` node's output, else None."""
        if not name:
            return None
        if name in self.initializers:
            return self.array(name)
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    return numpy_helper.to_array(attribute.t)
        return None

    def set_initializer(self, name: str, array: np.ndarray) -> None:
        """Replace the value of an existing initializer (same name, new value and shape)."""
        tensor = numpy_helper.from_array(np.asarray(array, order="C"), name)  # ascontiguousarray would make a scalar 1-D
        self.initializers[name].CopyFrom(tensor)
        self._arrays[name] = np.asarray(array)

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        tensor = numpy_helper.from_array(np.asarray(array, order="C"), name)  # ascontiguousarray would make a scalar 1-D
        self.graph.initializer.append(tensor)
        self.initializers[name] = self.graph.initializer[-1]
        return name

    def remove_initializer(self, name: str) -> None:
        for index, tensor in enumerate(self.graph.initializer):
            if tensor.name == name:
                del self.graph.initializer[index]
                break
        for index, info in enumerate(self.graph.input):  # IR < 4 models list initializers as inputs too
            if info.name == name:
                del self.graph.input[index]
                break
        self.initializers.pop(name, None)
        self._arrays.pop(name, None)

    # ------------------------------------------------------------------ shapes
    def shape(self, name: str) -> list[int | None] | None:
        """The dims of ``name`` (None for a symbolic dim), or None when unknown."""
        if name in self.initializers:
            return list(self.initializers[name].dims)
        return self._shapes.get(name)

    def rank(self, name: str) -> int | None:
        shape = self.shape(name)
        return None if shape is None else len(shape)

    def unique_name(self, base: str) -> str:
        """A tensor name not used anywhere in the graph yet."""
        taken = set(self.initializers) | set(self.producer) | set(self.consumers) | self.inputs | self.outputs
        name, counter = base, 1
        while name in taken:
            name, counter = f"{base}_{counter}", counter + 1
        return name


def attribute(node: onnx.NodeProto, name: str, default=None):
    """The value of ``node``'s attribute ``name``, or ``default``."""
    for entry in node.attribute:
        if entry.name == name:
            return onnx.helper.get_attribute_value(entry)
    return default


def set_attribute(node: onnx.NodeProto, name: str, value) -> None:
    for index, entry in enumerate(node.attribute):
        if entry.name == name:
            del node.attribute[index]
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))


def topological_sort(graph: onnx.GraphProto) -> None:
    """Reorder ``graph.node`` in place so that every node follows the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:  # a cycle, or an input nobody produces: keep the rest in their original order
            ordered.extend(pending)
            break
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    copies = [onnx.NodeProto.FromString(n.SerializeToString()) for n in ordered]
    del graph.node[:]
    graph.node.extend(copies)


def make_initializers_unique(model: onnx.ModelProto) -> None:
    """Give every node input that reads a shared float initializer its own copy.

    A pass that reshapes one consumer's weights must not silently reshape another's.
    """
    graph = Graph(model, shapes=False)
    for name, uses in graph.consumers.items():
        if name not in graph.initializers or len(uses) < 2 or graph.initializers[name].data_type not in WEIGHT_TYPES:
            continue
        for node, index in uses[1:]:
            copy = graph.unique_name(f"{name}_copy")
            graph.add_initializer(copy, graph.array(name).copy())
            node.input[index] = copy


#: Ops left in place by :func:`fold_constants`: the quantized form of a weight stays int8 (folding
#: DequantizeLinear would turn it back into float), and growing ops build tensors rather than rearrange
#: weights (folding a ``ConstantOfShape``/``Expand`` would only make the file larger).
KEEP_UNFOLDED = {"DequantizeLinear", "QuantizeLinear"}


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace, in place, every node computed from constants alone by an initializer of its value.

    The dynamo exporter leaves the gate shuffle of an LSTM/GRU weight above onnxscript's folding
    limit (8192 elements) in the graph: ``W = Unsqueeze(Concat(Slice(weight_ih), ...))``. The
    converter folds it (so the RTNeural JSON has the weight), but the passes only see initializers as
    weights: without this, INT8 left such weights float in the ONNX model while the INT8 JSON
    quantized them (the two disagreed), and pruning stopped at the layer. The evaluation is the
    converter's own (``toolchain.converters.folding.fold_node``, onnx's reference evaluator).
    """
    from toolchain.converters import folding

    if model.ir_version < 4:  # initializers must also be graph inputs there; such old models come folded
        return model
    graph = model.graph
    opsets = {(entry.domain if entry.domain != "ai.onnx" else ""): entry.version for entry in model.opset_import}
    constants = {tensor.name: tensor for tensor in graph.initializer}
    constants.update({node.output[0]: node for node in graph.node if node.op_type == "Constant" and node.domain in ("", "ai.onnx")})
    outputs = {output.name for output in graph.output}
    folded = []
    for node in graph.node:
        if not _foldable(node, constants, outputs, folding.NONDETERMINISTIC | folding.SIZE_FROM_VALUE):
            continue
        inputs = [_constant_value(constants[name], opsets) if name else None for name in node.input]
        values = folding.fold_node(node, inputs, {}, opsets, node_where(node.name, node.op_type))
        for name, value in zip(node.output, values):
            if name:
                graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
                constants[name] = graph.initializer[-1]
        folded.append(node)
    if folded:
        kept = [node for node in graph.node if all(node is not f for f in folded)]
        del graph.node[:]
        graph.node.extend(kept)
        remove_unused(model)
        log.debug("folded %d constant nodes into initializers", len(folded))
    return model


def _foldable(node: onnx.NodeProto, constants: dict, outputs: set[str], growing: set[str]) -> bool:
    if node.op_type == "Constant" or node.op_type in KEEP_UNFOLDED or node.op_type in growing:
        return False
    if node.domain not in ("", "ai.onnx") or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        return False  # custom ops, and subgraphs that may read outer tensors
    named = [name for name in node.input if name]
    return bool(named) and all(name in constants for name in named) and not any(name in outputs for name in node.output)


def _constant_value(source: onnx.TensorProto | onnx.NodeProto, opsets: dict) -> np.ndarray:
    """The value of an initializer or of a Constant node (any of its value attributes)."""
    from toolchain.converters import folding

    if isinstance(source, onnx.TensorProto):
        return folding.to_array(source, f"initializer '{source.name}'")
    return np.asarray(folding.evaluate_node(source, [], opsets)[0])


def remove_unused(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nobody reads (repeatedly), then initializers nobody reads."""
    graph = model.graph
    while True:
        read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [i for i, node in enumerate(graph.node) if not any(name in read for name in node.output if name)]
        if not dead:
            break
        for index in reversed(dead):
            del graph.node[index]
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = [i for i, tensor in enumerate(graph.initializer) if tensor.name not in read]
    for index in reversed(unused):
        del graph.initializer[index]
