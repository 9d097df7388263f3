"""Pruning: structured (a smaller dense model) and unstructured (magnitude sparsity).

**Structured.** A *unit* is a dense neuron (Gemm / MatMul output feature), a conv output channel or an
LSTM/GRU hidden unit. One walk over the nodes (``find_groups``) follows every producer's units through the
graph (activations, bias Adds, PRelu, BatchNorm, Squeeze/Transpose/Gather/Pad...) to the ops that read them,
collecting every tensor slice a unit owns: its rows in all gate blocks of W and R, its entries in both
stacked biases and the initial states, its recurrent column of R, its slope, and the input
columns/channels of the next consumer. Units cross merges: an elementwise Add/Sub/Mul/Sum of computed
tensors makes unit ``k`` of every operand one unit (union-find over unit ids), so the producers of a residual
stream or a gate form one *group* that loses the same indices everywhere; a Concat concatenates its inputs'
units (the reader's columns follow the offsets); a Split or feature Slice hands on a range (and is recounted).
Units that reach a graph output are never pruned (the model's interface stays), nor are those joined with the
graph input or meeting an op without a rule or one that mixes axes (Flatten, a regrouping Reshape): their
whole group keeps its size. The same fraction ``amount`` of every group's units is removed (rounded down;
every producer and every slice keeps at least one unit).

**Ranking criterion** (documented choice): ``score(j) = ||incoming(j)|| * ||outgoing(j)||`` with the
L2 (or L1) norm -- in a group of joined producers ``||incoming(j)||`` is the sum of each producer's norm --
where ``incoming(j)`` is every parameter that computes unit ``j`` (its rows of W and
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
from quant.rules import CARRIED, INCOMING, OUTGOING, Flow, Joined, Recount, SizeEdit, rule_for
from quant.validate import check_weight_shapes

log = logging.getLogger(__name__)

CRITERIA = ("l2", "l1")


@dataclass
class Piece:
    """Positions along ``axis`` of initializer ``tensor`` and the unit (global id) each one belongs to."""

    tensor: str
    axis: int
    ids: np.ndarray
    role: str = CARRIED
    owner: str | None = None  # the producer whose incoming parameters these are (ranking)


@dataclass
class Recounted:
    """A rule's :class:`Recount` on ``node``, with the ids of the units that arrived there."""

    node: onnx.NodeProto
    recount: Recount
    ids: np.ndarray


@dataclass
class Group:
    """Units that are pruned together: one producer's, or several producers' joined by merges (a residual
    add, a gate). ``classes`` are its removable units (union-find roots); ``keep`` the indices of those kept."""

    producers: list[onnx.NodeProto]
    classes: np.ndarray
    pieces: list[Piece]
    recounts: list[Recounted]
    units: "UnitIds"
    producer_ids: list[np.ndarray]
    together: list[np.ndarray] = field(default_factory=list)  # class indices of each tensor: keep one of each
    keep: np.ndarray | None = None

    @property
    def node(self) -> onnx.NodeProto:
        return self.producers[0]

    @property
    def size(self) -> int:
        return len(self.classes)

    @property
    def label(self) -> str:
        return node_where(self.node.name, self.node.op_type)

    def removed(self) -> set[int]:
        kept = set(self.classes[self.keep].tolist()) if self.keep is not None else set(self.classes.tolist())
        return set(self.classes.tolist()) - kept

    def kept_units(self, ids: np.ndarray) -> int:
        removed = self.removed()
        return sum(root not in removed for root in self.units.roots(ids).tolist())

    def positions(self, piece: Piece, unit: int) -> np.ndarray:
        """Positions of ``piece`` that belong to this group's unit ``unit`` (an index into ``classes``)."""
        return np.flatnonzero(self.units.roots(piece.ids) == self.classes[unit])


