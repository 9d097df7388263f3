"""``kelly-tc prune MODEL.onnx --amount 0.5``: structured pruning to a smaller dense model, or magnitude sparsity."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from toolchain.cli import command


@command
def prune(
    model: Path = typer.Argument(..., help="The ONNX model."),
    amount: float = typer.Option(0.5, "--amount", help="Share of each prunable layer's units (or weights) to remove, in [0, 1)."),
    structured: bool = typer.Option(True, "--structured/--unstructured", help="Remove whole units (smaller model) or zero single weights (sparsity)."),
    criterion: str = typer.Option("l2", "--criterion", help="Unit ranking norm: l2 or l1 (of incoming x outgoing weights)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output ONNX (default: MODEL.pruned.onnx)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Model input for the accuracy figures (default: seeded random input)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the report as JSON."),
    latency: bool = typer.Option(True, "--latency/--no-latency", help="Measure per-frame latency in the reference engine."),
    finetune: bool = typer.Option(False, "--finetune", help="Fine-tune after pruning (Kelly models)."),
):
    """Prune MODEL and report parameters, bytes, accuracy against the unpruned model and engine latency."""
    from quant.workflow import prune_file

    output = output or model.with_suffix(".pruned.onnx")
    figures = prune_file(model, output, amount=amount, structured=structured, criterion=criterion,
                         calibration_path=calibration, report_path=report, latency=latency, finetune=finetune)
    render(figures)


def render(figures: dict) -> None:
    console = Console()
    sizes = Table(title=f"{figures['model']} -> {figures['output']} ({figures['method']}, amount {figures['amount']})")
    for column in ("", "original", "pruned", "ratio"):
        sizes.add_column(column, justify="right")
    for key in ("parameters", "weight_bytes", "file_bytes"):
        size = figures["size"]
        sizes.add_row(key, f"{size['original'][key]:,}", f"{size['pruned'][key]:,}", f"{size['ratio'][key]:.3f}")
    latency = figures.get("latency", {})
    if "ratio" in latency:
        sizes.add_row("engine s/frame", f"{latency['original']['seconds_per_frame']:.3g}",
                      f"{latency['pruned']['seconds_per_frame']:.3g}", f"{latency['ratio']:.3f}")
    console.print(sizes)
    for entry in figures.get("pruned_layers", []):
        console.print(f"  {entry['node']} ({entry['op_type']}): {entry['units_before']} -> {entry['units_after']} units")
    for entry in figures.get("kept_layers", []):
        console.print(f"  kept {entry['node']}: {entry['reason']}")
    if "sparsity" in figures:
        console.print(f"sparsity {figures['sparsity']['overall']:.3f} (zeros in the weight matrices; no speed-up claimed)")
    accuracy = Table(title=f"accuracy vs the unpruned model ({figures['input']})")
    for column in ("output", "max abs", "error/signal", "cosine"):
        accuracy.add_column(column, justify="right")
    for name, v in figures["accuracy"].items():
        accuracy.add_row(name, f"{v['max_abs']:.3g}", f"{v['error_to_signal']:.3g}", f"{v['cosine']:.6f}")
    console.print(accuracy)
    if latency and "ratio" not in latency:
        reasons = {k: v.get("reason") for k, v in latency.items() if isinstance(v, dict) and v.get("status") != "ok"}
        console.print(f"engine latency not measured: {next(iter(reasons.values()), '?')}")
