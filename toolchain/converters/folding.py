"""Prepare an ONNX graph for conversion: classify every tensor, fold every constant subgraph.

Every tensor is one of three kinds:

- ``const``: known now -- an initializer, a Constant, or any node whose inputs are all constants.
  Such nodes are *evaluated* with onnx's reference evaluator on a one-node model (no op semantics
  are hand-written here), so the dynamo exporter's Slice/Concat gate shuffles and the quantizer's
  ``DequantizeLinear`` of int8 initializers become plain float weights.
- ``shape``: depends on the input's *shape* only (``Shape`` of a dynamic tensor and what is
  computed from it, e.g. the Shape/Gather/Concat/ConstantOfShape chains that build zero initial
  states). Never data: it cannot carry one frame into another.
- ``data``: depends on the input's values. These nodes form the chain that becomes the layer list.

Nodes that do not contribute to the graph output are dropped (an LSTM's unused ``Y_h``, dead
shape arithmetic). Nothing is dropped from the data chain here; :mod:`walk` proves each removal.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from toolchain.errors import InputError, UnsupportedError, node_where

log = logging.getLogger(__name__)

CONST, SHAPE, DATA = "const", "shape", "data"

#: Refuse any tensor (initializer or folded constant) above this many elements before allocating it.
#: The largest Kelly model has ~1M parameters; a hostile file may declare 10^12.
MAX_TENSOR_ELEMENTS = 1 << 26

#: Ops never folded: their value is not a function of their inputs.
NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
#: Ops whose output is as large as a *value* (not a shape) of their input says: bound before evaluating.
SIZE_FROM_VALUE = {"ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "OneHot", "Pad"}
#: Ops that read only the shape of their input.
SHAPE_READERS = {"Shape", "Size"}

Dims = tuple  # per axis: int (static), str (symbolic) or None (unknown)


@dataclass
class PreparedGraph:
    """A graph with constants folded and every tensor classified (see the module docstring)."""

    opsets: dict[str, int]
    input_name: str
    output_name: str
    nodes: list[onnx.NodeProto]  # live, unfolded nodes in topological order
    constants: dict[str, np.ndarray]
    kind: dict[str, str]
    producer: dict[str, onnx.NodeProto]
    dims: dict[str, Dims | None]
    live: set[str] = field(default_factory=set)  # tensors the output depends on
    _readers: tuple | None = field(default=None, repr=False, compare=False)  # (nodes list, {tensor: nodes}, length)

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        """The nodes reading ``tensor``, in order. Indexed once per node list: a scan per call made a
        walk over N chained nodes quadratic (10,000 Identity nodes took minutes; issue 17, point 6)."""
        if self._readers is None or self._readers[0] is not self.nodes or self._readers[2] != len(self.nodes):
            index: dict[str, list[onnx.NodeProto]] = {}
            for node in self.nodes:
                for name in dict.fromkeys(node.input):  # a node reading a tensor twice is one reader
                    index.setdefault(name, []).append(node)
            self._readers = (self.nodes, index, len(self.nodes))
        return list(self._readers[1].get(tensor, ()))


def tensor_dims(value_info: onnx.ValueInfoProto) -> Dims | None:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim)


def to_array(tensor: onnx.TensorProto, where: str) -> np.ndarray:
    """An initializer as numpy, refusing absurd sizes before allocating."""
    elements = math.prod([max(int(d), 0) for d in tensor.dims]) if tensor.dims else 1
    if elements > MAX_TENSOR_ELEMENTS:
        raise InputError(f"declares {elements} elements, above the {MAX_TENSOR_ELEMENTS} limit", where=where)
    try:
        return numpy_helper.to_array(tensor)
    except Exception as error:  # numpy/onnx raise several types for a data size that contradicts dims
        raise InputError(f"unreadable tensor data ({str(error)[:160]})", where=where) from None


def _shape_inference(model: onnx.ModelProto) -> dict[str, Dims | None]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as error:
        raise InputError(f"onnx shape inference failed: {str(error).splitlines()[0][:200]}") from None
    graph = inferred.graph
    return {vi.name: tensor_dims(vi) for vi in [*graph.input, *graph.value_info, *graph.output]}


def subgraph_reads(node: onnx.NodeProto) -> list[str]:
    """Names a node's subgraphs (If branches, Loop/Scan bodies) read from the enclosing graph.

    The legacy exporter's ``torch.tile`` writes ``If`` nodes whose branches use outer tensors that are
    not node inputs: their kind (and value, when folding) comes from those names too."""
    outer: list[str] = []

    def visit(graph: onnx.GraphProto, known: set[str]) -> None:
        known = known | {i.name for i in graph.input} | {t.name for t in graph.initializer}
        for inner in graph.node:
            for name in inner.input:
                if name and name not in known and name not in outer:
                    outer.append(name)
            for attribute in inner.attribute:
                for sub in ([attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)):
                    visit(sub, known)
            known |= set(inner.output)
        for value in graph.output:
            if value.name not in known and value.name not in outer:
                outer.append(value.name)

    for attribute in node.attribute:
        for sub in ([attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)):
            visit(sub, set())
    return outer


def evaluate_node(node: onnx.NodeProto, inputs: list[np.ndarray | None], opsets: dict[str, int],
                  outer: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """Run one node with onnx's reference evaluator, under the model's own opset versions.

    ``outer``: the values of the tensors its subgraphs read from the enclosing graph
    (:func:`subgraph_reads`); the node then runs inside a small model holding them as initializers."""
    feeds = {name: value for name, value in zip(node.input, inputs) if name}
    if not outer:
        return ReferenceEvaluator(node, opsets=dict(opsets)).run(None, feeds)
    initializers = [numpy_helper.from_array(np.asarray(value), name) for name, value in {**outer, **feeds}.items()]
    graph = onnx.helper.make_graph([node], "fold", [], [onnx.helper.make_empty_tensor_value_info(n) for n in node.output if n], initializers)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in opsets.items()])
    return ReferenceEvaluator(model).run(None, {})


def _value_size_bound(node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> int | None:
    """How many elements a size-from-value op would allocate, computed from its constant inputs."""
    def shape_of(index):
        return [int(v) for v in np.asarray(inputs[index]).reshape(-1)] if len(inputs) > index and inputs[index] is not None else None

    try:
        if node.op_type == "ConstantOfShape":
            return math.prod(shape_of(0))  # exact integers: a float64 product overflows with a warning (fuzz)
        if node.op_type == "Expand":
            return math.prod(np.broadcast_shapes(inputs[0].shape, tuple(max(d, 1) for d in shape_of(1))))
        if node.op_type == "Tile":
            return inputs[0].size * math.prod(shape_of(1))
        if node.op_type == "Range":
            start, limit, delta = (float(np.asarray(v).reshape(())) for v in inputs[:3])
            return int(max(np.ceil((limit - start) / delta), 0)) if delta else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return None


def _check_fold_size(node: onnx.NodeProto, inputs: list, dims: dict, where: str) -> None:
    bounds = [_value_size_bound(node, inputs)]
    for output in node.output:
        shape = dims.get(output)
        if shape is not None and all(isinstance(d, int) for d in shape):
            bounds.append(math.prod(shape))
    known = [b for b in bounds if b is not None]
    if node.op_type in SIZE_FROM_VALUE and not known:
        raise InputError("cannot bound the size of this constant before computing it", where=where)
    if known and max(known) > MAX_TENSOR_ELEMENTS:
        raise InputError(f"would create a constant of {max(known)} elements, above the {MAX_TENSOR_ELEMENTS} limit", where=where)


def _fold_failure(node: onnx.NodeProto, inputs: list, error: Exception) -> str:
    """Why a constant node did not fold, in kelly-tc's words (the evaluator's text goes to the debug log)."""
    shapes = ", ".join("none" if v is None else f"{np.asarray(v).dtype}{list(np.shape(v))}" for v in inputs) or "no inputs"
    if isinstance(error, NotImplementedError) or "not implemented" in str(error).lower():
        return f"every input is a constant, but onnx's reference evaluator does not implement {node.op_type} (opset of this model)"
    return (f"every input is a constant ({shapes}), but {node.op_type} cannot be computed on them "
            f"({type(error).__name__}; rerun with --debug for the evaluator's message)")


def fold_node(node: onnx.NodeProto, inputs: list, graph_dims: dict, opsets: dict, where: str,
              outer: dict[str, np.ndarray] | None = None) -> list[np.ndarray]:
    """The outputs of ``node`` computed from its constant ``inputs`` (and ``outer``: the constant outer
    tensors its subgraphs read), refusing absurd sizes (also used by ``quant.onnx_graph.fold_constants``,
    so the compression passes fold exactly as the converter)."""
    _check_fold_size(node, inputs, graph_dims, where)
    try:
        outputs = evaluate_node(node, inputs, opsets, outer)
    except Exception as error:
        log.debug("folding %s failed: %s: %s", where, type(error).__name__, error)
        raise InputError(f"cannot fold this constant node: {_fold_failure(node, inputs, error)}", where=where) from None
    for value in outputs:
        if np.asarray(value).size > MAX_TENSOR_ELEMENTS:
            raise InputError(f"folds to more than {MAX_TENSOR_ELEMENTS} elements", where=where)
    return [np.asarray(value) for value in outputs]


def _graph_io(model: onnx.ModelProto, initializers: set[str]) -> tuple[onnx.ValueInfoProto, onnx.ValueInfoProto]:
    graph = model.graph
    inputs = [vi for vi in graph.input if vi.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(f"'{vi.name}'" for vi in inputs) or "none"
        raise UnsupportedError(f"the graph has {len(inputs)} inputs ({names}); an RTNeural model takes one frame stream", where="graph inputs")
    if len(graph.output) != 1:
        names = ", ".join(f"'{vi.name}'" for vi in graph.output) or "none"
        raise UnsupportedError(f"the graph has {len(graph.output)} outputs ({names}); an RTNeural model gives one frame stream", where="graph outputs")
    element = inputs[0].type.tensor_type.elem_type
    if element != onnx.TensorProto.FLOAT:
        name = onnx.TensorProto.DataType.Name(element) if element in onnx.TensorProto.DataType.values() else str(element)
        raise UnsupportedError(f"input '{inputs[0].name}' has element type {name}; RTNeural frames are float32", where="graph inputs")
    return inputs[0], graph.output[0]


def prepare_graph(model: onnx.ModelProto) -> PreparedGraph:
    """Fold constants and classify tensors; raise :class:`InputError` on a malformed graph."""
    opsets = {(imp.domain if imp.domain != "ai.onnx" else ""): imp.version for imp in model.opset_import}
    graph = model.graph
    constants = {init.name: to_array(init, f"initializer '{init.name}'") for init in graph.initializer}
    graph_input, graph_output = _graph_io(model, set(constants))
    dims = _shape_inference(model)
    kind = {name: CONST for name in constants}
    kind[graph_input.name] = DATA
    producer: dict[str, onnx.NodeProto] = {}
    remaining = []
    for node in graph.node:
        where = node_where(node.name, node.op_type)
        missing = [name for name in node.input if name and name not in kind]
        if missing:
            raise InputError(f"input '{missing[0]}' is not produced by any node, initializer or graph input (a missing initializer?)", where=where)
        outer_names = subgraph_reads(node)
        unknown = [name for name in outer_names if name not in kind]
        if unknown:
            raise InputError(f"its subgraph reads '{unknown[0]}', which no earlier node, initializer or graph input produces", where=where)
        kinds = {kind[name] for name in [*node.input, *outer_names] if name}
        inputs = [constants.get(name) if name else None for name in node.input]
        if node.op_type in SHAPE_READERS and kinds & {DATA, SHAPE} and _static(dims.get(node.input[0])):
            # The shape is fixed (e.g. the dynamo exporter's fixed sizes): fold it like a constant,
            # reading it from a zero-stride stand-in so no tensor of that size is allocated.
            inputs = [np.broadcast_to(np.zeros((), np.float32), dims[node.input[0]])]
            kinds = {CONST}
        if kinds <= {CONST} and node.op_type not in NONDETERMINISTIC and node.domain in ("", "ai.onnx"):
            values = fold_node(node, inputs, dims, opsets, where, {name: constants[name] for name in outer_names})
            for name, value in zip(node.output, values):
                if name:
                    constants[name], kind[name] = value, CONST
            continue
        result = SHAPE if (node.op_type in SHAPE_READERS or DATA not in kinds) else DATA
        for name in node.output:
            if name:
                kind[name] = result
                producer[name] = node
        remaining.append(node)
    if graph_output.name not in kind:
        raise InputError(f"output '{graph_output.name}' is not produced by any node", where="graph outputs")
    if kind[graph_output.name] != DATA:
        raise UnsupportedError(f"output '{graph_output.name}' does not depend on the input's values", where="graph outputs")
    from toolchain.converters.shapes import refine_dims  # (imports this module)

    dims = refine_dims(model, remaining, kind, constants, dims, _shape_inference)
    prepared = PreparedGraph(opsets, graph_input.name, graph_output.name, remaining, constants, kind, producer, dims)
    _drop_dead_nodes(prepared)
    return prepared


def _static(shape: Dims | None) -> bool:
    # a negative declared size is not static, it is invalid (found by tests/hostile/fuzz.py)
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


def _drop_dead_nodes(graph: PreparedGraph) -> None:
    """Keep only nodes whose output *values* the graph output depends on (walking back from it).

    A Shape node needs only its input's shape, which shape inference already knows: the nodes
    producing that input are not needed for their values. (The TorchScript exporter leaves such
    side branches, e.g. a Transpose whose only reader is the Shape that sizes an LSTM's zero state.)
    """
    needed = {graph.output_name}
    live_nodes = []
    for node in reversed(graph.nodes):
        if any(name in needed for name in node.output):
            live_nodes.append(node)
            if node.op_type not in SHAPE_READERS:
                needed.update(name for name in [*node.input, *subgraph_reads(node)] if name)
    graph.nodes = live_nodes[::-1]
    graph.live = needed


#: Ops that keep a zero tensor zero whatever their other inputs say (they move or copy elements).
ZERO_PRESERVING = {"Expand", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Transpose", "Cast", "Slice", "Tile", "Gather", "Flatten"}


def is_zero(graph: PreparedGraph, tensor: str) -> bool:
    """True if ``tensor`` is provably all zeros (an RNN's initial state built by an exporter)."""
    if tensor in graph.constants:
        return bool(np.all(graph.constants[tensor] == 0))
    node = graph.producer.get(tensor)
    if node is None or graph.kind.get(tensor) != SHAPE:
        return False  # data-dependent: never provably zero here
    if node.op_type == "ConstantOfShape":
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        # to_array, not numpy_helper's: the value's data may contradict its dims (found by tests/hostile/fuzz.py)
        return value is None or bool(np.all(to_array(value, f"node '{node.name}' (ConstantOfShape)") == 0))
    if node.op_type in ZERO_PRESERVING:
        return is_zero(graph, node.input[0])
    if node.op_type == "Concat":
        return all(is_zero(graph, name) for name in node.input)
    return False
