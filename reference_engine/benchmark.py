"""Per-frame latency and resident memory of engines, as ``kelly-tc bench`` reports them.

Method: every engine is built and compiled first (compile time reported separately), warmed up, reset,
then run ``frames`` times, ONE ``forward`` call per frame timed with ``perf_counter_ns`` into a
preallocated array (seeded random input frames, prepared beforehand). Several models are also run as
one pipeline: all of them, in order, per frame, timed as one.

Memory is the engine's own account (:meth:`Engine.memory`, from the arrays it holds), cross-checked
by two measurements of building the engine from an already-parsed model:

- the bytes tracemalloc sees retained (numpy reports its allocations to it), in this process;
- the growth of the resident set (Linux ``/proc/self/statm``) in a fresh subprocess, with glibc's
  ``malloc_trim`` before and after the build: without it the engine's arrays reuse heap pages the JSON
  parser freed (no growth seen) and the packing temporaries stay resident (too much seen). Measured
  this way the growth matches the report to within a few pages (e.g. 2,060,288 vs 2,065,128 bytes).
"""
from __future__ import annotations

import gc
import os
import platform
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from reference_engine.model import Engine, read_engine_model
from reference_engine.runner import run_frame
from toolchain.layers import Model

#: Refuse more frames than this: the per-frame timings alone would need 8 bytes each.
MAX_FRAMES = 10_000_000


@dataclass
class Measurement:
    """One model's (or the pipeline's) figures. Times in seconds, sizes in bytes."""

    name: str
    frames: int
    latency: dict[str, float]  # p50, p99, p99.9, max, mean, min
    memory: dict[str, int]  # weight_bytes, state_bytes, scratch_bytes, total_bytes
    compile_seconds: float = 0.0
    details: dict = field(default_factory=dict)  # sizes, parameter count, memory cross-checks
    samples: np.ndarray | None = None  # per-frame seconds, for plots

    @property
    def frames_per_second(self) -> float:
        return 1.0 / max(self.latency["mean"], 1e-12)

    def as_dict(self) -> dict:
        return {"name": self.name, "frames": self.frames, "compile_seconds": self.compile_seconds,
                "latency_us": {k: v * 1e6 for k, v in self.latency.items()},
                "frames_per_second": self.frames_per_second, "memory": dict(self.memory), **self.details}


def latency_statistics(samples: np.ndarray) -> dict[str, float]:
    """Percentiles of per-frame times (seconds), the tail first: the mean hides what breaks audio."""
    return {"p50": float(np.percentile(samples, 50)), "p99": float(np.percentile(samples, 99)),
            "p99.9": float(np.percentile(samples, 99.9)), "max": float(samples.max()),
            "mean": float(samples.mean()), "min": float(samples.min())}


def time_frames(step: Callable[[int], object], frames: int, on_frame_block: Callable[[int], None] | None = None,
                block: int = 1000) -> np.ndarray:
    """Call ``step(t)`` for t in 0..frames-1, timing each call; returns seconds per call.

    Python's cyclic garbage collector is paused meanwhile (as ``timeit`` does): a plugin has none, and a
    collection pass landing inside one frame would be charged to the engine.
    """
    ticks = np.empty(frames, dtype=np.int64)
    clock = time.perf_counter_ns
    collecting = gc.isenabled()
    gc.disable()
    try:
        for t in range(frames):
            started = clock()
            step(t)
            ticks[t] = clock() - started
            if on_frame_block is not None and (t + 1) % block == 0:
                on_frame_block(block)
    finally:
        if collecting:
            gc.enable()
    if on_frame_block is not None and frames % block:
        on_frame_block(frames % block)
    return ticks * 1e-9


def resident_bytes() -> int | None:
    """The process's resident set size from /proc (Linux); ``None`` elsewhere."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def measured_build_memory(model: Model) -> dict[str, int]:
    """Bytes tracemalloc sees retained when an engine is built from ``model`` (and run once)."""
    gc.collect()
    tracemalloc.start()
    try:
        engine = Engine(model)
        engine.forward(np.zeros(engine.input_size, np.float32))  # touch state and scratch pages
        traced = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del engine
    return {"traced_bytes": traced}


_RSS_SCRIPT = """
import ctypes, gc, json, sys
import numpy as np
from reference_engine.benchmark import resident_bytes
from reference_engine.model import Engine
from reference_engine import synthetic
from reference_engine.model import read_engine_model
Engine(synthetic.model(1, [synthetic.activation(1, "relu")])).forward(np.zeros(1, np.float32))  # compile first
trim = ctypes.CDLL("libc.so.6").malloc_trim  # glibc: give freed heap pages back, so residency = live memory
def settled():
    gc.collect()
    trim(0)
    return resident_bytes()
growth, kept = [], []
for path in sys.argv[1:]:
    model = read_engine_model(path)
    before = settled()
    engine = Engine(model)
    engine.forward(np.zeros(engine.input_size, np.float32))
    growth.append(settled() - before)
    kept.append(engine)
