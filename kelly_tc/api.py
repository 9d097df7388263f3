"""The library side of each ``kelly-tc`` command: one function per command, no printing.

Each takes paths (``str`` or ``Path``) and keyword options named as the command's options, returns the
result object the command renders, and raises the project's errors (``toolchain.errors``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from toolchain.check import DEFAULT_ATOL, CheckReport
from toolchain.layers import Model

PathLike = str | Path


def convert(onnx_path: PathLike, json_path: PathLike | None = None, *, int8: bool = False) -> Model:
    """ONNX -> RTNeural JSON at ``json_path`` (default ``MODEL.json`` beside the model); returns the layer
    list. ``int8`` also writes the INT8 extension (``MODEL.int8.json``; see ``toolchain.convert.output_paths``)."""
    from toolchain.convert import convert_file, convert_pair, output_paths

    target, int8_target = output_paths(onnx_path, json_path, int8)
    if int8_target is not None:
        return convert_pair(onnx_path, target, int8_target)  # validated first, one lock, the pair's digest
    return convert_file(onnx_path, target)


def check(onnx_path: PathLike, json_path: PathLike, *, frames: int | None = None, inputs: np.ndarray | PathLike | None = None,
          atol: float | None = None, seed: int = 0, rtneural: PathLike | None = None, rtol: float | None = None) -> CheckReport:
    """The same input through onnxruntime and the reference engine (frame by frame, reset half way);
    ``report.passed`` says whether every comparison is within the bound: by default judged against a float64
    run of the ONNX graph (``toolchain.check``), or the fixed ``atol`` (+ ``rtol``) given. Never raises for a
    failed check."""
    from toolchain.check import check_files

    return check_files(onnx_path, json_path, frames=frames, inputs=inputs, atol=atol, seed=seed, rtneural=rtneural, rtol=rtol)


def run(model: PathLike | Model, inputs: np.ndarray | PathLike, output: PathLike | None = None, *,
        on_start: Callable[[int], None] | None = None, on_progress: Callable[[int], None] | None = None):
    """Run frames through a model from one reset, state carried, as a plugin would.

    ``model``: a JSON path or a :class:`Model`; ``inputs``: ``[frames, in]`` array, or a ``.npy``/``.csv``
    path. With an input path the outputs are written (to ``output``, default ``INPUT.out.<ext>``) and a
    :class:`reference_engine.streaming.RunResult` is returned (steady-state time, compile excluded);
    with an array, the ``[frames, out]`` outputs are returned (and written to ``output`` if given)."""
    from reference_engine.model import Engine, load_engine

    if not isinstance(inputs, np.ndarray) and not isinstance(model, Model):
        from reference_engine.streaming import run_file

        return run_file(model, inputs, output, on_progress=on_progress, on_start=on_start)
    engine = Engine(model) if isinstance(model, Model) else load_engine(model)
    if not isinstance(inputs, np.ndarray):
        from reference_engine.frames import read_frames

        inputs = read_frames(inputs, engine.input_size)
    engine.reset()
    outputs = engine.run(np.asarray(inputs, dtype=np.float32))
    if output is not None:
        from reference_engine.frames import write_frames

        write_frames(output, outputs)
    return outputs


def bench(models: Sequence[PathLike], *, budget: str | None = "10ms", memory_budget: str | None = None,
          statistic: str = "p99", frames: int = 10_000, warmup: int = 1_000, seed: int = 0, block: int = 1,
          resident: bool = True, on_load: Callable[[str], None] | None = None,
          on_progress: Callable[[int], None] | None = None):
    """Per-frame latency (p50/p99/p99.9/max) and memory of each model and, with two or more, of all of them
    as one pipeline, ``block`` frames per timed call (a plugin's buffer; 1: one frame per call). Returns a :class:`reference_engine.bench_report.BenchResult`; ``result.violations()``
    lists what exceeds the budgets (the command exits 1 on any). ``resident``: also measure the
    resident-set growth of loading each model, in a subprocess."""
    from reference_engine.bench_report import BenchResult
    from reference_engine.benchmark import MAX_FRAMES, load_for_bench, measure, resident_growth
    from reference_engine.budget import Budget
    from toolchain.errors import InputError

    chosen = Budget.parse(budget, memory_budget, statistic)
    if not 1 <= frames <= MAX_FRAMES:
        raise InputError(f"must be between 1 and {MAX_FRAMES}, got {frames}", where="--frames")
    if not 0 <= warmup <= MAX_FRAMES:
        raise InputError(f"must be between 0 and {MAX_FRAMES}, got {warmup}", where="--warmup")
    if not 1 <= block <= MAX_FRAMES:
        raise InputError(f"must be between 1 and {MAX_FRAMES}, got {block}", where="--block")
    paths = [Path(p) for p in models]
    loaded = []
    for path in paths:
        if on_load:
            on_load(f"loading and compiling {path}")
        loaded.append(load_for_bench(path))
    if resident:
        if on_load:
            on_load("measuring resident-set growth in a subprocess")
        for model, growth in zip(loaded, resident_growth(paths)):
            model.details["memory_check"]["rss_growth_bytes"] = growth
    measured, pipeline = measure(loaded, frames, warmup, seed, on_progress=on_progress, block=block)
    return BenchResult(measured, pipeline, chosen, {"frames": max(frames // block, 1) * block, "warmup": warmup,
                                                    "seed": seed, "block": block, "models": [str(p) for p in paths]})


def quantize(onnx_path: PathLike, output: PathLike | None = None, *, per_channel: bool = True, biases: bool = False,
             activations: bool = False, calibration: PathLike | None = None, method: str = "minmax",
             percentile: float = 99.99, report: PathLike | None = None, compare: bool = True, auto: bool = False,
             max_error_growth: float = 1.1, progress: Callable[[int, int], None] | None = None) -> dict:
    """INT8 weights (and optionally activations) as standard QDQ ONNX at ``output`` (default
    ``MODEL.int8.onnx``); returns the size and accuracy figures (also written to ``report`` if given)."""
    from quant.workflow import quantize_file

    onnx_path = Path(onnx_path)
    output = Path(output) if output is not None else onnx_path.with_suffix(".int8.onnx")
    options = dict(per_channel=per_channel, biases=biases, activations=activations,
                   calibration_path=Path(calibration) if calibration else None, method=method, percentile=percentile,
                   report_path=Path(report) if report else None, compare_dynamic=compare, auto=auto,
                   max_error_growth=max_error_growth)
    if progress is not None:
        options["progress"] = progress
    return quantize_file(onnx_path, output, **options)


def prune(onnx_path: PathLike, output: PathLike | None = None, *, amount: float = 0.5, structured: bool = True,
          criterion: str = "l2", calibration: PathLike | None = None, report: PathLike | None = None,
          latency: bool = True, finetune: bool = False, finetune_epochs: int = 4,
          datasets_dir: PathLike | None = None) -> dict:
    """Structured pruning (whole units: a smaller model) or magnitude sparsity, written to ``output``
    (default ``MODEL.pruned.onnx``); returns parameters, bytes, accuracy vs the unpruned model, latency."""
    from quant.workflow import prune_file

    onnx_path = Path(onnx_path)
    output = Path(output) if output is not None else onnx_path.with_suffix(".pruned.onnx")
    return prune_file(onnx_path, output, amount=amount, structured=structured, criterion=criterion,
                      calibration_path=Path(calibration) if calibration else None,
                      report_path=Path(report) if report else None, latency=latency, finetune=finetune,
                      finetune_epochs=finetune_epochs, datasets_dir=str(datasets_dir) if datasets_dir else None)


def cpp(json_path: PathLike, output: PathLike, *, name: str | None = None, namespace: str | None = None,
        embed_weights: bool = False, precision: str = "float"):
    """One C++ header on RTNeural's compile-time API (``ModelT`` type, ``load()``, ``self_test()``);
    returns a :class:`toolchain.cpp.header.HeaderInfo`."""
    from toolchain.cpp.header import write_header

    return write_header(json_path, output, name=name, namespace=namespace, embed_weights=embed_weights,
                        precision=precision)
