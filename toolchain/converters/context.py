"""What a converter sees of the graph while the chain is walked: one node, its inputs, its axes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from toolchain.converters.axes import AxisRoles, RoleConflict
from toolchain.converters.folding import CONST, DATA, PreparedGraph, is_zero
from toolchain.errors import InputError, UnsupportedError, node_where
from toolchain.layers import MAX_LAYER_SIZE, Conv1D, Dense, Layer

FLOAT_KINDS = "f"


@dataclass
class PendingPad:
    """A ``Pad`` of ``frames`` zeros before the first frame, waiting for the ``Conv`` it makes causal."""

    frames: int
    time_axis: int
    where: str


@dataclass
class WalkState:
    """What the walk has built so far (shared by the converters of one graph, in order)."""

    layers: list[Layer] = field(default_factory=list)
    pending_pad: PendingPad | None = None  # of the node's data input; a Pad or shape-only op passes it on
    pending_trim: object | None = None  # causal_trim.PendingTrim: a padded Conv awaiting its Slice
    notes: list[str] = field(default_factory=list)
    #: (layer index, order, where) of each channel-major flatten of a 2-D map (converters/conv2d.py)
    frame_orders: list = field(default_factory=list)
    #: Frames by which the current node delays its output (an over-padded Conv; walk.py refuses a
    #: delayed stream wherever a layer or an undelayed branch reads it).
    delay: int = 0
    delay_reason: str = ""  # the refusal, should the delayed stream reach a layer or the output
    #: (frames, where): a Reshape whose target fixes the variable time axis to the example's length (the dynamo
    #: exporter bakes it in for time-major RNNs): the ONNX model then runs only at that length.
    pinned_time: tuple[int, str] | None = None


class Outputs(dict):
    """What a converter with several outputs (Split) returns: ``{output index: (value, axes)}``."""


@dataclass
class NodeContext:
    graph: PreparedGraph
    node: onnx.NodeProto
    roles: AxisRoles
    state: WalkState
    data_index: int
    in_axes: list[int]
    #: The model value the (first) data input holds (walk.py: 0 = the input, i + 1 = layers[i]).
    value: int = 0
    #: True when the data input is the last layer's value and nothing else reads it: a per-feature op may
    #: fold into that layer (bias, activation) without changing what another branch sees.
    foldable: bool = False
    #: Every data input as (value, axes), in input order (merges read several).
    sources: list = field(default_factory=list)
    #: Frames by which the data input lags the model input (walk.py's delay tracking).
    source_delay: int = 0
    #: The axis variables of a data tensor walked so far (None if not reached): Slice bounds computed from
    #: a tensor's shape are evaluated through it.
    tensor_axes: object = lambda name: None

    # ----------------------------------------------------------------------------- messages
    @property
    def where(self) -> str:
        return node_where(self.node.name, self.node.op_type)

    def unsupported(self, reason: str) -> UnsupportedError:
        return UnsupportedError(reason, where=self.where)

    def invalid(self, reason: str) -> InputError:
        return InputError(reason, where=self.where)

    # ----------------------------------------------------------------------------- attributes
    def attr(self, name: str, default=None):
        for attribute in self.node.attribute:
            if attribute.name == name:
                value = onnx.helper.get_attribute_value(attribute)
                return value.decode() if isinstance(value, bytes) else value
        return default

    @property
    def opset(self) -> int:
        return self.graph.opsets.get("", 0)

    # ----------------------------------------------------------------------------- inputs
    def has_input(self, index: int) -> bool:
        return len(self.node.input) > index and self.node.input[index] != ""

    def constant(self, index: int, what: str) -> np.ndarray:
        """A constant input (after folding), refusing a dynamic one."""
        if not self.has_input(index):
            raise self.invalid(f"missing {what} (input #{index})")
        name = self.node.input[index]
        if self.graph.kind.get(name) != CONST:
            source = "the model input" if self.graph.kind.get(name) == DATA else "the input's shape"
            raise self.unsupported(f"{what} '{name}' is computed from {source} (a dynamic weight); RTNeural weights are constants")
        return self.graph.constants[name]

    def weight(self, index: int, what: str, ndim: int | None = None) -> np.ndarray:
        """A constant float weight as float32, refusing NaN/Inf and the wrong rank."""
        value = np.asarray(self.constant(index, what))
        if value.dtype.kind != FLOAT_KINDS:
            raise self.unsupported(f"{what} '{self.node.input[index]}' has dtype {value.dtype}; expected floating point")
        if ndim is not None and value.ndim != ndim:
            raise self.invalid(f"{what} '{self.node.input[index]}' has shape {list(value.shape)}, expected {ndim}-D")
        if not np.all(np.isfinite(value)):
            raise self.invalid(f"{what} '{self.node.input[index]}' contains NaN or Inf")
        return np.ascontiguousarray(value, dtype=np.float32)

    def optional_weight(self, index: int, what: str, ndim: int | None = None) -> np.ndarray | None:
        return self.weight(index, what, ndim) if self.has_input(index) else None

    def int_list(self, attribute: str, input_index: int | None = None) -> list[int] | None:
        """An int list given as an attribute (old opsets) or a constant input (new opsets)."""
        if input_index is not None and self.has_input(input_index):
            return [int(v) for v in np.asarray(self.constant(input_index, attribute)).reshape(-1)]
        value = self.attr(attribute)
        return None if value is None else [int(v) for v in value]

    def is_zero(self, index: int) -> bool:
        return not self.has_input(index) or is_zero(self.graph, self.node.input[index])

    # ----------------------------------------------------------------------------- shapes and axes
    def dims(self, tensor: str):
        return self.graph.dims.get(tensor)

    @property
    def in_dims(self):
        return self.dims(self.node.input[self.data_index])

    @property
    def out_dims(self):
        return self.dims(self.node.output[0])

    def require(self, axis: int, roles, why: str) -> None:
        try:
            self.roles.restrict(axis, roles, why)
        except RoleConflict as conflict:
            raise self.unsupported(str(conflict)) from None

    def unify(self, first: int, second: int, why: str) -> None:
        try:
            self.roles.unify(first, second, why)
        except RoleConflict as conflict:
            raise self.unsupported(str(conflict)) from None

    def new_axis(self, roles) -> int:
        return self.roles.new(frozenset({roles} if isinstance(roles, str) else roles))

    def axis_index(self, axis: int, rank: int) -> int:
        """Normalise a possibly negative axis attribute against ``rank``."""
        if not -rank <= axis < rank:
            raise self.invalid(f"axis {axis} is out of range for a rank-{rank} tensor")
        return axis % rank

    # ----------------------------------------------------------------------------- layers
    def emit(self, layer: Layer, inputs: tuple[int, ...] | None = None) -> int:
        """Append ``layer`` reading ``inputs`` (default: the node's data value, then the previous layer's
        output for a node emitting several layers); return the value it computes."""
        layer.source = self.node.name or self.node.op_type
        if inputs is None:
            inputs = (self.value,)
        layer.inputs = tuple(inputs)
        self.state.layers.append(layer)
        self.value = len(self.state.layers)
        self.foldable = False  # a node's own layers never fold into each other by accident
        return self.value

    def foldable_layer(self) -> Dense | Conv1D | None:
        """The previous layer if this node's per-feature op can merge into it (a linear dense/conv1d whose
        output nothing else reads)."""
        previous = self.state.layers[-1] if self.state.layers and self.foldable else None
        if isinstance(previous, (Dense, Conv1D)) and previous.activation == "":
            return previous
        return None

    def check_size(self, value: int, what: str) -> int:
        if not 0 < int(value) <= MAX_LAYER_SIZE:
            raise self.invalid(f"{what} {value} outside 1..{MAX_LAYER_SIZE}")
        return int(value)
