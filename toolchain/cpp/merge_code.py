"""Per merge kind: the line of a graph header's ``forward()`` that computes it.

The merge/split kinds (``toolchain.layers.Merge``: add, sub, mul, concat, slice) are not RTNeural layers:
in a graph header each one is a buffer member (``detail::Buffer<size>``: a C array with RTNeural's STL
backend, an Eigen vector with its Eigen backend) filled by one call to a small helper of the header's
``detail`` namespace (``graph_text.HELPERS``), sizes and offsets as template arguments so the loops
unroll. One emitter per kind, registered in ``MERGE_EMITTERS``; each gets the merge record, the
member that holds its output and the C++ expressions of the values it reads, in wiring order.
"""
from __future__ import annotations

from typing import Callable

from toolchain.layers import Add, Concat, Merge, Mul, Slice, Sub

#: kind -> emitter(merge, output member, input expressions) -> the forward() lines.
MERGE_EMITTERS: dict[str, Callable[[Merge, str, list[str]], list[str]]] = {}


def merge_emitter(kind: str):
    def register(function):
        MERGE_EMITTERS[kind] = function
        return function

    return register


@merge_emitter("add")
def add(merge: Add, output: str, inputs: list[str]) -> list[str]:
    # n-ary: summed left to right, as ONNX Sum and a chain of Adds compute it
    return [f"detail::add<{merge.out_size}>({output}, {', '.join(inputs)});"]


@merge_emitter("sub")
def sub(merge: Sub, output: str, inputs: list[str]) -> list[str]:
    return [f"detail::sub<{merge.out_size}>({output}, {inputs[0]}, {inputs[1]});"]


@merge_emitter("mul")
def mul(merge: Mul, output: str, inputs: list[str]) -> list[str]:
    return [f"detail::mul<{merge.out_size}>({output}, {inputs[0]}, {inputs[1]});"]


@merge_emitter("concat")
def concat(merge: Concat, output: str, inputs: list[str]) -> list[str]:
    # one line per input: each copied into its offset of the output (feature axis, in input order)
    lines, offset = [], 0
    for expression, size in zip(inputs, merge.sizes):
        lines.append(f"detail::place<{offset}, {size}>({output}, {expression});")
        offset += size
    return lines


@merge_emitter("slice")
def slice_(merge: Slice, output: str, inputs: list[str]) -> list[str]:
    return [f"detail::slice<{merge.start}, {merge.size}>({output}, {inputs[0]});"]
