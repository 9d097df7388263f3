"""Per-block latency and resident memory of engines, as ``kelly-tc bench`` reports them.

Method: every engine is built and compiled first (compile time reported separately). The first
:data:`FIRST_CALLS` calls after that are timed on their own (cold caches, as a plugin's first callbacks
see them; anira reports these warm-up outliers apart too), then ``warmup`` untimed frames, a reset, and
the steady state: ``frames`` frames in blocks of ``block`` -- ONE call per block (``Engine.process``; with
a block of 1, ``Engine.forward``: one call per frame) timed with ``perf_counter_ns`` into a preallocated
array (seeded random input frames, prepared beforehand). Several models are also run as one pipeline:
all of them, in order, per block, timed as one.

Percentiles are nearest-rank (the smallest sample with at least q of the samples at or below it): a
reported p99 is a time some block really took, and the C++ harness computes the same.

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
#: Blocks timed right after loading, reported apart from the steady state.
FIRST_CALLS = 8


@dataclass
class Measurement:
    """One model's (or the pipeline's) figures. Times in seconds, sizes in bytes."""

    name: str
    frames: int
    latency: dict[str, float]  # per block: p50, p99, p99.9, max, mean, min
    memory: dict[str, int]  # weight_bytes, program_bytes, state_bytes, scratch_bytes, total_bytes
    compile_seconds: float = 0.0
    details: dict = field(default_factory=dict)  # sizes, parameter count, memory cross-checks
    samples: np.ndarray | None = None  # per-block seconds, for plots
    block: int = 1  # frames per timed call
    first_calls: np.ndarray | None = None  # seconds of the first calls after loading (not in ``latency``)

    @property
    def frames_per_second(self) -> float:
        return self.block / max(self.latency["mean"], 1e-12)

    def as_dict(self) -> dict:
        first = [] if self.first_calls is None else [float(t) * 1e6 for t in self.first_calls]
        return {"name": self.name, "frames": self.frames, "block": self.block, "compile_seconds": self.compile_seconds,
                "latency_us": {k: v * 1e6 for k, v in self.latency.items()},
                "latency_per_frame_us": {k: v * 1e6 / self.block for k, v in self.latency.items()},
                "first_calls_us": first, "frames_per_second": self.frames_per_second, "memory": dict(self.memory),
                **self.details}


#: The percentiles reported, as fractions.
PERCENTILES = {"p50": 0.5, "p99": 0.99, "p99.9": 0.999}


def nearest_rank(sorted_samples: np.ndarray, fraction: float) -> float:
    """The nearest-rank percentile of ascending samples: the ``ceil(fraction * n)``-th smallest (1-based),
    i.e. the smallest sample with at least ``fraction`` of all samples at or below it."""
    count = sorted_samples.shape[0]
    rank = max(1, int(np.ceil(fraction * count - 1e-9)))  # the epsilon: 0.99 * 1000 must be rank 990, not 991
    return float(sorted_samples[min(rank, count) - 1])


def latency_statistics(samples: np.ndarray) -> dict[str, float]:
    """Percentiles of per-call times (seconds), the tail first: the mean hides what breaks audio."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    if ordered.size == 0:
        raise ValueError("no samples")
    return {**{name: nearest_rank(ordered, q) for name, q in PERCENTILES.items()}, "max": float(ordered[-1]),
            "mean": float(ordered.mean()), "min": float(ordered[0])}


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
    sample_rate: tuple[float, str] | None = None  # (Hz, key) when the file says it runs per sample


def load_for_bench(path: str | Path, name: str | None = None) -> LoadedModel:
    """Read, build and compile (or load numba's cached machine code for) one model, timing the compile."""
    from toolchain.errors import InputError

    model = read_engine_model(path)  # RTNeural or INT8 JSON
    try:
        return load_model_for_bench(model, name or Path(path).stem, path=str(path))
    except InputError as error:  # a bad declared sample rate: name the file
        raise error.with_file(path) from None


def load_model_for_bench(model, name: str, path: str = "") -> LoadedModel:
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
    from reference_engine.budget import declared_sample_rate

    declared = declared_sample_rate(getattr(getattr(model, "model", model), "metadata", {}) or {})
    if declared is not None:
        details["declared_sample_rate"] = {"hz": declared[0], "key": declared[1]}
    return LoadedModel(name, engine, compile_seconds, compiled_from, details, declared)


