"""Axis roles: the proof that shape-only nodes leave the per-frame computation alone.

RTNeural sees one frame (one feature vector) per call. An ONNX model sees whole tensors such as
``[batch, time, feature]``, and exporters wrap recurrent layers in Transposes, Reshapes and Squeezes.
Removing those nodes is only correct if every layer still contracts over the *feature* axis and
never mixes *time* steps, whatever the wrappers did to the axis order.

So every axis of every tensor on the data path is tracked as a variable whose role is one of
``batch``, ``time``, ``feature`` or ``one`` (a singleton such as an RNN's direction axis). Ops
constrain roles (a MatMul contracts over a ``feature`` axis; an LSTM with layout 0 reads
``[time, batch, feature]``), shape-only ops move the variables around (a Transpose permutes them,
a Reshape maps them by size), and an axis shared by two tensors is the same variable. A conflict --
a MatMul contracting over what an LSTM treats as time -- is a refusal naming the node. The classes
are a small union-find; each class keeps the set of roles still possible.
"""
from __future__ import annotations

from dataclasses import dataclass, field

BATCH, TIME, FEATURE, ONE = "batch", "time", "feature", "one"
#: The channel axis of a 2-D (conv2d) frame: a frame is then a [features x channels] map, flattened
#: feature-major as RTNeural's conv2d lays it out (converters/conv2d.py).
CHANNEL = "channel"
ALL_ROLES = frozenset({BATCH, TIME, FEATURE, ONE, CHANNEL})
#: What a size-1 axis that appears from nowhere (Unsqueeze, Reshape) may be: never time.
SINGLETON_ROLES = frozenset({BATCH, ONE, FEATURE, CHANNEL})
#: Axes a frame-by-frame runner feeds with size 1 (or replicates): they carry no per-frame meaning.
PASSIVE_ROLES = frozenset({BATCH, ONE})

#: Words in a symbolic dimension name that say "this is the time axis" (dynamic_axes names).
TIME_WORDS = ("time", "seq", "frame", "len", "step", "sample")
BATCH_WORDS = ("batch",)


class RoleConflict(Exception):
    """Raised by :class:`AxisRoles` when a constraint leaves an axis with no possible role."""


def describe(roles: frozenset[str]) -> str:
    """``the time axis`` / ``a batch or one axis``: how a message names an axis by its roles."""
    if len(roles) == 1:
        return f"the {next(iter(roles))} axis"
    return "an axis that may be " + " or ".join(sorted(roles))


@dataclass
class AxisRoles:
    """Union-find over axis variables; each class keeps the roles it may still take."""

    parent: list[int] = field(default_factory=list)
    allowed: list[frozenset[str]] = field(default_factory=list)
    #: Bumped whenever an existing class narrows or two merge (not by new()): a tensor already checked
    #: can only become invalid after such a change, so the walk re-checks them only then (issue 17.6).
    changes: int = 0

    def new(self, roles: frozenset[str] = ALL_ROLES) -> int:
        self.parent.append(len(self.parent))
        self.allowed.append(frozenset(roles))
        return len(self.parent) - 1

    def find(self, axis: int) -> int:
        while self.parent[axis] != axis:
            self.parent[axis] = self.parent[self.parent[axis]]
            axis = self.parent[axis]
        return axis

    def roles(self, axis: int) -> frozenset[str]:
        return self.allowed[self.find(axis)]

    def role(self, axis: int) -> str | None:
        """The axis' role if it is decided, else None."""
        roles = self.roles(axis)
        return next(iter(roles)) if len(roles) == 1 else None

    def restrict(self, axis: int, roles: frozenset[str] | set[str] | str, why: str) -> None:
        """Allow ``axis`` only ``roles``; ``why`` says what needs it, for the conflict message."""
        roles = frozenset({roles} if isinstance(roles, str) else roles)
        root = self.find(axis)
        remaining = self.allowed[root] & roles
        if not remaining:
            raise RoleConflict(f"{why}, but that axis is {describe(self.allowed[root])}")
        if remaining != self.allowed[root]:
            self.changes += 1
        self.allowed[root] = remaining

    def unify(self, first: int, second: int, why: str) -> None:
        """Declare two axes the same axis (e.g. an op's input and output time axis)."""
        a, b = self.find(first), self.find(second)
        if a == b:
            return
        remaining = self.allowed[a] & self.allowed[b]
        if not remaining:
            raise RoleConflict(f"{why}, but one is {describe(self.allowed[a])} and the other {describe(self.allowed[b])}")
        self.parent[b] = a
        self.allowed[a] = remaining
        self.changes += 1

    def same(self, first: int, second: int) -> bool:
        return self.find(first) == self.find(second)


