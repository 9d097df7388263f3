"""The kernels of a per-sample frame, each timed alone: how long one call takes at the sizes of an amp model.

    python -m bench.kernel_latency            # writes bench/results/kernel_latency.{json,md}

Each kernel is called in a compiled loop (no Python per call) whose every call reads what the previous one
wrote, as the frames of a recurrent model do: the figure is the latency of one call, the floor under a
per-sample frame. Median of 5 repetitions of ``--calls`` calls; each case's arrays in one buffer (see
:func:`packed`). See docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from numba import njit
from rich.console import Console

from reference_engine.benchmark import machine
from reference_engine.kernels import JIT
from reference_engine.kernels.dense import matvec_bias, matvec_bias_columns
from reference_engine.kernels.gru import gru, gru_cell
from reference_engine.kernels.lstm import lstm, lstm_cell
from reference_engine.kernels.maths import tanh32
from toolchain import atomic

RESULTS = Path(__file__).resolve().parent / "results"
TINY = np.float32(1e-7)


@njit(**JIT)
def tanh_calls(calls, values, out):
    for _ in range(calls):
        for i in range(values.shape[0]):
            out[i] = tanh32(values[i])
        values[0] += out[values.shape[0] - 1] * TINY


@njit(**JIT)
def lstm_cell_calls(calls, gates, c, h, y):
    for _ in range(calls):
        lstm_cell(gates, c, h, y)
        gates[0] += y[0] * TINY


@njit(**JIT)
def gru_cell_calls(calls, input_part, hidden_part, h, y):
    for _ in range(calls):
        gru_cell(input_part, hidden_part, h, y)
        hidden_part[0] += y[0] * TINY


@njit(**JIT)
def columns_calls(calls, weight_t, bias, x, y):
    for _ in range(calls):
        matvec_bias_columns(weight_t, bias, x, y)
        x[0] = y[y.shape[0] - 1] * TINY


@njit(**JIT)
def rows_calls(calls, weight, bias, x, y):
    for _ in range(calls):
        matvec_bias(weight, bias, x, y)
        x[0] = y[y.shape[0] - 1] * TINY


@njit(**JIT)
def lstm_calls(calls, weight, bias, x, h, c, xh, gates, y):
    for _ in range(calls):
        lstm(weight, bias, x, h, c, xh, gates, y, True)


@njit(**JIT)
def gru_calls(calls, weight_ih, weight_hh, bias_ih, bias_hh, x, h, input_part, hidden_part, y):
    for _ in range(calls):
        gru(weight_ih, weight_hh, bias_ih, bias_hh, x, h, input_part, hidden_part, y, True, True)


def packed(arrays: tuple) -> tuple:
    """The arrays copied into one buffer, 64-byte aligned one after the other: separate numpy allocations can
    land at addresses equal modulo 4 KB, where a load after a store to the other array stalls (measured here:
    a [32 x 16] product 65 or 264 ns depending on where numpy put y). The engine's own buffers are small and
    sit close together; so do these."""
    sizes = [(a.size + 15) // 16 * 16 for a in arrays]
    arena = np.zeros(sum(sizes) + 16, np.float32)
    start = (-arena.ctypes.data // 4) % 16  # first float on a 64-byte boundary
    views = []
    for array, size in zip(arrays, sizes):
        view = arena[start:start + array.size].reshape(array.shape)
        view[...] = array
        views.append(view)
        start += size
    return tuple(views)


def cases(rng) -> list[tuple[str, object, tuple]]:
    def f(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def z(*shape):
        return np.zeros(shape, np.float32)

    rows = []
    for n in (8, 16, 64):
        rows.append((f"tanh of {n} values", tanh_calls, (f(n), z(n))))
    for hidden in (8, 12):
        rows.append((f"LSTM cell, {hidden} units (gates -> c, h)", lstm_cell_calls, (f(4 * hidden), z(hidden), z(hidden), z(hidden))))
    rows.append(("GRU cell, 8 units", gru_cell_calls, (f(24), f(24), z(8), z(8))))
    for cols, rows_ in ((13, 48), (16, 32), (8, 24)):
        rows.append((f"matvec by columns [{rows_} x {cols}] (stored [{cols}, {rows_}])", columns_calls,
                     (f(cols, rows_), f(rows_), f(cols), z(rows_))))
    rows.append(("matvec by rows [1 x 8] (a dense 8 -> 1)", rows_calls, (f(1, 8), f(1), f(8), z(1))))
    rows.append(("LSTM step 8 -> 8 (RTNeural lstm.json's)", lstm_calls,
                 (f(16, 32), f(32), f(8), z(8), z(8), z(16), z(32), z(8))))
    rows.append(("LSTM step 1 -> 12 (the per-sample LSTM-12)", lstm_calls,
                 (f(13, 48), f(48), f(1), z(12), z(12), z(13), z(48), z(12))))
    rows.append(("GRU step 1 -> 8 (the per-sample GRU-8)", gru_calls,
                 (f(1, 24), f(8, 24), f(24), f(24), f(1), z(8), z(24), z(24), z(8))))
    return [(name, loop, packed(args)) for name, loop, args in rows]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kernel_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    results = []
    for name, loop, args in cases(np.random.default_rng(0)):
        loop(10, *args)  # compile
        times = []
        for _ in range(5):
            start = time.perf_counter()
            loop(arguments.calls, *args)
            times.append((time.perf_counter() - start) / arguments.calls * 1e9)
        results.append({"kernel": name, "ns_per_call": float(np.median(times)), "repetitions_ns": times})
    where = machine()
    lines = ["# One kernel call at per-sample sizes (engine)", "",
             f"{where['cpu']} ({where['llvm_cpu']}), load average {where['load_average_1_5_15min']}; "
             f"median of 5 x {arguments.calls:,} dependent calls in a compiled loop (`python -m bench.kernel_latency`).", "",
             "| kernel | ns per call |", "|---|---:|"]
    lines += [f"| {r['kernel']} | {r['ns_per_call']:.1f} |" for r in results]
    arguments.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(arguments.out / "kernel_latency.json", {"machine": where, "calls": arguments.calls, "kernels": results})
    atomic.write_text(arguments.out / "kernel_latency.md", "\n".join(lines) + "\n")
    Console(width=160).print("\n".join(lines))


if __name__ == "__main__":
    main()
