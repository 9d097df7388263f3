"""Walk the data nodes from the graph input to the graph output in topological order, building a DAG.

Every data tensor stands for one model *value* (0 = the input, ``i + 1`` = the output of ``layers[i]``,
see ``toolchain.layers.Model``) and carries its axis variables. A node with one data input is converted
by its registry entry (``registry.py``): it emits layers reading that value, or only moves axes (a
shape-only op: the output is the same value). A node with several data inputs is a merge
(``merges.py``: Add, Sub, Mul, Sum, Concat), and Split/Slice of a feature range emit ``slice`` layers,
so a stack is just the DAG with one path. After every node each of its outputs must still be a valid
per-frame tensor (``axes.check_tensor``) and every merge must see its inputs at the same frame:
a branch whose value is delayed (an over-padded Conv) never meets an undelayed one.
"""
from __future__ import annotations

from dataclasses import dataclass

from toolchain.converters.axes import AxisRoles, RoleConflict, check_tensor
from toolchain.converters.context import NodeContext, Outputs, WalkState
from toolchain.converters.conv2d import apply_frame_orders
from toolchain.converters.folding import DATA, PreparedGraph
from toolchain.converters.registry import lookup
from toolchain.errors import InputError, UnsupportedError, node_where
from toolchain.layers import Activation, Layer, Model, PRelu


@dataclass
class Chain:
    layers: list[Layer]
    roles: AxisRoles
    input_axes: list[int]
    output_axes: list[int]
    notes: list[str]
    #: (frames, where) when a Reshape fixed the variable time axis (common._pin_time), else None.
    pinned_time: tuple[int, str] | None = None


@dataclass
class Tensor:
    """What the walk knows of a data tensor: its model value, axes, exclusivity and pending time shifts."""

    value: int
    axes: list[int]
    #: True while no other node reads this value: a later per-feature op may fold into its layer.
    exclusive: bool
    pending_pad: object = None  # a context.PendingPad waiting for its Conv
    delay: int = 0  # frames by which this tensor lags the input (an over-padded Conv)
    delay_from: str = ""  # the node that delayed it, for messages
    delay_reason: str = ""  # that node's refusal, should the delay reach a layer or the output


def _data_inputs(graph: PreparedGraph, node) -> list[int]:
    return [i for i, name in enumerate(node.input) if name and graph.kind.get(name) == DATA]


def _data_readers(graph: PreparedGraph) -> dict[str, int]:
    """How many live nodes read each tensor's values (Shape readers don't count)."""
    counts: dict[str, int] = {}
    for node in graph.nodes:
        if any(graph.kind.get(name) == DATA for name in node.output):
            for name in set(node.input):
                counts[name] = counts.get(name, 0) + 1
    return counts


def _check_outputs(node, graph: PreparedGraph, where: str) -> None:
    if node.op_type == "Split":
        return
    if not node.output[0]:
        raise UnsupportedError("its first output is unused while another is used; only the first output is a "
                               "per-frame stream (e.g. an RNN's final state Y_h is not)", where=where)
    for index, name in enumerate(node.output[1:], start=1):
        if name and name in graph.live:
            raise UnsupportedError(f"its output #{index} '{name}' is used; only the first output is a per-frame "
                                   f"stream (e.g. an RNN's final state Y_h is not)", where=where)


