"""Pruning: structured (a smaller dense model) and unstructured (magnitude sparsity).

**Structured.** A *unit* is a dense neuron (Gemm / MatMul output feature), a conv output channel or an
LSTM/GRU hidden unit. For every producer of units the pass follows its outputs through the graph
(activations, bias Adds, PRelu, BatchNorm, Squeeze/Transpose/Gather...) to the ops that read them,
collecting every tensor slice a unit owns: its rows in all gate blocks of W and R, its entries in both
stacked biases and the initial states, its recurrent column of R, its slope, and the input
columns/channels of the next consumer. Units that reach a graph output are never pruned (the model's
interface stays), nor are those that meet an op without a rule or one that mixes axes (Reshape,
Concat, a residual Add): pruning simply stops there. The same fraction ``amount`` of every prunable
layer's units is removed (rounded down, at least one unit kept).

**Ranking criterion** (documented choice): ``score(j) = ||incoming(j)|| * ||outgoing(j)||`` with the
L2 (or L1) norm, where ``incoming(j)`` is every parameter that computes unit ``j`` (its rows of W and
R across all gate blocks, its bias entries) and ``outgoing(j)`` every parameter that reads it (the
next layer's input column, its recurrent column of R). The lowest scores go. A unit that nothing reads
(zero outgoing weights) or that computes a constant zero (zero incoming weights and biases, with an
activation where ``f(0) = 0`` -- relu, tanh, and LSTM/GRU cells from a zero state) scores 0 and is
removed first, and removing it leaves the outputs unchanged -- unless an op between the unit and its
reader maps 0 elsewhere (a BatchNorm's shift, a sigmoid): the reader then lost a constant input.

Before the walk, each rule may rewrite its node into an exactly equivalent form (``Rule.simplify``):
the TorchScript exporter builds an LSTM/GRU's zero initial state from the input's shape and the
hidden size, which would pin the size; ONNX's absent initial state is the same zeros.

**Unstructured.** The smallest-magnitude ``amount`` of each weight tensor (the rule-named weights:
dense, conv, LSTM/GRU W and R; not biases) is set to zero. The model keeps its shapes: a dense engine
such as RTNeural runs it no faster; the report gives the sparsity only.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import onnx

from toolchain.errors import InputError, node_where

from quant.onnx_graph import Graph, fold_constants, make_initializers_unique, remove_unused
from quant.rules import INCOMING, OUTGOING, Cut, SizeEdit, rule_for
from quant.validate import check_weight_shapes

log = logging.getLogger(__name__)

CRITERIA = ("l2", "l1")


@dataclass
class Group:
    """One producer's units and every cut they imply."""

    node: onnx.NodeProto
    size: int
    cuts: list[Cut]
    keep: np.ndarray | None = None

    @property
    def label(self) -> str:
        return node_where(self.node.name, self.node.op_type)


@dataclass
class PruneResult:
    model: onnx.ModelProto
    pruned: list[dict] = field(default_factory=list)  # node, op_type, units_before, units_after
    skipped: list[dict] = field(default_factory=list)  # node, reason
    sparsity: dict[str, tuple[int, int]] = field(default_factory=dict)  # unstructured: tensor -> (zeros, values)


def check_amount(amount: float) -> float:
    if not (isinstance(amount, (int, float)) and 0 <= amount < 1):
        raise InputError(f"amount {amount} must be in [0, 1)")
    return float(amount)


# ------------------------------------------------------------------------------ finding the units
def find_groups(graph: Graph) -> tuple[list[Group], list[dict]]:
    """Every producer whose units can be followed to their consumers, and why the others cannot."""
    groups, skipped = [], []
    for node in graph.graph.node:
        rule = rule_for(node)
        units = rule.units(node, graph) if rule else None
        if isinstance(units, str):
            skipped.append({"node": node_where(node.name, node.op_type), "reason": units})
            continue
        if units is None or not units.size:
            continue
        cuts, reason = trace(graph, units.outputs, units.size)
        if reason is None:
            reason = _size_mismatch(graph, units.cuts + cuts, units.size)
        if reason is not None:
            skipped.append({"node": node_where(node.name, node.op_type), "reason": reason})
            continue
        groups.append(Group(node, units.size, _unique(units.cuts + cuts)))
    return groups, skipped