class UnitIds:
    """Union-find over unit ids: units that must be removed together share a root; a root may be fixed
    (kept whatever the ranking says) with the reason why."""

    def __init__(self):
        self.parent: list[int] = []
        self.fixed: dict[int, str] = {}

    def fresh(self, count: int, reason: str | None = None) -> np.ndarray:
        ids = np.arange(len(self.parent), len(self.parent) + count)
        self.parent.extend(ids.tolist())
        if reason is not None:
            self.fix(ids, reason)
        return ids

    def find(self, unit: int) -> int:
        root = unit
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[unit] != root:
            self.parent[unit], unit = root, self.parent[unit]
        return root

    def roots(self, ids: np.ndarray) -> np.ndarray:
        return np.array([self.find(int(u)) for u in ids], dtype=np.int64)

    def union(self, first: np.ndarray, second: np.ndarray) -> None:
        for a, b in zip(first.tolist(), second.tolist()):
            a, b = self.find(a), self.find(b)
            if a != b:
                self.parent[b] = a
                if b in self.fixed:
                    self.fixed.setdefault(a, self.fixed.pop(b))

    def fix(self, ids: np.ndarray, reason: str) -> None:
        for root in set(self.roots(ids).tolist()):
            self.fixed.setdefault(root, reason)


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
    """Every group of units that can be removed, and the producers that keep theirs (with the reason).

    One walk over the nodes in topological order gives every tensor that carries units an array of unit
    ids along its unit axis: a producer's output gets fresh ids, ops that keep features in place pass them
    on, a Split or feature Slice hands on a range, a Concat concatenates, and an elementwise merge of
    computed tensors declares its operands' ids the same units (union-find). Every tensor slice a unit owns
    is a :class:`Piece`. Units that reach a graph output, an op that cannot follow them, or a merge with a
    tensor that is not traced (the graph input) are fixed; a group with a fixed unit keeps its size.
    """
    units = UnitIds()
    layouts: dict[str, tuple[int, np.ndarray]] = {}  # tensor -> (unit axis, unit ids)
    pieces: dict[tuple[str, int], Piece] = {}
    recounts: list[Recounted] = []
    producers: dict[str, tuple[onnx.NodeProto, np.ndarray]] = {}
    skipped = []

    def add_piece(piece: Piece) -> None:
        shape = graph.shape(piece.tensor)
        if shape is None or len(shape) <= piece.axis or shape[piece.axis] != len(piece.ids):
            size = len(set(units.roots(piece.ids).tolist()))
            units.fix(piece.ids, f"'{piece.tensor}' has shape {shape}, not {len(piece.ids) // max(size, 1)} x {size} "
                                 f"along axis {piece.axis}")
            return
        known_piece = pieces.get((piece.tensor, piece.axis))
        if known_piece is None:
            pieces[piece.tensor, piece.axis] = piece
        else:  # the same positions reached twice (a MatMul's bias, cut by it and by the Add): the same units
            units.union(known_piece.ids, piece.ids)

    def flow(node, rule_flow: Flow, ids: np.ndarray) -> None:
        for cut in rule_flow.cuts:
            if isinstance(cut, Recount):
                recounts.append(Recounted(node, cut, ids))
            elif isinstance(cut, SizeEdit):
                recounts.append(Recounted(node, Recount(cut.node, _size_edit(cut, len(ids))), ids))
            else:
                add_piece(Piece(cut.tensor, cut.axis, np.tile(ids, cut.blocks), cut.role))
        for tensor, axis in rule_flow.outputs:
            layouts[tensor] = (axis, ids)
        for tensor, axis, positions in rule_flow.selected:
            layouts[tensor] = (axis, ids[list(positions)])

    for node in graph.graph.node:
        rule = rule_for(node)
        where = node_where(node.name, node.op_type)
        arriving = {index: layouts[name] for index, name in enumerate(node.input) if name in layouts}
        if arriving:
            joined = rule.join(node, graph, {i: axis for i, (axis, _) in arriving.items()}) if rule else None
            if isinstance(joined, str):
                for _, ids in arriving.values():
                    units.fix(ids, f"its units reach {where}, which cannot follow them ({joined})")
            elif joined is not None:
                _join(graph, node, joined, layouts, units)
            else:
                for index, (axis, ids) in arriving.items():
                    received = rule.receive(node, graph, index, axis, len(ids)) if rule else None
                    if received is None:
                        units.fix(ids, f"its units reach {where}, which cannot follow them")
                    else:
                        flow(node, received, ids)
        produced = rule.units(node, graph) if rule else None
        if isinstance(produced, str):
            skipped.append({"node": where, "reason": produced})
        elif produced is not None and produced.size:
            ids = units.fresh(produced.size)
            producers[node.name] = (node, ids)
            for cut in produced.cuts:
                add_piece(Piece(cut.tensor, cut.axis, np.tile(ids, cut.blocks), cut.role, node.name))
            for tensor, axis in produced.outputs:
                layouts[tensor] = (axis, ids)
    for tensor in graph.outputs & set(layouts):
        units.fix(layouts[tensor][1], f"its units reach the graph output '{tensor}'")
    return _groups(producers, pieces, recounts, units, skipped, [ids for _, ids in layouts.values()])


