"""``kelly-tc bench MODEL.json [MODEL.json ...] [--block N] [--sample-rate SR] [--budget 10ms] ...``:
latency per block of N frames (tail percentiles, first calls apart), the real-time deadline and factor,
resident memory of each model and of all of them as a pipeline; ``--rtneural``: the real RTNeural, same blocks."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from toolchain.cli import command, status
from toolchain.errors import CheckFailed, InputError

#: The per-call budget when neither --budget nor a sample rate gives one.
DEFAULT_BUDGET = "10ms"


@command
def bench(
    models: List[Path] = typer.Argument(..., help="RTNeural JSON models; two or more are also timed as one pipeline."),
    block: Optional[int] = typer.Option(None, "--block", help="Frames per call (a plugin's buffer): each timed call processes N frames in one go. Default 1, or 64 for a file that says it runs per sample."),
    sample_rate: Optional[str] = typer.Option(None, "--sample-rate", help="Frames per second (Hz, e.g. 48000 or 48kHz): the budget becomes the block's real-time deadline N/SR. Default: the rate a file declares (kelly_tc.sample_rate, AIDA-X metadata.samplerate)."),
    budget: Optional[str] = typer.Option(None, "--budget", help="Latency budget per call (ns, us, ms, s). Default: the deadline N/SR with a sample rate, else 10ms."),
    memory_budget: Optional[str] = typer.Option(None, "--memory-budget", help="Resident memory budget per model and for the pipeline (B, KB, MB, GB; powers of 1024). Unchecked if absent."),
    statistic: str = typer.Option("p99", "--statistic", help="Latency statistic held to the budget: p50, p99, p99.9 or max."),
    frames: int = typer.Option(10_000, "--frames", help="Timed frames (frames // block timed calls)."),
    warmup: int = typer.Option(1_000, "--warmup", help="Untimed frames before the steady state is timed (after the first calls)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the full report (every figure, machine, versions)."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write per-call latency CDFs as PNG (needs matplotlib)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random input frames."),
    rtneural: Optional[Path] = typer.Option(None, "--rtneural", help="RTNeural checkout: also time the real C++ RTNeural on the same block size (dynamic and compile-time APIs, timed in C++)."),
) -> None:
    """Does it fit the audio callback? Per-block p50/p99/p99.9/max, deadline, real-time factor, first calls,
    headroom and memory; exit 1 if over budget."""
    from reference_engine.bench_report import BenchResult, write_json, write_plot
    from reference_engine.benchmark import MAX_FRAMES, load_for_bench, measure, resident_growth
    from reference_engine.budget import PER_SAMPLE_BLOCK, Budget, block_deadline, parse_sample_rate

    from toolchain import atomic, options

    Budget.parse(budget, memory_budget, statistic)  # bad options fail before anything is loaded
    options.seed(seed)
    # Before the timing (minutes): an unwritable report must not be found after it (issue 17, point 2).
    for path, option in ((json_path, "--json"), (plot_path, "--plot")):
        if path is not None:
            atomic.check_output(path, inputs=models, stdout_ok=option == "--json", what=option)
    if json_path is not None and plot_path is not None and atomic.same_file(json_path, plot_path):
        raise InputError("--json and --plot name the same file", file=json_path)
    to_stdout = str(json_path) == atomic.STDOUT  # --json -: stdout holds the JSON alone, the tables go to stderr
    rate = parse_sample_rate(sample_rate) if sample_rate is not None else None
    if block is not None and not 1 <= block <= MAX_FRAMES:
        raise InputError(f"must be between 1 and {MAX_FRAMES}, got {block}", where="--block")
    if not 1 <= frames <= MAX_FRAMES:
        raise InputError(f"must be between 1 and {MAX_FRAMES}, got {frames}", where="--frames")
    if not 0 <= warmup <= MAX_FRAMES:
        raise InputError(f"must be between 0 and {MAX_FRAMES}, got {warmup}", where="--warmup")
    console = Console(stderr=True)
    loaded = []
    # spinners and bars only on a terminal: in a file or a pipe they would leave blank lines on stderr
    with status(console, "compiling") as spinner:
        for path in models:
            spinner.update(f"loading and compiling {path}")
            loaded.append(load_for_bench(path))
        spinner.update("measuring resident-set growth in a subprocess")
        for model, growth in zip(loaded, resident_growth(models)):
            model.details["memory_check"]["rss_growth_bytes"] = growth
    declared = [(path, m.sample_rate) for path, m in zip(models, loaded) if m.sample_rate is not None]
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
        if declared:
            console.print(f"{declared[0][0]} says it runs per sample ({declared[0][1][1]} = {declared[0][1][0]:g} Hz): "
                          f"block {block}" + (f" and a {block_deadline(block, rate) * 1e3:.3g} ms deadline" if budget is None else ""),
                          soft_wrap=True)
    deadline = block_deadline(block, rate) if rate is not None else None
    if budget is not None:
        chosen = Budget.parse(budget, memory_budget, statistic)
    elif deadline is not None:
        chosen = Budget(deadline, Budget.parse(None, memory_budget, statistic).memory, statistic)
    else:
        chosen = Budget.parse(DEFAULT_BUDGET, memory_budget, statistic)
    total = max(frames // block, 1) * block * (len(loaded) + (1 if len(loaded) > 1 else 0))
    with Progress(TextColumn("timing"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), TimeRemainingColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("bench", total=total)
        measured, pipeline = measure(loaded, frames, warmup, seed, on_progress=lambda n: progress.advance(task, n), block=block)
    settings = {"frames": max(frames // block, 1) * block, "warmup": warmup, "seed": seed, "block": block,
                "sample_rate_hz": rate, "sample_rate_source": rate_source,
                "deadline_per_block_seconds": deadline, "deadline_per_frame_seconds": None if rate is None else 1.0 / rate,
                "models": [str(p) for p in models]}
    result = BenchResult(measured, pipeline, chosen, settings)
    Console(width=max(Console().width, 170), stderr=to_stdout).print(render(result))
    from reference_engine.benchmark import int8_versus_float

    with status(console, "timing the INT8 models' float form"):
        verdicts = int8_versus_float(loaded, frames, warmup, seed, block)
    for verdict in verdicts:
        Console(soft_wrap=True, stderr=to_stdout).print(recommendation(verdict), markup=False)
    result.settings["int8_versus_float"] = verdicts
    if rtneural is not None:
        from toolchain.cpp.bench import default_backend, measure_files, rtneural_table

        with status(console, "building and timing RTNeural (C++)"):
            figures = measure_files(models, max(frames // block, 1) * block, seed, rtneural,
                                    backend := default_backend(rtneural), [block] * len(models))
        Console(width=max(Console().width, 170), stderr=to_stdout).print(rtneural_table([e.name for e in measured], [e.latency["p50"] * 1e6 for e in measured], figures, settings["frames"], backend))
        result.settings["rtneural"] = {"source": str(rtneural), "backend": backend,
                                       "models": {e.name: f for e, f in zip(measured, figures)}}
    if json_path is not None:
        write_json(result, json_path)
    if plot_path is not None:
        write_plot(result, plot_path)
    violations = result.violations()
    if violations:
        raise CheckFailed("; ".join(violations))


def render(result) -> Table:
    from reference_engine.budget import format_duration, format_size

    budget, settings = result.budget, result.settings
    block, deadline = settings.get("block", 1), settings.get("deadline_per_block_seconds")
    unit = "per frame, one call per frame" if block == 1 else f"per block of {block} frames, one call per block"
    title = f"latency (us) {unit}; {settings['frames']} frames"
    if deadline is not None:
        title += (f"; at {settings['sample_rate_hz']:g} Hz the block's deadline is {format_duration(deadline)} "
                  f"({format_duration(settings['deadline_per_frame_seconds'])} per frame)")
    if budget.latency is not None:
        title += f"; budget {format_duration(budget.latency)} on {budget.statistic}"
    if budget.memory is not None:
        title += f", {format_size(budget.memory)} memory"
    table = Table(title=title)
    for column in ("model", "p50", "p99", "p99.9", "max", "p50/frame", "RT factor", "first call", "frames/s", "headroom",
                   "weights", "state", "scratch", "total", "compile"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for entry in result.entries:
        latency, memory = entry.latency, entry.memory
        headroom = result.headroom(entry)
        over = bool(budget.violations(entry.name, latency, memory["total_bytes"]))
        first = "-" if entry.first_calls is None or not len(entry.first_calls) else \
            f"{entry.first_calls[0] * 1e6:.2f} ({entry.first_calls[0] / max(latency['p50'], 1e-12):.1f}x)"
        factor = "-" if deadline is None else f"{latency['p50'] / deadline:.3g} (p99 {latency['p99'] / deadline:.3g})"
        table.add_row(f"[red]{entry.name}[/]" if over else entry.name,
                      *(f"{latency[k] * 1e6:.2f}" for k in ("p50", "p99", "p99.9", "max")),
                      f"{latency['p50'] / block * 1e9:.0f} ns", factor, first,
                      f"{entry.frames_per_second:,.0f}", "-" if headroom is None else f"{headroom:,.1f}x",
                      *(format_size(memory[k]) for k in ("weight_bytes", "state_bytes", "scratch_bytes", "total_bytes")),
                      f"{entry.compile_seconds:.2f} s")
    return table


def recommendation(verdict: dict) -> str:
    """One line per INT8 model: its latency and bytes against the same model with float kernels, and which to ship."""
    figures = (f"{verdict['model']}: INT8 p50 {verdict['int8_p50_us']:.2f} us vs float {verdict['float_p50_us']:.2f} us per call "
               f"({verdict['latency_ratio']:.2f}x), weights {verdict['int8_weight_bytes']:,} vs {verdict['float_weight_bytes']:,} "
               f"bytes ({verdict['bytes_ratio']:.3f}x)")
    if verdict["recommend"] == "float":
        return (figures + ": the INT8 kernels are slower on this model (its float weights fit in cache, so the smaller "
                "weights save no memory traffic, and each int8 weight costs a conversion) -- recommend float unless "
                "memory is the constraint")
    return figures + ": INT8 pays here"
