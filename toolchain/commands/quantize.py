"""``kelly-tc quantize MODEL.onnx --int8``: INT8 weights (and optionally activations) as standard QDQ ONNX."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from toolchain.cli import command
from toolchain.errors import InputError


@command
def quantize(
    model: Path = typer.Argument(..., help="The float ONNX model."),
    int8: bool = typer.Option(False, "--int8", help="Quantize to INT8 (symmetric weights; the only format so far)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output ONNX (default: MODEL.int8.onnx)."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="One scale per output channel / gate row, or one per tensor."),
    biases: bool = typer.Option(False, "--quantize-biases", help="Also store biases as int8 (per tensor): a few % fewer bytes, some accuracy."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Model input (.npy, or .npz by input name; extra leading axis = samples). Default: seeded random input."),
    activations: bool = typer.Option(False, "--activations", help="Also quantize the inputs of weighted ops (static QDQ from calibration)."),
    method: str = typer.Option("minmax", "--method", help="Activation calibration: minmax or percentile."),
    percentile: float = typer.Option(99.99, "--percentile", help="Percentile for --method percentile."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the size/accuracy report as JSON."),
    compare: bool = typer.Option(True, "--compare/--no-compare", help="Measure onnxruntime's quantize_dynamic side by side."),
    auto: bool = typer.Option(False, "--auto", help="Per weight, one scale per tensor or per group of rows, and int8 or 16-bit biases, where the error/signal on the calibration input stays within --max-error-growth of per-channel's."),
    max_error_growth: float = typer.Option(1.1, "--max-error-growth", help="--auto's budget: error/signal at most this times per-channel's."),
):
    """Quantize MODEL to INT8 and report size and accuracy against the float model and quantize_dynamic."""
    import kelly_tc

    if not int8:
        raise InputError("choose the target format: --int8", file=model)
    from toolchain import atomic
    from toolchain import options as numbers

    numbers.real(percentile, "--percentile", 0.0, 100.0, low_open=True)
    numbers.real(max_error_growth, "--max-error-growth", 1.0)
    for path, option, inputs in ((output or model.with_suffix(".int8.onnx"), "--output", [model, calibration, report]),
                                 (report, "--report", [model, calibration])):
        if path is not None:
            atomic.check_output(path, inputs=inputs, what=option)
    options = dict(per_channel=per_channel, biases=biases, activations=activations, calibration=calibration,
                   method=method, percentile=percentile, report=report, compare=compare, auto=auto,
                   max_error_growth=max_error_growth)
    if not activations and not auto:  # nothing to calibrate
        return render(kelly_tc.quantize(model, output, **options))
    label = "choosing scales (--auto)" if auto else "calibrating activations"
    console = Console(stderr=True)
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("calibrating", total=None)
        figures = kelly_tc.quantize(model, output, **options, progress=lambda done, total: bar.update(task, completed=done, total=total))
    render(figures)


def render(figures: dict) -> None:
    console = Console()
    dynamic = figures.get("onnxruntime_quantize_dynamic") or {}
    ok = dynamic.get("status") == "ok"
    sizes = Table(title=f"{figures['model']} -> {figures['output']}")
    sizes.add_column("")
    for label in ("float", "kelly-tc int8") + (("ort quantize_dynamic",) if ok else ()):
        sizes.add_column(label, justify="right")
    for key in ("file_bytes", "weight_bytes", "parameters"):
        row = [figures["size"]["float"][key], figures["size"]["int8"][key]] + ([dynamic["size"][key]] if ok else [])
        sizes.add_row(key, *(f"{v:,}" for v in row))
    console.print(sizes)
    if "granularity" in figures:
        console.print(f"{figures['weights']}; biases: {figures['biases']}")
    accuracy = Table(title=f"accuracy vs float ({figures['input']})")
    for column in ("output", "tool", "max abs", "error/signal", "cosine"):
        accuracy.add_column(column, justify="left" if column in ("output", "tool") else "right")
    for name, values in figures["accuracy"].items():
        rows = [("kelly-tc", values)] + ([("ort dynamic", dynamic["accuracy"][name])] if ok else [])
        for tool, v in rows:
            accuracy.add_row(name, tool, f"{v['max_abs']:.3g}", f"{v['error_to_signal']:.3g}", f"{v['cosine']:.6f}")
    console.print(accuracy)
    if ok and dynamic["float_nodes"]:
        console.print(f"quantize_dynamic left in float: {', '.join(dynamic['float_nodes'])}")
    if ok and dynamic["non_standard_ops"]:
        console.print(f"quantize_dynamic used onnxruntime-only ops: {', '.join(dynamic['non_standard_ops'])}")
    if dynamic and not ok:
        console.print(f"quantize_dynamic failed: {dynamic.get('reason')}")
