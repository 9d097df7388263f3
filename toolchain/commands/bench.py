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

from toolchain.cli import command
from toolchain.errors import CheckFailed, InputError



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
    import kelly_tc
    from reference_engine.bench_report import write_json, write_plot
    from reference_engine.budget import Budget

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
    console = Console(stderr=True)
    timed_calls = max(frames // (block or 1), 1) * (block or 1) * (len(models) + (1 if len(models) > 1 else 0))
    # one bar, only on a terminal (in a file or a pipe it would leave blank lines on stderr); its description
    # says what runs (compiling, timing, the INT8 models' float form, RTNeural)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                  TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("compiling", total=timed_calls)
        result = kelly_tc.bench(models, block=block, sample_rate=sample_rate, budget=budget, memory_budget=memory_budget,
                                statistic=statistic, frames=frames, warmup=warmup, seed=seed, rtneural=rtneural,
                                on_load=lambda text: progress.update(task, description=text),
                                on_progress=lambda n: progress.update(task, advance=n, description="timing"),
                                on_note=lambda line: progress.console.print(line, soft_wrap=True, markup=False))
    Console(width=max(Console().width, 170), stderr=to_stdout).print(render(result))
    for verdict in result.settings.get("int8_versus_float", []):
        Console(soft_wrap=True, stderr=to_stdout).print(recommendation(verdict), markup=False)
    if rtneural is not None:
        from toolchain.cpp.bench import rtneural_table

        figures = result.settings["rtneural"]
        Console(width=max(Console().width, 170), stderr=to_stdout).print(rtneural_table(
            [e.name for e in result.models], [e.latency["p50"] * 1e6 for e in result.models],
            list(figures["models"].values()), result.settings["frames"], figures["backend"]))
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
                   "weights", "program", "state", "scratch", "total", "compile"):
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
                      *(format_size(memory.get(k, 0)) for k in ("weight_bytes", "program_bytes", "state_bytes", "scratch_bytes",
                                                                "total_bytes")),
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