def _size_edit(edit: SizeEdit, size: int):
    def apply(node, graph, count):
        _edit_size(graph, node, edit, size, count(tuple(range(size))))
    return apply


def _join(graph: Graph, node: onnx.NodeProto, joined: Joined, layouts: dict, units: UnitIds) -> None:
    """The output layout of a merge, and (``same``) the units its operands share."""
    parts = []
    for index, axis in joined.inputs:
        name = node.input[index]
        layout = layouts.get(name)
        if layout is not None and layout[0] == axis:
            parts.append(layout[1])
            continue
        if layout is not None:  # its units lie on another axis than the merge's
            units.fix(layout[1], f"its units reach {node_where(node.name, node.op_type)} on axis {layout[0]}, not {axis}")
        shape = graph.shape(name)
        size = shape[axis] if shape is not None and len(shape) > axis else None
        if joined.kind == "same":
            size = next(len(layouts[node.input[i]][1]) for i, _ in joined.inputs if node.input[i] in layouts)
        if not isinstance(size, int):
            for i, _ in joined.inputs:
                if node.input[i] in layouts:
                    units.fix(layouts[node.input[i]][1], f"its units reach {node_where(node.name, node.op_type)}, whose "
                                                        f"input '{name}' has an unknown size")
            return
        parts.append(units.fresh(size, f"{node_where(node.name, node.op_type)} joins its units with {_origin(graph, name)}, "
                                       f"whose size is fixed"))
    if joined.kind == "same":
        for other in parts[1:]:
            units.union(parts[0], other)
        layouts[joined.output[0]] = (joined.output[1], parts[0])
    else:
        layouts[joined.output[0]] = (joined.output[1], np.concatenate(parts))


def _origin(graph: Graph, name: str) -> str:
    """Where an untraced tensor comes from, for the report: the graph input, or the node that computes it."""
    seen = name
    while seen not in graph.inputs and seen in graph.producer:
        node = graph.producer[seen]
        if rule_for(node) is None or not node.input or node.op_type in ("Conv", "Gemm", "MatMul", "LSTM", "GRU"):
            return f"'{name}' (computed by {node_where(node.name, node.op_type)})"
        seen = node.input[0]
    return f"the graph input '{seen}'" if seen in graph.inputs else f"'{name}'"


def _groups(producers, pieces, recounts, units: UnitIds, skipped, tensors) -> tuple[list[Group], list[dict]]:
    """Producers whose units are joined form one group; a group with a fixed unit keeps its size."""
    linked = UnitIds()
    linked.parent = list(units.parent)
    for _, ids in producers.values():
        linked.union(ids[:1].repeat(len(ids)), ids)
    members: dict[int, list[str]] = {}
    for name, (_, ids) in producers.items():
        members.setdefault(linked.find(int(ids[0])), []).append(name)
    piece_roots = [(p, set(units.roots(p.ids).tolist())) for p in pieces.values()]  # computed once: large models
    recount_roots = [(r, set(units.roots(r.ids).tolist())) for r in recounts]
    tensor_roots = [set(units.roots(ids).tolist()) for ids in tensors if len(ids)]
    groups = []
    for root, names in members.items():
        classes = list(dict.fromkeys(units.roots(np.concatenate([producers[n][1] for n in names])).tolist()))
        fixed = [units.fixed[c] for c in classes if c in units.fixed]
        nodes = [producers[n][0] for n in names]
        if fixed:
            for name, node in zip(names, nodes):
                skipped.append({"node": node_where(node.name, node.op_type), "reason": fixed[0] + (
                    f" (its units are joined with {', '.join(repr(n) for n in names if n != name)})" if len(names) > 1 else "")})
            continue
        class_set = set(classes)
        group_pieces = [p for p, roots in piece_roots if class_set & roots]
        group_recounts = [r for r, roots in recount_roots if class_set & roots]
        position = {c: i for i, c in enumerate(classes)}
        together = [np.array(sorted({position[r] for r in roots}), dtype=np.int64) for roots in tensor_roots if roots <= class_set]
        groups.append(Group(nodes, np.array(classes, dtype=np.int64), group_pieces, group_recounts, units,
                            [producers[n][1] for n in names], together))
    return groups, skipped


