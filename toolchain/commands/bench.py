"""``kelly-tc bench MODEL.json [MODEL.json ...] [--budget 10ms] [--memory-budget 4MB] ...``:
per-frame latency (tail percentiles) and resident memory of each model and of all of them as a pipeline."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from toolchain.cli import command
from toolchain.errors import CheckFailed, InputError


@command
def bench(
    models: List[Path] = typer.Argument(..., help="RTNeural JSON models; two or more are also timed as one pipeline."),
    budget: str = typer.Option("10ms", "--budget", help="Per-frame latency budget (ns, us, ms, s)."),
    memory_budget: Optional[str] = typer.Option(None, "--memory-budget", help="Resident memory budget per model and for the pipeline (B, KB, MB, GB; powers of 1024). Unchecked if absent."),
    statistic: str = typer.Option("p99", "--statistic", help="Latency statistic held to the budget: p50, p99, p99.9 or max."),
    frames: int = typer.Option(10_000, "--frames", help="Timed frames (one call each)."),
    warmup: int = typer.Option(1_000, "--warmup", help="Untimed frames before timing."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the full report (every figure, machine, versions)."),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="Write per-frame latency CDFs as PNG (needs matplotlib)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random input frames."),
    rtneural: Optional[Path] = typer.Option(None, "--rtneural", help="RTNeural checkout: also time the real C++ RTNeural (dynamic and compile-time APIs, timed in C++)."),
) -> None:
    """Does it fit the audio callback? Per-frame p50/p99/p99.9/max, fps, headroom and memory; exit 1 if over budget."""
    from reference_engine.bench_report import BenchResult, write_json, write_plot
    from reference_engine.benchmark import MAX_FRAMES, load_for_bench, measure, resident_growth
    from reference_engine.budget import Budget

    from toolchain import atomic, options

    chosen = Budget.parse(budget, memory_budget, statistic)
    options.seed(seed)
    # Before the timing (minutes): an unwritable report must not be found after it.
    for path, option in ((json_path, "--json"), (plot_path, "--plot")):
        if path is not None:
            atomic.check_output(path, inputs=models, stdout_ok=option == "--json", what=option)
    if json_path is not None and plot_path is not None and atomic.same_file(json_path, plot_path):
        raise InputError("--json and --plot name the same file", file=json_path)
    report_console = Console(width=max(Console().width, 150), stderr=str(json_path) == atomic.STDOUT)
    if not 1 <= frames <= MAX_FRAMES:
        raise InputError(f"must be between 1 and {MAX_FRAMES}, got {frames}", where="--frames")
    if not 0 <= warmup <= MAX_FRAMES:
        raise InputError(f"must be between 0 and {MAX_FRAMES}, got {warmup}", where="--warmup")
    console = Console(stderr=True)
    loaded = []
    with console.status("compiling") as status:
        for path in models:
            status.update(f"loading and compiling {path}")
            loaded.append(load_for_bench(path))
        status.update("measuring resident-set growth in a subprocess")
        for model, growth in zip(loaded, resident_growth(models)):
            model.details["memory_check"]["rss_growth_bytes"] = growth
    total = frames * (len(loaded) + (1 if len(loaded) > 1 else 0))
    with Progress(TextColumn("timing"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("bench", total=total)
        measured, pipeline = measure(loaded, frames, warmup, seed, on_progress=lambda n: progress.advance(task, n))
    result = BenchResult(measured, pipeline, chosen, {"frames": frames, "warmup": warmup, "seed": seed,
                                                      "models": [str(p) for p in models]})
    report_console.print(render(result))
    if rtneural is not None:
        from toolchain.cpp.bench import default_backend, measure_files, rtneural_table

        with console.status("building and timing RTNeural (C++)"):
            figures = measure_files(models, frames, seed, rtneural, backend := default_backend(rtneural))
        report_console.print(rtneural_table([e.name for e in measured], [e.latency["p50"] * 1e6 for e in measured], figures, frames, backend))
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

    budget = result.budget
    title = f"per-frame latency (us), {result.settings['frames']} frames, one call per frame"
    if budget.latency is not None:
        title += f"; budget {format_duration(budget.latency)} on {budget.statistic}"
    if budget.memory is not None:
        title += f", {format_size(budget.memory)} memory"
    table = Table(title=title)
    for column in ("model", "p50", "p99", "p99.9", "max", "frames/s", "headroom", "weights", "state", "scratch",
                   "total", "compile"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for entry in result.entries:
        latency, memory = entry.latency, entry.memory
        headroom = result.headroom(entry)
        over = bool(budget.violations(entry.name, latency, memory["total_bytes"]))
        table.add_row(f"[red]{entry.name}[/]" if over else entry.name,
                      *(f"{latency[k] * 1e6:.2f}" for k in ("p50", "p99", "p99.9", "max")),
                      f"{entry.frames_per_second:,.0f}", "-" if headroom is None else f"{headroom:,.1f}x",
                      *(format_size(memory[k]) for k in ("weight_bytes", "state_bytes", "scratch_bytes", "total_bytes")),
                      f"{entry.compile_seconds:.2f} s")
    return table
