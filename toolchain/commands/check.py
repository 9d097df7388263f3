"""``kelly-tc check MODEL.onnx MODEL.json``: onnxruntime vs the reference engine, frame by frame."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

import kelly_tc
from toolchain.check import CEILING, DEFAULT_ATOL, DEFAULT_FRAMES, FLOOR, SPREAD_FACTOR, CheckReport
from toolchain.cli import command, status
from toolchain.errors import CheckFailed


def _verdict(report: CheckReport) -> str:
    """One line: the worst error and the bound it was held to."""
    if report.tolerance == "float64" and report.onnx_path.startswith(("kelly_tc.", "input_batch")):
        spread = report.float32_spread["engine vs float64 evaluation"]
        return (f"max abs error {report.worst_abs_error:.3g} vs {report.runtime}, bound {report.comparisons[0].bound:.3g} = "
                f"max({DEFAULT_ATOL:g}, {SPREAD_FACTOR:g} x the engine's float32 spread {spread:.3g} from a float64 evaluation)")
    if report.tolerance == "float64":
        worst = max(report.comparisons, key=lambda c: (c.float64_error or 0.0) / (c.bound or 1.0))
        spread = report.float32_spread.get("after reset" if worst.label.startswith("after reset") else "stream", 0.0)
        return (f"worst error vs the float64 run {worst.float64_error:.3g} ({worst.label}), bound {worst.bound:.3g} = "
                f"max({FLOOR:g}, {SPREAD_FACTOR:g} x onnxruntime's float32 spread {spread:.3g}), at most {CEILING:g} x max(1, |output|)"
                + (f"; {report.tolerance_note}" if report.tolerance_note else ""))
    bound = f"atol {report.atol:g}" + (f" + rtol {report.rtol:g} x max|reference|" if report.rtol else "")
    return f"max abs error {report.worst_abs_error:.3g} vs {report.runtime} ({bound})" + \
        (f"; {report.tolerance_note}" if report.tolerance_note else "")


def render(report: CheckReport, console: Console | None = None) -> None:
    """The human view of a report: one row per comparison."""
    console = console or Console(soft_wrap=True)
    chunk = f", fed in chunks of {report.chunk} (fixed time length)" if report.chunk else ""
    source = f"seed {report.seed}" if report.seed is not None else ("the file's reference input" if report.chunk is None and report.onnx_path.startswith(("kelly_tc.", "input_batch")) else "given input")
    table = Table(title=f"{report.json_path} vs {report.onnx_path}: {report.frames} frames ({source}){chunk}")
    numeric = ("frames", "max abs error", "vs float64", "bound", "max rel error", "cosine")
    for column in ("output", "comparison", *numeric, ""):
        table.add_column(column, justify="right" if column in numeric else "left")
    for c in report.comparisons:
        status = "[green]ok[/]" if c.within(report.atol) else "[red]FAIL[/]"
        table.add_row(c.output, c.label, str(c.frames), f"{c.max_abs_error:.3g}",
                      "-" if c.float64_error is None else f"{c.float64_error:.3g}", "-" if c.bound is None else f"{c.bound:.3g}",
                      f"{c.max_rel_error:.3g}", f"{c.cosine_similarity:.9f}", status)
    console.print(table)
    if report.float32_spread:
        spreads = ", ".join(f"{segment} {value:.3g}" for segment, value in report.float32_spread.items())
        console.print(f"float32 spread (onnxruntime float32 vs the float64 run of the same graph): {spreads}")
    verdict = "[green]passed[/]" if report.passed else "[red]failed[/]"
    console.print(f"{verdict}: {_verdict(report)}")


def finish(report: CheckReport, json_out: Path | None) -> None:
    """Render, write the JSON report if asked, and turn a failure into exit code 1."""
    from toolchain.atomic import STDOUT, write_json

    render(report, Console(soft_wrap=True, stderr=str(json_out) == STDOUT))  # --json -: stdout holds the JSON alone
    if json_out is not None:
        write_json(json_out, report.to_json())
    if not report.passed:
        raise CheckFailed(f"{_verdict(report)}: exceeded ({report.worst_ratio:.3g}x the bound)", file=report.json_path)


@command
def check(
    model: Path = typer.Argument(..., help="The ONNX model (the reference, run by onnxruntime); or an RTNeural JSON alone, checked against the reference pair it ships (kelly_tc.reference or AIDA-X's input_batch/output_batch)."),
    json_model: Optional[Path] = typer.Argument(None, help="The RTNeural JSON model (run frame by frame by the reference engine)."),
    frames: int = typer.Option(DEFAULT_FRAMES, "--frames", "-n", help="Frames of seeded random input (ignored with --input)."),
    input_path: Optional[Path] = typer.Option(None, "--input", "-i", help="Input frames [frames, in] as .npy or .csv (as for run) instead of random."),
    atol: Optional[float] = typer.Option(None, "--atol", help="Fixed bound: largest absolute error against onnxruntime (default: judged against a float64 run of the ONNX graph, bound 10x onnxruntime's own float32 error)."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Fixed bound: also allow rtol x the reference's largest magnitude (with --atol, default 0)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here ('-': standard output, the table then goes to stderr)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random input."),
    rtneural: Optional[Path] = typer.Option(None, "--rtneural", help="RTNeural checkout: also run the real C++ RTNeural (dynamic and compile-time APIs; built once into a cache)."),
) -> None:
    """Check that the JSON computes what the ONNX model computes (exit 0 within the bound, 1 beyond, 2 bad input)."""
    from toolchain import atomic, options

    options.integer(frames, "--frames", 2, options.MAX_CHECK_FRAMES)
    if atol is not None:
        options.atol(atol)
    if rtol is not None:
        options.atol(rtol, "--rtol")
    options.seed(seed)
    if json_out is not None:
        atomic.check_output(json_out, inputs=[model, json_model, input_path], stdout_ok=True, what="--json")
    if json_model is None:
        from toolchain.check_json import check_json_file
        from toolchain.errors import InputError

        if model.suffix.lower() == ".onnx":
            raise InputError("give the RTNeural JSON to compare with: kelly-tc check MODEL.onnx MODEL.json", file=model)
        with status(Console(stderr=True), "building and running RTNeural (C++)") if rtneural else contextlib.nullcontext():
            report = check_json_file(model, atol=atol, rtol=rtol, rtneural=rtneural, seed=seed)
        finish(report, json_out)
        return
    with status(Console(stderr=True), "building and running RTNeural (C++)") if rtneural else contextlib.nullcontext():
        report = kelly_tc.check(model, json_model, frames=frames, inputs=input_path, atol=atol, seed=seed, rtneural=rtneural, rtol=rtol)
    finish(report, json_out)