print(json.dumps(growth))
"""


def resident_growth(paths: list[str | Path]) -> list[int | None]:
    """Resident-set growth (bytes) of building each model's engine, measured in one fresh subprocess;
    ``None`` where it cannot be measured (not Linux/glibc)."""
    import json
    import subprocess
    import sys

    if resident_bytes() is None or not paths:
        return [None] * len(paths)
    result = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, *map(str, paths)], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        return [None] * len(paths)
    return json.loads(result.stdout.strip().splitlines()[-1])


@dataclass
class LoadedModel:
    name: str
    engine: Engine
    compile_seconds: float
    compiled_from: str  # "compiled", "disk cache" (numba's cache) or "in memory" (an earlier model)
    details: dict


def load_for_bench(path: str | Path, name: str | None = None) -> LoadedModel:
    """Read, build and compile (or load numba's cached machine code for) one model, timing the compile."""
    model = read_engine_model(path)  # RTNeural or INT8 JSON
    return load_model_for_bench(model, name or Path(path).stem, path=str(path))


def load_model_for_bench(model: Model, name: str, path: str = "") -> LoadedModel:
    hits, known = sum(run_frame.stats.cache_hits.values()), len(run_frame.overloads)
    started = time.perf_counter()
    engine = Engine(model, name=name)
    engine.forward(np.zeros(engine.input_size, np.float32))
    compile_seconds = time.perf_counter() - started
    if len(run_frame.overloads) == known:
        compiled_from = "in memory"
    else:
        compiled_from = "disk cache" if sum(run_frame.stats.cache_hits.values()) > hits else "compiled"
    details = {"path": path, "input_size": engine.input_size, "output_size": engine.output_size,
               "layers": list(engine.program.layer_names), "parameters": model.parameter_count(),
               "compiled_from": compiled_from, "memory_check": measured_build_memory(model)}
    return LoadedModel(name, engine, compile_seconds, compiled_from, details)


def measure(models: list[LoadedModel], frames: int, warmup: int, seed: int = 0,
            on_progress: Callable[[int], None] | None = None) -> tuple[list[Measurement], Measurement | None]:
    """Time every model, then (with two or more) all of them per frame as a pipeline."""
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal((frames + warmup, m.engine.input_size)).astype(np.float32) for m in models]
    results = []
    for loaded, frames_in in zip(models, inputs):
        engine = loaded.engine
        forward = engine.forward
        engine.reset()
        time_frames(lambda t: forward(frames_in[t]), warmup)
        engine.reset()
        measured = frames_in[warmup:]
        samples = time_frames(lambda t: forward(measured[t]), frames, on_progress)
        results.append(Measurement(loaded.name, frames, latency_statistics(samples), engine.memory().as_dict(),
                                   loaded.compile_seconds, dict(loaded.details), samples))
    if len(models) < 2:
        return results, None
    forwards = [m.engine.forward for m in models]
    pairs = list(zip(forwards, [x[warmup:] for x in inputs]))

    def pipeline_frame(t: int) -> None:
        for forward, frames_in in pairs:
            forward(frames_in[t])

    for m in models:
        m.engine.reset()
    samples = time_frames(pipeline_frame, frames, on_progress)
    memory = {key: sum(r.memory[key] for r in results) for key in results[0].memory}
    pipeline = Measurement("pipeline", frames, latency_statistics(samples), memory,
                           sum(r.compile_seconds for r in results), {"models": [r.name for r in results]}, samples)
    return results, pipeline


def machine() -> dict:
    """Where the numbers were measured: CPU, cores, OS and the versions that matter."""
    import llvmlite
    import llvmlite.binding
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        kelly = version("kelly-tc")
    except Exception:  # not installed as a distribution (running from a checkout)
        kelly = "unknown"
    try:
        load = [round(value, 2) for value in os.getloadavg()]  # other processes sharing the cores inflate the tail
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_1_5_15min": load, "platform": platform.platform(),
            "llvm_cpu": numba.config.CPU_NAME or llvmlite.binding.get_host_cpu_name(),
            "versions": {"kelly-tc": kelly, "python": platform.python_version(), "numpy": np.__version__,
                         "numba": numba.__version__, "llvmlite": llvmlite.__version__}}


def compute_seconds(engine: Engine, frames: np.ndarray, chunk: int = 20) -> float:
    """The engine's compiled time per frame, without Python per frame: ``run`` over chunks of ``chunk``
    frames, the median chunk time divided by ``chunk`` (a median, so a busy neighbour's bursts do not count)."""
    engine.run(frames[:chunk])
    engine.reset()
    count = len(frames) // chunk
    ticks = np.empty(count, dtype=np.int64)
    clock = time.perf_counter_ns
    for index in range(count):
        block = frames[index * chunk:(index + 1) * chunk]
        started = clock()
        engine.run(block)
        ticks[index] = clock() - started
    return float(np.median(ticks)) * 1e-9 / chunk
