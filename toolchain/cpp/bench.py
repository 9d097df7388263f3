"""The real RTNeural in the benchmarks: ``kelly-tc bench --rtneural SRC`` and bench/compare_runtimes.py.

RTNeural is timed inside C++ (``std::chrono::steady_clock`` around each block of N ``forward()`` calls --
N = 1: each call --, the first pass after loading timed apart; see ``harness_io.h``): calling it once per
frame from Python would time Python, not RTNeural.
Before timing, each API's outputs are checked against the reference engine's on the same frames -- a
timing of a different function would be meaningless.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from rich.table import Table

from toolchain.cpp.apis import DEFAULT_APIS, rtneural_check, time_rtneural
from toolchain.cpp.build import eigen_include, find_rtneural
from toolchain.errors import CheckFailed
from toolchain.layers import Model
from toolchain.graph_json import write_model

#: Runtime names of RTNeural's APIs in benchmark tables and JSON reports.
RUNTIME_NAMES = {"dynamic": "rtneural", "compile-time": "rtneural-modelt"}
#: Agreement demanded with the engine before timing (float32 both; ~1e-6 apart on these models).
AGREEMENT_ATOL = 1e-4
CHECK_FRAMES = 16


def default_backend(src: str | Path | None) -> str:
    """Eigen when its headers are found (what most plugins build RTNeural with), else STL. RTNeural's STL
    backend sums with plain loops that g++ cannot vectorize without -ffast-math: it is the slow one."""
    return "eigen" if eigen_include(find_rtneural(src)) is not None else "stl"


def measure_json(json_path: str | Path, inputs: np.ndarray, src: str | Path | None, backend: str | None = None,
                 block: int = 1) -> dict:
    """Per API (runtime name): ``{"p50": us, "p99": us, "p99.9": us, "max": us, "mean": us, "min": us, "block": N,
    "first": [us, ...], "agreement": max abs error}``, times per block of ``block`` frames."""
    from reference_engine.model import load_engine

    backend = backend or default_backend(src)
    engine = load_engine(json_path)
    engine.reset()
    expected = engine.run(inputs[:CHECK_FRAMES])
    results = {}
    for api, outputs in rtneural_check(json_path, inputs[:CHECK_FRAMES], src, DEFAULT_APIS, backend).items():
        error = float(np.max(np.abs(outputs - expected)))
        if not error <= AGREEMENT_ATOL:
            raise CheckFailed(f"RTNeural's {api} API disagrees with the engine by {error:.3g}: timing it would be meaningless",
                              file=json_path)
        results[RUNTIME_NAMES[api]] = {"agreement": error}
    for api, timing in time_rtneural(json_path, inputs, src, DEFAULT_APIS, backend, repeats=1, block=block).items():
        results[RUNTIME_NAMES[api]].update({"p50": timing.p50_ns / 1e3, "p99": timing.p99_ns / 1e3,
                                            "p99.9": timing.p999_ns / 1e3, "max": timing.max_ns / 1e3,
                                            "mean": timing.mean_ns / 1e3, "min": timing.min_ns / 1e3,
                                            "block": timing.block, "first": [t / 1e3 for t in timing.first_ns]})
    return results


def measure_model(model: Model, inputs: np.ndarray, src: str | Path | None, backend: str | None = None,
                  block: int = 1) -> dict:
    """``measure_json`` for an in-memory model (written to a temporary JSON file first)."""
    with tempfile.TemporaryDirectory(prefix="kelly-tc-bench-") as folder:
        return measure_json(write_model(model, Path(folder) / "model.json"), inputs, src, backend, block)


def measure_files(json_paths: list[Path], frames: int, seed: int, src: str | Path | None, backend: str | None = None,
                  blocks: list[int] | None = None) -> list[dict]:
    """``measure_json`` per file on ``frames`` seeded standard-normal frames (as ``kelly-tc bench`` feeds the
    engine), in blocks of ``blocks[i]`` frames for file i (default 1)."""
    from reference_engine.model import load_engine

    rng = np.random.default_rng(seed)
    blocks = blocks or [1] * len(json_paths)
    return [measure_json(path, rng.standard_normal((frames, load_engine(path).input_size)).astype(np.float32), src, backend,
                         block)
            for path, block in zip(json_paths, blocks)]


def add_to_row(row: dict, model: Model, inputs: np.ndarray, src: str | Path | None, block: int = 1) -> None:
    """bench/compare_runtimes.py: add RTNeural's APIs to a model's row (latency in us per frame, agreement)."""
    if not src:
        return
    backend = default_backend(src)
    row["rtneural_backend"] = backend
    for name, figures in measure_model(model, inputs, src, backend, block).items():
        for key in ("p50", "p99", "p99.9", "max", "mean", "min"):
            figures[key] /= block
        figures["first"] = [value / block for value in figures["first"]]
        row["agreement_max_abs_error"][name] = figures.pop("agreement")
        row["latency_us"][name] = figures


def rtneural_table(names: list[str], engine_p50_us: list[float], measured: list[dict], frames: int, backend: str) -> Table:
    """``kelly-tc bench --rtneural``: per model, the engine against RTNeural's two APIs (p50 per block, and per
    frame; ratios of the p50s). ``engine_p50_us``: the engine's p50 per block of the same size."""
    table = Table(title=f"the reference engine vs the real RTNeural ({backend} backend, g++ -O2, timed in C++, "
                        f"the same block size in the same run), {frames} frames")
    for column in ("model", "block", "engine p50", "RTNeural dynamic p50", "p99", "RTNeural ModelT p50", "p99",
                   "per frame: engine", "ModelT", "engine / dynamic", "engine / ModelT", "dynamic / ModelT"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, engine, figures in zip(names, engine_p50_us, measured):
        modelt = figures["rtneural-modelt"]
        dynamic = figures.get("rtneural")  # absent for graph and in_skip files (apis.applicable_apis)
        block = modelt.get("block", 1)
        per_frame = (f"{engine / block * 1e3:.0f} ns", f"{modelt['p50'] / block * 1e3:.0f} ns")
        if dynamic is None:
            table.add_row(name, str(block), f"{engine:.2f} us", "n/a (graph header)", "", f"{modelt['p50']:.2f} us",
                          f"{modelt['p99']:.2f} us", *per_frame, "", f"{engine / modelt['p50']:.2f}", "")
            continue
        table.add_row(name, str(block), f"{engine:.2f} us", f"{dynamic['p50']:.2f} us", f"{dynamic['p99']:.2f} us",
                      f"{modelt['p50']:.2f} us", f"{modelt['p99']:.2f} us", *per_frame, f"{engine / dynamic['p50']:.2f}",
                      f"{engine / modelt['p50']:.2f}", f"{dynamic['p50'] / modelt['p50']:.2f}")
    return table