def measure(models: list[LoadedModel], frames: int, warmup: int, seed: int = 0,
            on_progress: Callable[[int], None] | None = None, block: int = 1,
            first_calls: int = FIRST_CALLS) -> tuple[list[Measurement], Measurement | None]:
    """Time every model in blocks of ``block`` frames (``frames // block`` timed blocks, at least one), then
    (with two or more) all of them per block as a pipeline. The first ``first_calls`` calls after loading are
    timed apart. Progress is reported in frames."""
    blocks = max(frames // block, 1)
    rng = np.random.default_rng(seed)
    inputs = [rng.standard_normal(((blocks + max(warmup // block, 1) + first_calls) * block, m.engine.input_size))
              .astype(np.float32) for m in models]
    calls = [step_calls(m.engine, x, block) for m, x in zip(models, inputs)]
    progress = None if on_progress is None else (lambda done: on_progress(done * block))
    results = []
    for loaded, step in zip(models, calls):
        engine = loaded.engine
        engine.reset()
        first = time_frames(step, first_calls)  # right after loading: the calls a plugin makes first
        time_frames(lambda t: step(first_calls + t), max(warmup // block, 1))
        engine.reset()
        offset = first_calls + max(warmup // block, 1)
        samples = time_frames(lambda t: step(offset + t), blocks, progress)
        results.append(Measurement(loaded.name, blocks * block, latency_statistics(samples), engine.memory().as_dict(),
                                   loaded.compile_seconds, dict(loaded.details), samples, block, first))
    if len(models) < 2:
        return results, None
    offset = first_calls + max(warmup // block, 1)

    def pipeline_block(t: int) -> None:
        for step in calls:
            step(offset + t)

    for m in models:
        m.engine.reset()
    samples = time_frames(pipeline_block, blocks, progress)
    memory = {key: sum(r.memory[key] for r in results) for key in results[0].memory}
    pipeline = Measurement("pipeline", blocks * block, latency_statistics(samples), memory,
                           sum(r.compile_seconds for r in results), {"models": [r.name for r in results]}, samples, block)
    return results, pipeline


def int8_versus_float(models: list[LoadedModel], frames: int, warmup: int, seed: int = 0, block: int = 1) -> list[dict]:
    """For every INT8 model among ``models`` (INT8 JSON), the same layers with float kernels (the INT8 file's
    dequantized weights: the same function) timed the same way right after it: latency and weight bytes of
    both, and whether INT8 pays. The INT8 kernels widen each int8 weight to float32 before the multiply-add:
    they save memory traffic, which pays on models whose weights stream from beyond L2, not on small ones."""
    from quant.int8_json import Int8Model

    verdicts = []
    for loaded in models:
        model = read_engine_model(loaded.details["path"]) if loaded.details.get("path") else None
        if not isinstance(model, Int8Model):
            continue
        float_model = load_model_for_bench(model.model, f"{loaded.name} (float kernels)")
        # both timed again here, back to back, so a load change on the machine hits both alike
        (int8_figures, float_figures), _ = measure([loaded, float_model], frames, warmup, seed, block=block)
        ratio = int8_figures.latency["p50"] / float_figures.latency["p50"]
        verdicts.append({"model": loaded.name, "block": block, "int8_p50_us": int8_figures.latency["p50"] * 1e6,
                         "float_p50_us": float_figures.latency["p50"] * 1e6, "latency_ratio": ratio,
                         "int8_weight_bytes": int8_figures.memory["weight_bytes"],
                         "float_weight_bytes": float_figures.memory["weight_bytes"],
                         "bytes_ratio": int8_figures.memory["weight_bytes"] / float_figures.memory["weight_bytes"],
                         "recommend": "int8" if ratio <= 1.0 else "float"})
    return verdicts


def step_calls(engine: Engine, frames: np.ndarray, block: int) -> Callable[[int], object]:
    """``step(t)``: the engine's t-th call over ``frames`` -- ``forward`` of frame t for a block of 1 (the
    single-frame API), else ``process`` of the t-th block (views made beforehand, none per call)."""
    if block == 1:
        forward = engine.forward
        rows = list(frames)
        return lambda t: forward(rows[t])
    engine.prepare(block)
    process = engine.process
    pieces = [frames[start:start + block] for start in range(0, len(frames) - block + 1, block)]
    return lambda t: process(pieces[t])


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