def trace(graph: Graph, outputs: list[tuple[str, int]], size: int) -> tuple[list[Cut], str | None]:
    """Follow units from ``outputs`` to their consumers: the cuts, or the reason they cannot be followed."""
    cuts: list[Cut] = []
    pending, seen = list(outputs), set()
    while pending:
        tensor, axis = pending.pop()
        if (tensor, axis) in seen:
            continue
        seen.add((tensor, axis))
        if tensor in graph.outputs:
            return [], f"its units reach the graph output '{tensor}'"
        for node, index in graph.consumers.get(tensor, []):
            rule = rule_for(node)
            flow = rule.receive(node, graph, index, axis, size) if rule else None
            if flow is None:
                return [], f"its units reach {node_where(node.name, node.op_type)}, which cannot follow them"
            cuts += flow.cuts
            pending += flow.outputs
    return cuts, None


def _size_mismatch(graph: Graph, cuts: list[Cut | SizeEdit], size: int) -> str | None:
    for cut in cuts:
        if isinstance(cut, SizeEdit):
            continue
        shape = graph.shape(cut.tensor)
        if shape is None or len(shape) <= cut.axis or shape[cut.axis] != cut.blocks * size:
            return f"'{cut.tensor}' has shape {shape}, not {cut.blocks} x {size} along axis {cut.axis}"
    return None


def _unique(cuts: list[Cut | SizeEdit]) -> list[Cut | SizeEdit]:
    """One cut per (tensor, axis): the first (a producer's own, with its role) wins."""
    seen, unique = set(), []
    for cut in cuts:
        key = cut if isinstance(cut, SizeEdit) else (cut.tensor, cut.axis)
        if key not in seen:
            seen.add(key)
            unique.append(cut)
    return unique


# ------------------------------------------------------------------------------ ranking
def unit_scores(graph: Graph, group: Group, criterion: str = "l2") -> np.ndarray:
    """``||incoming|| * ||outgoing||`` per unit (see the module docstring)."""
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; use one of {CRITERIA}")
    totals = {INCOMING: np.zeros(group.size), OUTGOING: np.zeros(group.size)}
    for cut in group.cuts:
        if isinstance(cut, Cut) and cut.role in totals:
            blocks = np.moveaxis(graph.array(cut.tensor).astype(np.float64), cut.axis, 0)
            blocks = blocks.reshape(cut.blocks, group.size, -1)
            totals[cut.role] += (blocks ** 2 if criterion == "l2" else np.abs(blocks)).sum(axis=(0, 2))
    norms = {role: np.sqrt(total) if criterion == "l2" else total for role, total in totals.items()}
    has_outgoing = any(isinstance(cut, Cut) and cut.role == OUTGOING for cut in group.cuts)
    return norms[INCOMING] * (norms[OUTGOING] if has_outgoing else 1.0)


def choose_keep(scores: np.ndarray, amount: float) -> np.ndarray:
    """Indices (ascending) of the units kept: all but the ``floor(amount * n)`` lowest scores (>= 1 kept)."""
    size = scores.shape[0]
    remove = min(int(np.floor(amount * size + 1e-9)), size - 1)
    order = np.argsort(scores, kind="stable")  # ties: the lower index goes first, deterministically
    return np.sort(order[remove:])


# ------------------------------------------------------------------------------ cutting
def apply_groups(graph: Graph, groups: list[Group]) -> None:
    """Slice every cut tensor to its groups' kept units and resize the producers."""
    owner: dict[tuple[str, int], Group] = {}
    for group in groups:
        for cut in (c for c in group.cuts if isinstance(c, Cut)):
            if (cut.tensor, cut.axis) in owner:
                raise InputError(f"'{cut.tensor}' axis {cut.axis} is cut by both {owner[cut.tensor, cut.axis].label} "
                                 f"and {group.label}")
            owner[cut.tensor, cut.axis] = group
    arrays: dict[str, np.ndarray] = {}
    nodes = {node.name: node for node in graph.graph.node if node.name}
    for group in groups:
        for cut in group.cuts:
            if isinstance(cut, SizeEdit):
                _edit_size(graph, nodes[cut.node], cut, group.size, len(group.keep))
                continue
            array = arrays.get(cut.tensor, graph.array(cut.tensor))
            index = np.concatenate([block * group.size + group.keep for block in range(cut.blocks)])
            arrays[cut.tensor] = np.take(array, index, axis=cut.axis)
        rule_for(group.node).resize(group.node, len(group.keep))
    for name, array in arrays.items():
        graph.set_initializer(name, array)