def walk_graph(graph: PreparedGraph) -> Chain:
    roles = AxisRoles()
    input_dims = graph.dims.get(graph.input_name)
    if input_dims is None:
        raise UnsupportedError(f"input '{graph.input_name}' has no declared rank", where="graph inputs")
    input_axes = [roles.new() for _ in input_dims]
    readers = _data_readers(graph)
    tensors = {graph.input_name: Tensor(0, input_axes, False)}
    seen = {graph.input_name: (input_axes, input_dims)}
    state = WalkState()
    for node in graph.nodes:
        if not any(graph.kind.get(name) == DATA for name in node.output):
            continue
        where = node_where(node.name, node.op_type)
        data_inputs = _data_inputs(graph, node)
        if not data_inputs:  # pragma: no cover - folding classifies such nodes as const/shape
            raise InputError("computes data from no data input", where=where)
        _check_outputs(node, graph, where)
        sources = [tensors[node.input[i]] for i in data_inputs]
        first = sources[0]
        entry = lookup(node.op_type, node.domain, node.name, merge=len(data_inputs) > 1)
        _check_timing(node, sources, where, passes_delay=entry.shape_only or node.op_type == "Slice")
        if first.pending_pad and not entry.shape_only and node.op_type not in ("Conv", "Pad"):
            raise UnsupportedError(f"follows the left Pad at {first.pending_pad.where}; only a Conv can absorb it "
                                   "(otherwise the output is delayed)", where=where)
        state.pending_pad, state.delay, state.delay_reason = first.pending_pad, 0, ""
        before = len(state.layers)
        ctx = NodeContext(graph, node, roles, state, data_inputs[0], first.axes, value=first.value,
                          foldable=first.exclusive and first.value == before and before > 0,
                          sources=[(t.value, t.axes) for t in sources], source_delay=first.delay,
                          tensor_axes=lambda name: tensors[name].axes if name in tensors else None)
        changes_before = roles.changes
        result = entry.function(ctx)
        outputs = result if isinstance(result, Outputs) else Outputs({0: (len(state.layers) if len(state.layers) > before
                                                                            else first.value, result)})
        for index, (value, axes) in outputs.items():
            name = node.output[index]
            if not name:
                continue
            fresh = value != first.value or len(data_inputs) > 1
            tensors[name] = Tensor(value, axes, readers.get(name, 0) <= 1 and (fresh or first.exclusive),
                                   state.pending_pad, first.delay + state.delay,
                                   where if state.delay else first.delay_from,
                                   state.delay_reason if state.delay else first.delay_reason)
            try:
                check_tensor(roles, axes, graph.dims.get(name), name)
                if roles.changes != changes_before:  # only a narrowed or merged axis can break a checked tensor:
                    for other, (other_axes, other_dims) in seen.items():  # Identity chains stay linear (issue 17.6)
                        check_tensor(roles, other_axes, other_dims, other)
            except RoleConflict as conflict:
                raise UnsupportedError(str(conflict), where=where) from None
            seen[name] = (axes, graph.dims.get(name))
    output = tensors.get(graph.output_name)
    if output is None:  # pragma: no cover - folding checked the output depends on the input
        raise InputError(f"output '{graph.output_name}' is not reached from the input", where="graph")
    if output.pending_pad:
        raise UnsupportedError("a left Pad of the time axis with no Conv after it delays the output", where=output.pending_pad.where)
    if output.delay:
        raise UnsupportedError(output.delay_reason, where=output.delay_from)
    if not state.layers:
        raise UnsupportedError("the graph only moves data around (no layer RTNeural could run)", where="graph")
    if output.value != len(state.layers):
        raise UnsupportedError(f"the output is layer value {output.value}, not the last layer computed: part of the "
                               "graph does not reach the output", where="graph outputs")
    apply_frame_orders(state)
    return Chain(state.layers, roles, input_axes, output.axes, state.notes, state.pinned_time)


def _check_timing(node, sources: list[Tensor], where: str, passes_delay: bool) -> None:
    """A layer needs an undelayed input; a merge needs its inputs delayed alike (both at frame t)."""
    delays = {t.delay for t in sources}
    if len(delays) > 1:
        late = max(sources, key=lambda t: t.delay)
        early = min(sources, key=lambda t: t.delay)
        raise UnsupportedError(f"merges branches whose delays differ: the branch through {late.delay_from} lags by "
                               f"{late.delay} frames, the branch '{node.input[[t is early for t in sources].index(True)]}'"
                               f" by {early.delay}; both must see frame t", where=where)
    if len(sources) == 1 and sources[0].delay and not passes_delay:
        raise UnsupportedError(sources[0].delay_reason, where=sources[0].delay_from)



def fill_sizes(layers: list[Layer], input_size: int) -> None:
    """Give size-agnostic layers (shared-slope prelu, activation) the size of the value they read."""
    model = Model(input_size, layers)
    sizes = [input_size]
    for layer, inputs in zip(layers, model.wiring()):
        if isinstance(layer, (Activation, PRelu)) and layer.size == 0:
            layer.size = sizes[inputs[0]]
        sizes.append(_out_size(layer, [sizes[v] for v in inputs]))


def _out_size(layer: Layer, sizes: list[int]) -> int:
    from toolchain.layers import Merge

    if isinstance(layer, Merge):
        layer.sizes = tuple(sizes)
    return layer.out_size
