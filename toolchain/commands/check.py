"""``kelly-tc check MODEL.onnx MODEL.json``: onnxruntime vs the reference engine, frame by frame."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from toolchain.check import DEFAULT_ATOL, DEFAULT_FRAMES, CheckReport, check_files
from toolchain.cli import command
from toolchain.errors import CheckFailed


def render(report: CheckReport, console: Console | None = None) -> None:
    """The human view of a report: one row per comparison."""
    console = console or Console(soft_wrap=True)
    chunk = f", fed in chunks of {report.chunk} (fixed time length)" if report.chunk else ""
    source = f"seed {report.seed}" if report.seed is not None else "given input"
    table = Table(title=f"{report.json_path} vs {report.onnx_path}: {report.frames} frames ({source}){chunk}")
    for column in ("output", "comparison", "frames", "max abs error", "max rel error", "cosine", ""):
        table.add_column(column, justify="right" if column in ("frames", "max abs error", "max rel error", "cosine") else "left")
    for c in report.comparisons:
        status = "[green]ok[/]" if c.within(report.atol) else "[red]FAIL[/]"
        table.add_row(c.output, c.label, str(c.frames), f"{c.max_abs_error:.3g}", f"{c.max_rel_error:.3g}", f"{c.cosine_similarity:.9f}", status)
    console.print(table)
    verdict = "[green]passed[/]" if report.passed else "[red]failed[/]"
    console.print(f"{verdict}: worst abs error {report.worst_abs_error:.3g} (atol {report.atol:g})")


def finish(report: CheckReport, json_out: Path | None) -> None:
    """Render, write the JSON report if asked, and turn a failure into exit code 1."""
    from toolchain.atomic import STDOUT, write_json

    render(report, Console(soft_wrap=True, stderr=str(json_out) == STDOUT))  # --json -: stdout holds the JSON alone
    if json_out is not None:
        write_json(json_out, report.to_json())
    if not report.passed:
        raise CheckFailed(f"max abs error {report.worst_abs_error:.3g} exceeds atol {report.atol:g}", file=report.json_path)


@command
def check(
    model: Path = typer.Argument(..., help="The ONNX model (the reference, run by onnxruntime)."),
    json_model: Path = typer.Argument(..., help="The RTNeural JSON model (run frame by frame by the reference engine)."),
    frames: int = typer.Option(DEFAULT_FRAMES, "--frames", "-n", help="Frames of seeded random input (ignored with --input)."),
    input_path: Optional[Path] = typer.Option(None, "--input", "-i", help="Input frames [frames, in] as .npy or .csv (as for run) instead of random."),
    atol: float = typer.Option(DEFAULT_ATOL, "--atol", help="Largest absolute error allowed."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here ('-': standard output, the table then goes to stderr)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random input."),
    rtneural: Optional[Path] = typer.Option(None, "--rtneural", help="RTNeural checkout: also run the real C++ RTNeural (dynamic and compile-time APIs; built once into a cache)."),
) -> None:
    """Check that the JSON computes what the ONNX model computes (exit 0 within atol, 1 beyond, 2 bad input)."""
    from toolchain import atomic, options

    options.integer(frames, "--frames", 2, options.MAX_CHECK_FRAMES)
    options.atol(atol)
    options.seed(seed)
    if json_out is not None:
        atomic.check_output(json_out, inputs=[model, json_model, input_path], stdout_ok=True, what="--json")
    with Console(stderr=True).status("building and running RTNeural (C++)") if rtneural else contextlib.nullcontext():
        report = check_files(model, json_model, frames=frames, inputs=input_path, atol=atol, seed=seed, rtneural=rtneural)
    finish(report, json_out)
