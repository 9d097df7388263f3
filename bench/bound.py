"""The bound a model's weights set on this machine, to judge the engine's compute time against.

A frame of any model here is a chain of matrix-vector products over its weights plus O(size)
element-wise work. The bound is the same matrix-vector products done by the BLAS ``sgemv`` (``np.dot``
called inside compiled code, so no Python per product; one thread), hot in cache, in model order,
repeated in a loop: what a tuned library achieves over the same bytes and FLOPs on this core.
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
from numba import njit
from numba.typed import List

from toolchain.layers import GRU, LSTM, Conv1D, Dense, Model


def matrices(model: Model) -> list[np.ndarray]:
    """The matrices a frame multiplies, in the shapes the engine uses (rows = outputs)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, Dense):
            found.append(layer.weight)
        elif isinstance(layer, LSTM):
            found.append(np.hstack([layer.weight_ih, layer.weight_hh]))
        elif isinstance(layer, GRU):
            found += [layer.weight_ih, layer.weight_hh]
        elif isinstance(layer, Conv1D):
            found.append(np.ascontiguousarray(layer.weight.reshape(layer.out_size, -1)))
    return [np.ascontiguousarray(m, dtype=np.float32) for m in found]


def multiply_adds(model: Model) -> int:
    return int(sum(m.size for m in matrices(model)))


def weight_bytes(model: Model) -> int:
    return int(sum(m.nbytes for m in matrices(model)))


@contextlib.contextmanager
def one_blas_thread():
    """Limit BLAS to one thread (the engine uses one core); a no-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@njit(cache=True)
def _blas_chain(weights, inputs, outputs, repeats):
    for _ in range(repeats):
        for index in range(len(weights)):
            np.dot(weights[index], inputs[index], outputs[index])


def _best_of(run, repeats: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run(repeats)
        best = min(best, (time.perf_counter() - started) / repeats)
    return best


def blas_bound_seconds(model: Model, repeats: int = 2000) -> float | None:
    """Seconds per frame for BLAS to do the model's matrix-vector products in sequence; ``None`` without any."""
    found = matrices(model)
    if not found:
        return None
    weights = List(found)
    inputs = List([np.ones(m.shape[1], np.float32) for m in found])
    outputs = List([np.empty(m.shape[0], np.float32) for m in found])
    with one_blas_thread():
        _blas_chain(weights, inputs, outputs, 1)
        return _best_of(lambda n: _blas_chain(weights, inputs, outputs, n), repeats)
