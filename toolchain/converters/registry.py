"""The op registry: one converter per ONNX op type, registered with a decorator (as onnx2torch does).

A converter is a function ``(ctx: NodeContext) -> list[int]``: it reads the node through ``ctx``,
emits zero or more layer records with ``ctx.emit`` and returns the axis variables of its first
output (see :mod:`axes`). Adding an op is adding one function in one module of this package.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from toolchain.errors import UnsupportedError, node_where


@dataclass(frozen=True)
class Converter:
    op_type: str
    function: Callable
    #: True for ops that change no per-frame value (Transpose, Reshape, ...): they may sit between a
    #: causal ``Pad`` and its ``Conv``.
    shape_only: bool
    #: One line for the supported-op table.
    summary: str


REGISTRY: dict[str, Converter] = {}
#: Converters of nodes reading SEVERAL data tensors (merges: ``merges.py``), by op type.
MERGE_REGISTRY: dict[str, Converter] = {}

#: ONNX domains whose ops we know (the default one has two spellings).
DEFAULT_DOMAINS = ("", "ai.onnx")


def converter(*op_types: str, shape_only: bool = False, summary: str = "", merge: bool = False):
    """Register the decorated function as the converter of ``op_types`` (``merge``: of their nodes
    reading several data tensors)."""
    registry = MERGE_REGISTRY if merge else REGISTRY

    def register(function: Callable) -> Callable:
        for op_type in op_types:
            if op_type in registry:
                raise ValueError(f"two converters for {op_type}")
            registry[op_type] = Converter(op_type, function, shape_only, summary or (function.__doc__ or "").strip().splitlines()[0])
        return function

    return register


def lookup(op_type: str, domain: str, name: str, merge: bool = False) -> Converter:
    """The converter of ``op_type`` (``merge``: for a node reading several data tensors), or an
    :class:`UnsupportedError` naming the node."""
    if merge:
        entry = MERGE_REGISTRY.get(op_type) if domain in DEFAULT_DOMAINS else None
        if entry is None:
            raise UnsupportedError(f"{op_type} combines several data tensors; the merges kelly-tc routes are "
                                   f"{', '.join(sorted(MERGE_REGISTRY))} on the feature axis", where=node_where(name, op_type))
        return entry
    entry = REGISTRY.get(op_type) if domain in DEFAULT_DOMAINS else None
    if entry is None:
        qualified = f"{domain}::{op_type}" if domain not in DEFAULT_DOMAINS else op_type
        raise UnsupportedError(f"unsupported op {qualified}: RTNeural has no equivalent layer (supported: {', '.join(sorted(REGISTRY))})",
                               where=node_where(name, op_type))
    return entry
