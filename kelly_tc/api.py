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


def bench(models: Sequence[PathLike], *, budget: str | None = None, memory_budget: str | None = None,
          statistic: str = "p99", frames: int = 10_000, warmup: int = 1_000, seed: int = 0, block: int | None = None,
          sample_rate: str | float | None = None, rtneural: PathLike | None = None, int8_versus_float: bool = True,
          resident: bool = True, on_load: Callable[[str], None] | None = None,
          on_progress: Callable[[int], None] | None = None, on_note: Callable[[str], None] | None = None):
    """Latency per call of ``block`` frames (p50/p99/p99.9/max, first calls apart) and memory of each model and,
    with two or more, of all of them as one pipeline. Returns a :class:`reference_engine.bench_report.BenchResult`;
    ``result.violations()`` lists what exceeds the budgets (the command exits 1 on any).

    ``block``: frames per timed call (a plugin's buffer); default 1, or 64 when a file says it runs per sample
    (``kelly_tc.sample_rate``, AIDA-X ``metadata.samplerate``). ``sample_rate`` (Hz, or "48kHz"): the budget
    becomes the block's real-time deadline N/SR; default the rate a file declares. ``budget`` overrides it
    (default "10ms" when there is no rate). ``int8_versus_float``: time each INT8 model against its float form
    (``result.settings["int8_versus_float"]``). ``rtneural``: an RTNeural checkout; also time the real C++
    RTNeural on the same blocks (``result.settings["rtneural"]``). ``resident``: measure the resident-set growth
    of loading each model, in a subprocess. ``on_note`` receives what a user should read (a per-sample default)."""
    from reference_engine.bench_report import BenchResult
    from reference_engine.benchmark import MAX_FRAMES, int8_versus_float as time_int8, load_for_bench, measure, resident_growth
    from reference_engine.budget import PER_SAMPLE_BLOCK, Budget, block_deadline, parse_sample_rate
    from toolchain.errors import InputError

    Budget.parse(budget, memory_budget, statistic)  # bad options fail before anything is loaded
    rate = parse_sample_rate(str(sample_rate)) if sample_rate is not None else None
    for name, value, low in (("--frames", frames, 1), ("--warmup", warmup, 0), ("--block", block, 1)):
        if value is not None and not low <= value <= MAX_FRAMES:
            raise InputError(f"must be between {low} and {MAX_FRAMES}, got {value}", where=name)
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
    declared = [(path, m.sample_rate) for path, m in zip(paths, loaded) if m.sample_rate is not None]
    rate_source = "--sample-rate" if rate is not None else None
    if rate is None and declared:
        rates = {value for _, (value, _) in declared}
        if len(rates) > 1:
            listed = ", ".join(f"{path}: {value:g} Hz" for path, (value, _) in declared)
            raise InputError(f"the models declare different sample rates ({listed}); choose one", where="--sample-rate")
        path, (rate, key) = declared[0]
        rate_source = f"{path}: {key}"
    if block is None:
        block = PER_SAMPLE_BLOCK if declared else 1
        if declared and on_note:
            on_note(f"{declared[0][0]} says it runs per sample ({declared[0][1][1]} = {declared[0][1][0]:g} Hz): "
                    f"block {block}" + (f" and a {block_deadline(block, rate) * 1e3:.3g} ms deadline" if budget is None else ""))
    deadline = block_deadline(block, rate) if rate is not None else None
    if budget is not None:
        chosen = Budget.parse(budget, memory_budget, statistic)
    elif deadline is not None:
        chosen = Budget(deadline, Budget.parse(None, memory_budget, statistic).memory, statistic)
    else:
        chosen = Budget.parse(DEFAULT_BUDGET, memory_budget, statistic)
    measured, pipeline = measure(loaded, frames, warmup, seed, on_progress=on_progress, block=block)
    settings = {"frames": max(frames // block, 1) * block, "warmup": warmup, "seed": seed, "block": block,
                "sample_rate_hz": rate, "sample_rate_source": rate_source,
                "deadline_per_block_seconds": deadline, "deadline_per_frame_seconds": None if rate is None else 1.0 / rate,
                "models": [str(p) for p in paths]}
    result = BenchResult(measured, pipeline, chosen, settings)
    if int8_versus_float:
        if on_load:
            on_load("timing the INT8 models' float form")
        result.settings["int8_versus_float"] = time_int8(loaded, frames, warmup, seed, block)
    if rtneural is not None:
        from toolchain.cpp.bench import default_backend, measure_files

        if on_load:
            on_load("building and timing RTNeural (C++)")
        backend = default_backend(Path(rtneural))
        figures = measure_files(paths, settings["frames"], seed, Path(rtneural), backend, [block] * len(paths))
        result.settings["rtneural"] = {"source": str(rtneural), "backend": backend,
                                       "models": {e.name: f for e, f in zip(measured, figures)}}
    return result


#: The per-call budget when neither ``budget`` nor a sample rate gives one.
DEFAULT_BUDGET = "10ms"


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