# ------------------------------------------------------------------------------ ranking
def unit_scores(graph: Graph, group: Group, criterion: str = "l2") -> np.ndarray:
    """``incoming * outgoing`` per unit of the group (see the module docstring): ``incoming`` is the sum over
    the group's producers of each one's norm of the unit's incoming parameters (a residual unit is computed
    by every producer feeding the add), ``outgoing`` the norm of every parameter that reads the unit."""
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; use one of {CRITERIA}")
    index = {int(c): i for i, c in enumerate(group.classes)}
    incoming: dict[str, np.ndarray] = {}
    outgoing = np.zeros(group.size)
    has_outgoing = False
    for piece in group.pieces:
        if piece.role not in (INCOMING, OUTGOING):
            continue
        values = np.moveaxis(graph.array(piece.tensor).astype(np.float64), piece.axis, 0).reshape(len(piece.ids), -1)
        per_position = (values ** 2 if criterion == "l2" else np.abs(values)).sum(axis=1)
        for root, value in zip(group.units.roots(piece.ids).tolist(), per_position):
            if root not in index:
                continue  # a position of another group's unit (a concat reader's columns)
            if piece.role == INCOMING:
                incoming.setdefault(piece.owner or "", np.zeros(group.size))[index[root]] += value
            else:
                outgoing[index[root]] += value
                has_outgoing = True
    norm = np.sqrt if criterion == "l2" else (lambda total: total)
    total_in = sum((norm(total) for total in incoming.values()), np.zeros(group.size))
    return total_in * (norm(outgoing) if has_outgoing else 1.0)


def choose_keep(scores: np.ndarray, amount: float) -> np.ndarray:
    """Indices (ascending) of the units kept: all but the ``floor(amount * n)`` lowest scores (>= 1 kept)."""
    size = scores.shape[0]
    remove = min(int(np.floor(amount * size + 1e-9)), size - 1)
    order = np.argsort(scores, kind="stable")  # ties: the lower index goes first, deterministically
    return np.sort(order[remove:])


def keep_one_of_each(keep: np.ndarray, scores: np.ndarray, together: list[np.ndarray]) -> np.ndarray:
    """``keep`` plus, for every tensor of the group left with no unit, its best-scoring unit: a joined group
    (a Concat summed with a dense of the same width) may otherwise empty one producer or one slice."""
    kept = set(keep.tolist())
    for units in together:
        if not kept & set(units.tolist()):
            kept.add(int(units[np.argmax(scores[units])]))
    return np.array(sorted(kept), dtype=np.int64)


# ------------------------------------------------------------------------------ cutting
def apply_groups(graph: Graph, groups: list[Group]) -> None:
    """Remove the units the groups do not keep from every tensor slice they own, recount the constants that
    spell their numbers out (split sizes, slice bounds, reshape targets) and resize the producers."""
    removed = set().union(*(group.removed() for group in groups)) if groups else set()
    if not removed:
        return
    units = groups[0].units
    arrays: dict[str, np.ndarray] = {}
    pieces = {(p.tensor, p.axis): p for group in groups for p in group.pieces}
    for piece in pieces.values():
        keep = np.flatnonzero([root not in removed for root in units.roots(piece.ids).tolist()])
        array = arrays.get(piece.tensor, graph.array(piece.tensor))
        arrays[piece.tensor] = np.take(array, keep, axis=piece.axis)
    recounts = list({id(r): r for group in groups for r in group.recounts}.values())
    for recounted in recounts:
        alive = np.array([root not in removed for root in units.roots(recounted.ids).tolist()])
        recounted.recount.apply(recounted.node, graph, lambda positions, alive=alive: int(alive[list(positions)].sum()))
    for group in groups:
        for node, ids in zip(group.producers, group.producer_ids):
            rule_for(node).resize(node, group.kept_units(ids))
    for name, array in arrays.items():
        graph.set_initializer(name, array)


def _edit_size(graph: Graph, node: onnx.NodeProto, edit: SizeEdit, size: int, kept: int) -> None:
    value = np.array(graph.constant(node.input[edit.index]))
    if value[edit.position] != edit.blocks * size:
        raise InputError(f"entry {edit.position} of '{node.input[edit.index]}' is {value[edit.position]}, "
                         f"not {edit.blocks * size}", where=node_where(node.name, node.op_type))
    value[edit.position] = edit.blocks * kept
    node.input[edit.index] = graph.add_initializer(graph.unique_name(f"{node.input[edit.index]}_pruned"), value)


#: Computed constants up to this many elements are folded for the pruning walk (pads, bounds, shapes).
SMALL_CONSTANT = 64


