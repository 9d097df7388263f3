"""The per-op rules of the compression passes, registered by ONNX op type.

Everything a pass needs to know about one op lives in that op's rule (``quant/rules/<family>.py``):

- ``weights``      -- which inputs are weights, and their output-channel axis (INT8 quantization);
- ``biases``       -- which inputs are biases (int8 per tensor, only on request);
- ``activations``  -- which inputs may take a QuantizeLinear/DequantizeLinear pair (static activations);
- ``units``        -- as a *producer* of prunable units (neurons, channels, hidden units): how many, the
                      slices of its own tensors that belong to each unit, and where the units come out;
- ``receive``      -- ``size`` units arriving at one of its inputs along one axis: the slices of its tensors to
                      cut and where the units continue (or ``None``: the op cannot follow, pruning stops);
- ``join``         -- for merges (Add/Sub/Mul/Sum of computed tensors, Concat): how units arriving at several
                      inputs combine (:class:`Joined`); ``None`` hands each arriving input to ``receive``;
- ``simplify``     -- an exactly equivalent rewrite done before pruning (a zero initial state
                      built from the input's shape becomes ONNX's "no initial state");
- ``resize``       -- attributes to update once a producer keeps fewer units (``hidden_size``);
- ``validate``     -- raise :class:`InputError` when its weight shapes disagree with each other, its
                      attributes or its input's shape.

The passes (``quant.int8``, ``quant.prune``, ``quant.validate``) walk the graph and ask the rules;
adding an op is adding one rule, touching no pass. An op without a rule is left alone by
quantization and stops pruning at that point.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import onnx

from toolchain.errors import InputError, node_where

from quant.onnx_graph import Graph

#: Unit roles of a cut, for ranking: a unit's ``incoming`` parameters compute it, its ``outgoing``
#: parameters read it; ``carried`` ones only follow it (a PRelu slope, a BatchNorm scale).
INCOMING, OUTGOING, CARRIED = "incoming", "outgoing", "carried"


@dataclass(frozen=True)
class WeightInput:
    """A node input to quantize. ``channel_axis`` is the output-channel axis (None: per-tensor only)."""

    index: int
    channel_axis: int | None


@dataclass(frozen=True)
class Cut:
    """Units removed along ``axis`` of initializer ``tensor``.

    The axis holds ``blocks`` consecutive blocks with one entry per unit each (4 for an LSTM's stacked
    gates, 8 for its two stacked biases), so removing unit ``j`` removes entry ``b * size + j`` of
    every block ``b``.
    """

    tensor: str
    axis: int
    blocks: int = 1
    role: str = CARRIED


@dataclass(frozen=True)
class SizeEdit:
    """A constant that spells the unit count out: entry ``position`` of input ``index`` of ``node`` (a
    Reshape target shape) equals ``blocks * size`` and becomes ``blocks * kept``. Applied by giving that
    node a fresh constant, so other readers of the old one are unaffected."""

    node: str
    index: int
    position: int
    blocks: int = 1


@dataclass(frozen=True)
class Recount:
    """Constants that spell out how many of the arriving units some positions hold (a Split's sizes, a feature
    Slice's bounds). Once the pruning is decided, ``apply(node, graph, count)`` rewrites them, where
    ``count(positions)`` is how many of those arriving positions (indices into the arriving units) stay."""

    node: str
    apply: Callable


@dataclass(frozen=True)
class Joined:
    """Units meeting at a merge. ``kind`` ``"same"`` (elementwise Add/Sub/Mul/Sum): unit ``k`` of every input in
    ``inputs`` is unit ``k`` of the output, so they are removed together; ``"concat"``: the output's units are
    those of ``inputs`` one after the other. ``inputs`` pairs each input index with its unit axis;
    ``output`` is ``(tensor, axis)``."""

    kind: str
    inputs: tuple[tuple[int, int], ...]
    output: tuple[str, int]


@dataclass
class Units:
    """A producer's prunable units: ``size`` of them, its own ``cuts``, and the ``(tensor, axis)``
    places its outputs carry them (traced through the graph to their consumers)."""

    size: int
    cuts: list[Cut]
    outputs: list[tuple[str, int]]


@dataclass
class Flow:
    """What happens to units arriving at a node: the ``cuts`` it needs and where they continue."""

    cuts: list[Cut | SizeEdit | Recount] = field(default_factory=list)
    outputs: list[tuple[str, int]] = field(default_factory=list)
    #: ``(tensor, axis, positions)``: outputs carrying only some arriving units, in order (a Split's part,
    #: a feature Slice).
    selected: list[tuple[str, int, tuple[int, ...]]] = field(default_factory=list)


class Rule:
    """Defaults: no weights, no activation inputs, no units, units cannot pass, nothing to validate."""

    def weights(self, node: onnx.NodeProto, graph: Graph) -> list[WeightInput]:
        return []

    def activations(self, node: onnx.NodeProto, graph: Graph) -> list[int]:
        return []

    def biases(self, node: onnx.NodeProto, graph: Graph) -> list[int]:
        """Inputs that are the op's bias (quantized only on request, per tensor)."""
        return []

    def units(self, node: onnx.NodeProto, graph: Graph) -> Units | str | None:
        """The node's units; a string says why this producer cannot be pruned; None: not a producer."""
        return None

    def simplify(self, node: onnx.NodeProto, graph: Graph) -> bool:
        """Rewrite the node into an equivalent form that prunes more easily; True if it changed."""
        return False

    def receive(self, node: onnx.NodeProto, graph: Graph, index: int, axis: int, size: int) -> Flow | None:
        return None

    def join(self, node: onnx.NodeProto, graph: Graph, arriving: dict[int, int]) -> Joined | str | None:
        """Units arriving at inputs ``{index: axis}`` of a merge: how they combine (a string: why they cannot);
        None: not a merge here, ``receive`` handles each arriving input."""
        return None

    def resize(self, node: onnx.NodeProto, size: int) -> None:
        return None

    def validate(self, node: onnx.NodeProto, graph: Graph) -> None:
        return None


class DataWeightBiasRule(Rule):
    """Ops laid out as ``(data, weight, optional bias)`` -- Gemm, Conv: the data input is quantized as an
    activation unless it is a constant, and input 2 is the bias when it is a constant."""

    def activations(self, node: onnx.NodeProto, graph: Graph) -> list[int]:
        return [] if graph.is_initializer(node.input[0]) else [0]

    def biases(self, node: onnx.NodeProto, graph: Graph) -> list[int]:
        return [2] if len(node.input) > 2 and graph.is_initializer(node.input[2]) else []


RULES: dict[str, Rule] = {}


def rule(*op_types: str) -> Callable[[type[Rule]], type[Rule]]:
    """Class decorator: register one instance of the rule for each of ``op_types``."""

    def register(cls: type[Rule]) -> type[Rule]:
        instance = cls()
        for op_type in op_types:
            RULES[op_type] = instance
        return cls

    return register


def rule_for(node: onnx.NodeProto) -> Rule | None:
    """The rule of ``node``'s op (default domain only), or None."""
    if node.domain not in ("", "ai.onnx"):
        return None
    return RULES.get(node.op_type)


def mismatch(node: onnx.NodeProto, reason: str) -> InputError:
    """The error a rule's ``validate`` raises: one line naming the node."""
    return InputError(reason, where=node_where(node.name, node.op_type))


def known(*dims) -> bool:
    """True when every dim is a concrete integer (symbolic dims are None)."""
    return all(isinstance(d, int) and not isinstance(d, bool) for d in dims)


def normalize_axis(axis: int, rank: int | None) -> int | None:
    if axis >= 0:
        return axis
    return None if rank is None else axis + rank


class Unfit(Exception):
    """A broadcast operand that cannot follow the units (wrong size on the unit axis)."""


def broadcast_cut(graph: Graph, name: str, size: int, rank: int | None, axis: int, role: str = CARRIED) -> Cut | None:
    """The cut of constant ``name``, broadcast (numpy-style, aligned right) against a tensor of rank
    ``rank`` whose ``axis`` holds ``size`` units: None when the constant does not vary along the units
    (it broadcasts), :class:`Unfit` when it has another size there or the rank is unknown."""
    dims = graph.shape(name)
    if dims is None or rank is None:
        raise Unfit(name)
    local = axis - (rank - len(dims))
    if local < 0 or dims[local] == 1:
        return None
    if dims[local] != size:
        raise Unfit(name)
    return Cut(name, local, 1, role)


def broadcastable(small: list, big: list) -> bool:
    """True if ``small`` broadcasts onto ``big`` (unknown dims are assumed to fit)."""
    if len(small) > len(big):
        return False
    for a, b in zip(reversed(small), reversed(big)):
        if known(a, b) and a != 1 and a != b:
            return False
    return True


from quant.rules import merge  # noqa: E402,F401  (Concat, Split, Sum: pruning across merges; registers itself)

# Importing the rule modules registers them.
from quant.rules import conv, elementwise, gemm, gru, lstm, matmul, pad, prelu, shape  # noqa: E402,F401