def _edit_size(graph: Graph, node: onnx.NodeProto, edit: SizeEdit, size: int, kept: int) -> None:
    value = np.array(graph.constant(node.input[edit.index]))
    if value[edit.position] != edit.blocks * size:
        raise InputError(f"entry {edit.position} of '{node.input[edit.index]}' is {value[edit.position]}, "
                         f"not {edit.blocks * size}", where=node_where(node.name, node.op_type))
    value[edit.position] = edit.blocks * kept
    node.input[edit.index] = graph.add_initializer(graph.unique_name(f"{node.input[edit.index]}_pruned"), value)


def simplify(model: onnx.ModelProto) -> None:
    """Apply every rule's exactly-equivalent rewrite (see ``Rule.simplify``), then drop dead nodes."""
    graph = Graph(model, shapes=False)
    changed = [rule_for(node).simplify(node, graph) for node in model.graph.node if rule_for(node)]
    if any(changed):
        remove_unused(model)


def structured_prune(model: onnx.ModelProto, amount: float, criterion: str = "l2",
                     keep: dict[str, np.ndarray] | None = None) -> PruneResult:
    """A smaller copy of ``model`` with ``amount`` of every prunable layer's units removed.

    ``keep`` (producer node name -> unit indices) overrides the ranking, for tests that prune on purpose.
    """
    amount = check_amount(amount)
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; use one of {CRITERIA}")
    original = model
    model = fold_constants(copy.deepcopy(model))  # weights behind constant subgraphs (the dynamo exporter's)
    make_initializers_unique(model)
    simplify(model)
    graph = Graph(model)
    groups, skipped = find_groups(graph)
    result = PruneResult(model, skipped=skipped)
    for group in groups:
        chosen = keep.get(group.node.name) if keep else None
        group.keep = np.asarray(chosen) if chosen is not None else choose_keep(unit_scores(graph, group, criterion), amount)
    changed = [g for g in groups if len(g.keep) < g.size]
    if not changed:  # nothing to remove: the model exactly as given, not merely an equivalent one
        result.model = copy.deepcopy(original)
        return result
    apply_groups(graph, changed)
    for group in changed:
        result.pruned.append({"node": group.node.name, "op_type": group.node.op_type,
                              "units_before": group.size, "units_after": int(len(group.keep))})
    del model.graph.value_info[:]  # the old intermediate shapes no longer hold
    remove_unused(model)
    check_weight_shapes(model)
    onnx.checker.check_model(model)
    return result


def unstructured_prune(model: onnx.ModelProto, amount: float) -> PruneResult:
    """A copy of ``model`` with the smallest ``amount`` of each weight tensor set to zero."""
    amount = check_amount(amount)
    model = fold_constants(copy.deepcopy(model))
    make_initializers_unique(model)
    graph = Graph(model, shapes=False)
    result = PruneResult(model)
    for node in model.graph.node:
        rule = rule_for(node)
        for weight in (rule.weights(node, graph) if rule and node.op_type != "PRelu" else []):
            name = node.input[weight.index]
            if name in result.sparsity or graph.initializers[name].data_type != onnx.TensorProto.FLOAT:
                continue
            values = graph.array(name)
            count = int(np.floor(amount * values.size + 1e-9))
            flat = values.ravel().copy()
            flat[np.argsort(np.abs(flat), kind="stable")[:count]] = 0
            graph.set_initializer(name, flat.reshape(values.shape))
            result.sparsity[name] = (int(np.count_nonzero(flat == 0)), int(flat.size))
    return result
