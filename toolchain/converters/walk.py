"""Walk the data chain from the graph input to the graph output, converting node by node.

An RTNeural model is a sequence, so the data-dependent nodes must form a chain: each data tensor
feeds exactly one node, and each node reads exactly one data tensor (its other inputs are constant
weights or shape arithmetic). A fork or a join is a branch or a skip connection, refused at the node
where it appears. Each node's converter (looked up in the registry) emits layers and moves the axis
variables; after every node the tensor it produced must still be a valid per-frame tensor.
"""
from __future__ import annotations

from dataclasses import dataclass

from toolchain.converters.axes import AxisRoles, RoleConflict, check_tensor
from toolchain.converters.context import NodeContext, WalkState
from toolchain.converters.folding import DATA, PreparedGraph
from toolchain.converters.registry import lookup
from toolchain.errors import InputError, UnsupportedError, node_where
from toolchain.layers import Activation, Layer, PRelu


@dataclass
class Chain:
    layers: list[Layer]
    roles: AxisRoles
    input_axes: list[int]
    output_axes: list[int]
    notes: list[str]


def _data_inputs(graph: PreparedGraph, node) -> list[int]:
    return [i for i, name in enumerate(node.input) if name and graph.kind.get(name) == DATA]


def _next_node(graph: PreparedGraph, tensor: str):
    """The one live node that reads ``tensor``'s values (Shape readers don't count)."""
    readers = [node for node in graph.consumers(tensor) if any(graph.kind.get(name) == DATA for name in node.output)]
    if len(readers) > 1:
        names = ", ".join(node_where(n.name, n.op_type) for n in readers)
        raise UnsupportedError(f"tensor '{tensor}' feeds {len(readers)} nodes ({names}): a branch or skip connection; "
                               "RTNeural models are sequential", where=node_where(readers[1].name, readers[1].op_type))
    if not readers:
        raise InputError(f"tensor '{tensor}' leads nowhere before the graph output", where="graph")
    return readers[0]


def walk_chain(graph: PreparedGraph) -> Chain:
    roles = AxisRoles()
    input_dims = graph.dims.get(graph.input_name)
    if input_dims is None:
        raise UnsupportedError(f"input '{graph.input_name}' has no declared rank", where="graph inputs")
    tensor = graph.input_name
    input_axes = axes = [roles.new() for _ in input_dims]
    seen = {tensor: (axes, input_dims)}
    state = WalkState()
    while tensor != graph.output_name:
        node = _next_node(graph, tensor)
        where = node_where(node.name, node.op_type)
        data_inputs = _data_inputs(graph, node)
        if len(data_inputs) > 1:
            names = ", ".join(f"'{node.input[i]}'" for i in data_inputs)
            raise UnsupportedError(f"combines {len(data_inputs)} data tensors ({names}): a skip connection or merge; "
                                   "RTNeural models are sequential", where=where)
        entry = lookup(node.op_type, node.domain, node.name)
        if state.pending_pad and not entry.shape_only and node.op_type not in ("Conv", "Pad"):
            raise UnsupportedError(f"follows the left Pad at {state.pending_pad.where}; only a Conv can absorb it "
                                   "(otherwise the output is delayed)", where=where)
        if not node.output[0]:
            raise UnsupportedError("its first output is unused while another is used; only the first output is a "
                                   "per-frame stream (e.g. an RNN's final state Y_h is not)", where=where)
        for index, name in enumerate(node.output[1:], start=1):
            if name and name in graph.live:
                raise UnsupportedError(f"its output #{index} '{name}' is used; only the first output is a per-frame "
                                       f"stream (e.g. an RNN's final state Y_h is not)", where=where)
        ctx = NodeContext(graph, node, roles, state, data_inputs[0], axes)
        changes_before = roles.changes
        axes = entry.function(ctx)
        tensor = node.output[0]
        try:
            check_tensor(roles, axes, graph.dims.get(tensor), tensor)
            if roles.changes != changes_before:  # only a narrowed or merged axis can break a checked tensor
                for other, (other_axes, other_dims) in seen.items():  # (linear: Identity chains change nothing)
                    check_tensor(roles, other_axes, other_dims, other)
        except RoleConflict as conflict:
            raise UnsupportedError(str(conflict), where=where) from None
        seen[tensor] = (axes, graph.dims.get(tensor))
    if state.pending_pad:
        raise UnsupportedError("a left Pad of the time axis with no Conv after it delays the output", where=state.pending_pad.where)
    if not state.layers:
        raise UnsupportedError("the graph only moves data around (no layer RTNeural could run)", where="graph")
    return Chain(state.layers, roles, input_axes, axes, state.notes)


def fill_sizes(layers: list[Layer], input_size: int) -> None:
    """Give size-agnostic layers (shared-slope prelu, activation) the size of the frame they see."""
    size = input_size
    for layer in layers:
        if isinstance(layer, (Activation, PRelu)) and layer.size == 0:
            layer.size = size
        size = layer.out_size
