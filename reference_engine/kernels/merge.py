"""The graph's merge/split rows (docs/GRAPH_DESIGN.md): no weights, no state, one loop each.

Every row reads scratch slots and writes one; ``program.py`` chooses the slots so that an output slot
never holds a value the row still reads, except that ADD/SUB/MUL may write the slot of their FIRST
input (an n-ary sum is a chain of binary rows accumulating in its output slot): they are elementwise,
so ``y[i]`` depends only on ``x[i]`` and ``x2[i]``.
- ``ADD``, ``SUB``, ``MUL``: ``y = x (+ - *) x2`` over the features (float32, as RTNeural's C++ would);
- ``COPY_INTO``: ``y[offset:offset + n] = x`` (one row per input of a concat);
- ``SLICE``: ``y = x[offset:offset + n]`` (split halves, the input skip's feature 0).
"""
from __future__ import annotations

from numba import njit

from reference_engine.kernels import JIT

#: Opcodes of the program table (after the float and INT8 layer opcodes of ``program.py``).
ADD, SUB, MUL, COPY_INTO, SLICE = range(12, 17)


@njit(**JIT)
def merge(kind, offset, x, x2, y):
    """``x``, ``x2``: the views of the slots read (``x2`` is ``x`` for unary rows), ``y`` the slot written."""
    n = x.shape[0] if kind == COPY_INTO else y.shape[0]
    if kind == ADD:
        for i in range(n):
            y[i] = x[i] + x2[i]
    elif kind == SUB:
        for i in range(n):
            y[i] = x[i] - x2[i]
    elif kind == MUL:
        for i in range(n):
            y[i] = x[i] * x2[i]
    elif kind == COPY_INTO:
        for i in range(n):
            y[offset + i] = x[i]
    elif kind == SLICE:
        for i in range(n):
            y[i] = x[offset + i]
