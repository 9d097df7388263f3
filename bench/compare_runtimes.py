"""Per-frame latency of the same models in this engine, onnxruntime, PyTorch eager and plain NumPy.

    RTNEURAL_SRC=../shared/rtneural-cpp python -m bench.compare_runtimes
                                                # full run (~15-25 minutes with the C++ builds), the ONLY
                                                # command that writes bench/results/compare_runtimes.{json,md}
    python -m bench.compare_runtimes --quick    # smoke test: fewer frames, fewer models; writes to a
                                                # temporary folder (or --out), never bench/results/

Block axis (1, 64): every runtime is driven the way a plugin drives it one frame per call (block 1: ONE
call per frame, state carried between calls, one thread); the engine and the C++ RTNeural are also timed
in blocks of 64 frames (a plugin's audio buffer: ``Engine.process``, and a C++ loop of 64 ``forward()``
calls), reported per frame. The other runtimes have no streaming block API (onnxruntime/torch would run
a 64-step sequence, which is a different computation for the state), so they stay at block 1. Before timing, each runtime's outputs over 16 frames are checked against the engine's
(a comparison of different functions would be meaningless). Timed frames are split into rounds that
alternate between runtimes, so a noisy neighbour on the machine hits every column alike. Each table
cell is the median (p50) per-frame latency; p99 is in the JSON. The last columns compare the engine's
pure compute time per frame (``Engine.run`` over 20-frame chunks, median, no Python per frame) with a BLAS
matrix-vector bound over the same weights (bench/bound.py).
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from bench import bound
from bench.models import benchmark_models
from bench.report import markdown_report, print_table
from bench.runtimes import RUNTIMES, Runner, available
from reference_engine.benchmark import compute_seconds, latency_statistics, machine, time_frames
from reference_engine.model import Engine
from toolchain import atomic
from toolchain.cpp import bench as rtneural_bench

RESULTS = Path(__file__).resolve().parent / "results"
#: Where ``--quick`` writes unless told otherwise: never the committed results.
QUICK_RESULTS = Path(tempfile.gettempdir()) / "kelly-tc-compare-runtimes-quick"
#: The block sizes of the block axis.
BLOCKS = (1, 64)
#: Outputs of every runtime must match the engine's within this over the check frames (float32 runtimes
#: with different summation orders and math libraries agree to ~1e-6 on these models).
AGREEMENT_ATOL = 1e-4
CHECK_FRAMES = 16


def check_agreement(runners: dict[str, Runner], frames: np.ndarray) -> dict[str, float]:
    outputs = {}
    for name, runner in runners.items():
        runner.reset()
        outputs[name] = np.array([np.array(runner.step(frame), copy=True) for frame in frames])
        runner.reset()
    errors = {name: float(np.abs(out - outputs["engine"]).max()) for name, out in outputs.items() if name != "engine"}
    for name, error in errors.items():
        if not error <= AGREEMENT_ATOL:
            raise RuntimeError(f"{name} disagrees with the engine by {error:.3g}: the comparison would be meaningless")
    return errors


def time_runners(runners: dict[str, Runner], inputs: np.ndarray, frames: int, warmup: int, rounds: int,
                 advance) -> dict[str, np.ndarray]:
    samples: dict[str, list[np.ndarray]] = {name: [] for name in runners}
    per_round = max(frames // rounds, 1)
    for name, runner in runners.items():
        step = runner.step
        time_frames(lambda t: step(inputs[t % len(inputs)]), warmup)
    for _ in range(rounds):
        for name, runner in runners.items():
            step = runner.step
            samples[name].append(time_frames(lambda t: step(inputs[t % len(inputs)]), per_round))
            advance(per_round)
    return {name: np.concatenate(parts) for name, parts in samples.items()}


class Pipeline:
    """Several runners called in sequence per frame, each on its own input: one step of the five models."""

    def __init__(self, runners: list[Runner], inputs: list[np.ndarray]):
        self.runners, self.inputs = runners, inputs

    def runner(self) -> Runner:
        pairs = [(r.step, x) for r, x in zip(self.runners, self.inputs)]

        def step(index):
            for run, frames in pairs:
                run(frames[index])

        def reset():
            for r in self.runners:
                r.reset()
        return Runner(step, reset)


def measure_model(name, model, makers, frames, warmup, rounds, rng, advance) -> tuple[dict, dict[str, Runner], np.ndarray]:
    inputs = rng.standard_normal((max(frames, 1000), model.input_size)).astype(np.float32)
    runners = {runtime: make(model) for runtime, make in makers.items()}
    agreement = check_agreement(runners, inputs[:CHECK_FRAMES])
    samples = time_runners(runners, inputs, frames, warmup, rounds, advance)
    engine = Engine(model)
    compute = compute_seconds(engine, inputs)
    block = BLOCKS[-1]
    block_samples = time_blocks(engine, inputs, block, frames, warmup)
    blas_seconds = bound.blas_bound_seconds(model)
    weights, macs = bound.weight_bytes(model), bound.multiply_adds(model)
    row = {"model": name, "input_size": model.input_size, "output_size": model.output_size,
           "parameters": model.parameter_count(), "weight_bytes": weights, "multiply_adds": macs,
           "engine_memory": engine.memory().as_dict(), "agreement_max_abs_error": agreement,
           "latency_us": {runtime: {k: v * 1e6 for k, v in latency_statistics(s).items()} for runtime, s in samples.items()},
           "engine_compute_us": compute * 1e6,
           "blas_us": blas_seconds * 1e6, "compute_over_blas": compute / blas_seconds,
           "achieved_gb_per_s": weights / compute / 1e9, "blas_gb_per_s": weights / blas_seconds / 1e9,
           "achieved_gflop_per_s": 2 * macs / compute / 1e9, "blas_gflop_per_s": 2 * macs / blas_seconds / 1e9,
           f"block_{block}": {"block": block, "agreement_max_abs_error": {}, "latency_us": {
               "engine": {k: v * 1e6 / block for k, v in latency_statistics(block_samples).items()}}}}
    source = os.environ.get("RTNEURAL_SRC")  # C++ RTNeural, when given: block 1, then the same run at block 64
    rtneural_bench.add_to_row(row, model, inputs[:frames], source)
    rtneural_bench.add_to_row(row[f"block_{block}"], model, inputs[:max(frames, 4 * block)], source, block)
    add_ratios(row)
    add_ratios(row[f"block_{block}"])
    return row, runners, inputs


def time_blocks(engine: Engine, inputs: np.ndarray, block: int, frames: int, warmup: int) -> np.ndarray:
    """Seconds per ``Engine.process`` call over blocks of ``block`` frames (``frames`` frames, at least 4 blocks)."""
    engine.prepare(block)
    count = max(frames // block, 4)
    pieces = [inputs[(i * block) % (len(inputs) - block + 1):][:block] for i in range(count)]
    process = engine.process
    engine.reset()
    time_frames(lambda t: process(pieces[t % count]), max(warmup // block, 1))
    engine.reset()
    return time_frames(lambda t: process(pieces[t]), count)


def add_ratios(row: dict) -> None:
    latency = row["latency_us"]
    engine = latency["engine"]["p50"]
    row["ratios_p50"] = {f"engine/{name}": engine / value["p50"] for name, value in latency.items() if name != "engine"}


def measure_pipeline(kelly: dict[str, tuple[dict[str, Runner], np.ndarray]], frames, warmup, rounds, advance) -> dict:
    runtimes = list(next(iter(kelly.values()))[0])
    pipelines = {runtime: Pipeline([runners[runtime] for runners, _ in kelly.values()],
                                   [inputs for _, inputs in kelly.values()]).runner() for runtime in runtimes}
    length = min(len(inputs) for _, inputs in kelly.values())
    for p in pipelines.values():
        p.reset()
    samples = time_runners(pipelines, np.arange(length), frames, warmup, rounds, advance)
    row = {"model": f"Kelly pipeline ({len(kelly)} models)", "models": list(kelly),
           "latency_us": {runtime: {k: v * 1e6 for k, v in latency_statistics(s).items()} for runtime, s in samples.items()}}
    add_ratios(row)
    return row


def run(quick: bool = False, frames: int | None = None, warmup: int | None = None, rounds: int = 5,
        runtimes: tuple[str, ...] = RUNTIMES, out: Path | None = None, seed: int = 0, console: Console | None = None) -> dict:
    out = out or (QUICK_RESULTS if quick else RESULTS)
    if quick and Path(out).resolve() == RESULTS.resolve():
        raise SystemExit("--quick never writes bench/results/: the committed results come from the full run only")
    frames = frames or (200 if quick else 5000)
    warmup = warmup if warmup is not None else (20 if quick else 500)
    rounds = min(rounds, frames)
    makers = available(runtimes)
    if "engine" not in makers:
        raise SystemExit("the engine runtime is required")
    models, kelly_names, source = benchmark_models(seed, quick=quick)
    rng = np.random.default_rng(seed)
    rows, kelly = [], {}
    total = frames * len(makers) * (len(models) + (1 if len(kelly_names) > 1 else 0))
    with Progress(console=console or Console(stderr=True), transient=True) as progress:
        task = progress.add_task("timing runtimes", total=total)
        advance = lambda n: progress.advance(task, n)  # noqa: E731
        for name, model in models.items():
            progress.update(task, description=f"timing {name}")
            row, runners, inputs = measure_model(name, model, makers, frames, warmup, rounds, rng, advance)
            rows.append(row)
            if name in kelly_names:
                kelly[name] = (runners, inputs)
        pipeline = None
        if len(kelly) > 1:
            progress.update(task, description="timing the Kelly pipeline")
            pipeline = measure_pipeline(kelly, frames, warmup, rounds, advance)
    report = {"tool": "bench.compare_runtimes", "quick": quick, "blocks": list(BLOCKS), "frames": frames, "warmup": warmup, "rounds": rounds,
              "kelly_shapes_from": source, "machine": machine_with_runtimes(makers), "models": rows, "pipeline": pipeline}
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "compare_runtimes.json", report)
    atomic.write_text(out / "compare_runtimes.md", markdown_report(report))
    return report


def machine_with_runtimes(makers) -> dict:
    info = machine()
    for module in ("onnxruntime", "torch", "onnx"):
        if module in makers or module == "onnx":
            try:
                info["versions"][module] = __import__(module).__version__
            except ImportError:
                pass
    return info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare_runtimes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 200 frames, the layer-kind models + two Kelly shapes")
    parser.add_argument("--frames", type=int, help="timed frames per model and runtime (default 5000)")
    parser.add_argument("--warmup", type=int, help="untimed frames first (default 500)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds alternating between runtimes (default 5)")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"comma-separated subset of {','.join(RUNTIMES)}")
    parser.add_argument("--out", type=Path, help=f"folder for compare_runtimes.json/.md (default: bench/results/, with "
                                                 f"--quick {QUICK_RESULTS})")
    arguments = parser.parse_args(argv)
    out = arguments.out or (QUICK_RESULTS if arguments.quick else RESULTS)
    report = run(arguments.quick, arguments.frames, arguments.warmup, arguments.rounds,
                 tuple(arguments.runtimes.split(",")), out)
    print_table(report, Console(width=max(Console().width, 180)))
    Console().print(f"wrote {out / 'compare_runtimes.json'} and {out / 'compare_runtimes.md'}")


if __name__ == "__main__":
    main()