def fold_small_constants(model: onnx.ModelProto) -> None:
    """Replace every small constant computed through a size-from-value op by an initializer.

    ``fold_constants`` leaves ``ConstantOfShape``/``Expand`` chains alone (folding them in general would
    grow the file), but the TorchScript exporter computes a causal conv's ``F.pad`` amounts exactly so
    (``Cast(Reshape(Transpose(Slice(Reshape(Concat(c, ConstantOfShape(n)))))))``): without their value the
    Pad rule cannot see that only the time axis is padded, and pruning stopped at every TCN/WaveNet conv.
    Only values of at most ``SMALL_CONSTANT`` elements read by a computed node are folded.
    """
    from toolchain.converters import folding

    graph = model.graph
    opsets = {(entry.domain if entry.domain != "ai.onnx" else ""): entry.version for entry in model.opset_import}
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    values: dict[str, np.ndarray] = {}  # computed constants (initializers are read when a node needs them)
    outputs = {output.name for output in graph.output}
    replaced = False
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type in folding.NONDETERMINISTIC | {"DequantizeLinear", "QuantizeLinear"} \
                or any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            continue
        named = [name for name in node.input if name]
        if all(name in values or name in initializers for name in named) and not any(name in outputs for name in node.output):
            try:
                inputs = [(values[n] if n in values else folding.to_array(initializers[n], n)) if n else None for n in node.input]
                results = folding.fold_node(node, inputs, {}, opsets, node_where(node.name, node.op_type))
            except InputError:  # not evaluable here: left as it is (the converter says why, if it matters)
                continue
            values.update({name: value for name, value in zip(node.output, results) if name})
            continue
        for index, name in enumerate(node.input):  # a computed node reading a small computed constant
            if name in values and values[name].size <= SMALL_CONSTANT:
                folded = name + "_folded"
                if folded not in initializers:
                    graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(values[name]), folded))
                    initializers[folded] = graph.initializer[-1]
                node.input[index] = folded
                replaced = True
    if replaced:
        remove_unused(model)


def simplify(model: onnx.ModelProto) -> None:
    """Apply every rule's exactly-equivalent rewrite (see ``Rule.simplify``), then drop dead nodes."""
    graph = Graph(model, shapes=False)
    changed = [rule_for(node).simplify(node, graph) for node in model.graph.node if rule_for(node)]
    if any(changed):
        remove_unused(model)


def prepare(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` (changed in place) as the structured pass walks it: weights behind constant subgraphs folded
    (the dynamo exporter's), small computed constants folded, every shared weight copied per reader (cutting
    one reader's copy must not reshape another's), and each rule's exactly-equivalent rewrites applied."""
    model = fold_constants(model)
    fold_small_constants(model)
    make_initializers_unique(model)
    simplify(model)
    return model


def structured_prune(model: onnx.ModelProto, amount: float, criterion: str = "l2",
                     keep: dict[str, np.ndarray] | None = None) -> PruneResult:
    """A smaller copy of ``model`` with ``amount`` of every prunable layer's units removed.

    ``keep`` (producer node name -> indices of its units) overrides the ranking, for tests that prune on
    purpose; in a group of joined producers it keeps the joined units of those indices.
    """
    amount = check_amount(amount)
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; use one of {CRITERIA}")
    original = model
    model = prepare(copy.deepcopy(model))
    graph = Graph(model)
    groups, skipped = find_groups(graph)
    result = PruneResult(model, skipped=skipped)
    for group in groups:
        chosen = next(((ids, keep[node.name]) for node, ids in zip(group.producers, group.producer_ids)
                       if keep and node.name in keep), None)
        if chosen is not None:
            roots = set(group.units.roots(chosen[0][np.asarray(chosen[1], dtype=np.int64)]).tolist())
            group.keep = np.array([i for i, c in enumerate(group.classes.tolist()) if c in roots], dtype=np.int64)
        else:
            scores = unit_scores(graph, group, criterion)
            group.keep = keep_one_of_each(choose_keep(scores, amount), scores, group.together)
    changed = [g for g in groups if len(g.keep) < g.size]
    if not changed:  # nothing to remove: the model exactly as given, not merely an equivalent one
        result.model = copy.deepcopy(original)
        return result
    apply_groups(graph, changed)
    for group in changed:
        for node, ids in zip(group.producers, group.producer_ids):
            entry = {"node": node.name, "op_type": node.op_type, "units_before": int(len(ids)),
                     "units_after": group.kept_units(ids)}
            if len(group.producers) > 1:  # joined by merges: the same units removed from each
                entry["joined_with"] = [other.name for other in group.producers if other is not node]
            result.pruned.append(entry)
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
