"""``kelly-tc bench MODEL.json [MODEL.json ...] [--budget 10ms] [--memory-budget 4MB] ...``:
per-frame latency (tail percentiles) and resident memory of each model and of all of them as a pipeline."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from toolchain.cli import command, status
from toolchain.errors import CheckFailed


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
    import kelly_tc
    from reference_engine.bench_report import write_json, write_plot
    from reference_engine.benchmark import MAX_FRAMES

    console = Console(stderr=True)
    total = min(frames, MAX_FRAMES) * (len(models) + (1 if len(models) > 1 else 0))
    # bars and spinners only on a terminal: in a file or a pipe they would leave blank lines on stderr
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                  TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("compiling", total=total)
        result = kelly_tc.bench(models, budget=budget, memory_budget=memory_budget, statistic=statistic, frames=frames,
                                warmup=warmup, seed=seed, on_load=lambda text: progress.update(task, description=text),
                                on_progress=lambda n: progress.update(task, advance=n, description="timing"))
    measured = result.models
    Console(width=max(Console().width, 150)).print(render(result))
    if rtneural is not None:
        from toolchain.cpp.bench import default_backend, measure_files, rtneural_table

        with status(console, "building and timing RTNeural (C++)"):
            figures = measure_files(models, frames, seed, rtneural, backend := default_backend(rtneural))
        Console(width=max(Console().width, 150)).print(rtneural_table([e.name for e in measured], [e.latency["p50"] * 1e6 for e in measured], figures, frames, backend))
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