def check_tensor(roles: AxisRoles, axes: list[int], dims: tuple | None, name: str) -> None:
    """A per-frame tensor has at most one time axis and one feature axis, each axis its own class.

    Two feature axes mean some op contracted over what another treats as time (or batch): frames
    would be mixed, and no frame-by-frame runner can reproduce that.
    """
    roots = [roles.find(axis) for axis in axes]
    if len(set(roots)) != len(roots):
        raise RoleConflict(f"tensor '{name}' would use one axis twice")
    for role in (TIME, FEATURE, CHANNEL):
        decided = [i for i, axis in enumerate(axes) if roles.roles(axis) == {role}]
        if role in (FEATURE, CHANNEL) and dims is not None:
            # Several size-1 axes may each be "the" feature axis of a 1-wide frame; only real ones count.
            decided = [i for i in decided if not (i < len(dims) and dims[i] == 1)]
        if len(decided) > 1:
            raise RoleConflict(f"tensor '{name}' would have {len(decided)} {role} axes (axes {decided}): frames would be mixed")


def hinted_role(dim) -> str | None:
    """The role a symbolic dimension's name suggests (``dynamic_axes={0: 'batch', 1: 'time'}``)."""
    if not isinstance(dim, str):
        return None
    lowered = dim.lower()
    if any(word in lowered for word in BATCH_WORDS):
        return BATCH
    if any(word in lowered for word in TIME_WORDS):
        return TIME
    return None


def resolve_tensor(roles: AxisRoles, axes: list[int], dims: tuple, prefer_time: bool = True) -> tuple[str, ...]:
    """Decide every still-open axis of a model input or output and return the roles in axis order.

    An open axis is one no op constrained: only stateless layers touched it. Any decision is then
    correct frame by frame; we pick the conventional one: a named dimension's hint, the last
    fixed-size axis as feature, the last other non-singleton axis as time, the rest batch/one.
    """
    def open_axes(role):
        return [i for i, axis in enumerate(axes) if role in roles.roles(axis) and roles.role(axis) is None]

    def decided(role):
        return [i for i, axis in enumerate(axes) if roles.role(axis) == role]

    for i, axis in enumerate(axes):  # named dimensions first
        hint = hinted_role(dims[i])
        if hint and roles.role(axis) is None and hint in roles.roles(axis) and not (hint == TIME and decided(TIME)):
            roles.restrict(axis, hint, "named dimension")
    if not decided(FEATURE):
        candidates = [i for i in open_axes(FEATURE) if isinstance(dims[i], int)]
        if candidates:
            roles.restrict(axes[candidates[-1]], FEATURE, "the model input's feature axis")
    if prefer_time and not decided(TIME):
        candidates = open_axes(TIME)
        wide = [i for i in candidates if dims[i] != 1]
        if wide or candidates:
            roles.restrict(axes[(wide or candidates)[-1]], TIME, "the model input's time axis")
    for i, axis in enumerate(axes):
        if roles.role(axis) is None:
            passive = roles.roles(axis) & PASSIVE_ROLES
            choice = ONE if (dims[i] == 1 and ONE in passive) else (BATCH if BATCH in passive else ONE)
            roles.restrict(axis, choice if choice in roles.roles(axis) else next(iter(sorted(roles.roles(axis)))), "an unconstrained axis")
    return tuple(roles.role(axis) for axis in axes)
