"""The gate-order table, and the one function that reorders gate blocks between conventions.

Recurrent weights stack one block of rows (or columns) per gate. Every framework stacks them in
its own order, and getting this wrong yields a model that loads and sounds wrong:

- ONNX ``LSTM``:    i, o, f, c   (input, output, forget, cell)       -- onnx Operators.md, LSTM
- RTNeural ``lstm``: i, f, c, o  (Keras order)                        -- RTNeural lstm.tpp
- PyTorch ``LSTM``: i, f, g, o   (g is the cell candidate == RTNeural's c)
- ONNX ``GRU``:     z, r, h      (update, reset, hidden candidate)
- RTNeural ``gru``: z, r, h      (Keras order, equal to ONNX)
- PyTorch ``GRU``:  r, z, n      (n is the candidate == h)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

LSTM_ONNX = ("i", "o", "f", "c")
LSTM_RTNEURAL = ("i", "f", "c", "o")
LSTM_TORCH = ("i", "f", "c", "o")  # PyTorch calls the candidate "g"; same position as Keras' "c"

GRU_ONNX = ("z", "r", "h")
GRU_RTNEURAL = ("z", "r", "h")
GRU_TORCH = ("r", "z", "h")  # PyTorch calls the candidate "n"

#: The canonical order of gate blocks inside kelly-tc's layer records (see layers.py).
LSTM_CANONICAL = LSTM_RTNEURAL
GRU_CANONICAL = GRU_RTNEURAL


def reorder_gates(array: np.ndarray, source: Sequence[str], target: Sequence[str], axis: int = 0) -> np.ndarray:
    """Return ``array`` with its gate blocks along ``axis`` moved from ``source`` to ``target`` order.

    ``array.shape[axis]`` must be ``len(source) * hidden_size``. The result is a new contiguous array;
    reordering twice with the orders swapped gives back the input exactly.
    """
    if sorted(source) != sorted(target):
        raise ValueError(f"gate orders {tuple(source)} and {tuple(target)} name different gates")
    gates = len(source)
    if array.shape[axis] % gates:
        raise ValueError(f"axis {axis} of size {array.shape[axis]} does not split into {gates} gate blocks")
    blocks = dict(zip(source, np.split(array, gates, axis=axis)))
    return np.ascontiguousarray(np.concatenate([blocks[gate] for gate in target], axis=axis))
