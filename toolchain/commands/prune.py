"""``kelly-tc prune MODEL.onnx --amount 0.5``: structured pruning to a smaller dense model, or magnitude sparsity."""
from __future__ import annotations

import math
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
    finetune: bool = typer.Option(False, "--finetune", help="Then fine-tune on the Kelly training data (Kelly models; needs torch)."),
    epochs: int = typer.Option(4, "--finetune-epochs", help="Epochs of fine-tuning (the best validation epoch is kept)."),
    datasets_dir: Optional[Path] = typer.Option(None, "--datasets-dir", help="Kelly datasets for --finetune (default: music21 corpus, else synthetic)."),
):
    """Prune MODEL and report parameters, bytes, accuracy against the unpruned model and engine latency."""
    import kelly_tc

    from toolchain import atomic, options

    options.real(amount, "--amount", -math.inf, math.inf)  # finite here; the range is prune_file's own check
    options.integer(epochs, "--finetune-epochs", 1, 100_000)
    for path, option, inputs in ((output or model.with_suffix(".pruned.onnx"), "--output", [model, calibration, report]),
                                 (report, "--report", [model, calibration])):
        if path is not None:
            atomic.check_output(path, inputs=inputs, what=option)
    figures = kelly_tc.prune(model, output, amount=amount, structured=structured, criterion=criterion,
                             calibration=calibration, report=report, latency=latency, finetune=finetune,
                             finetune_epochs=epochs, datasets_dir=datasets_dir)
    render(figures)


def render(figures: dict) -> None:
    console = Console()
    sizes = Table(title=f"{figures['model']} -> {figures['output']} ({figures['method']}, amount {figures['amount']})")
    for column in ("", "original", "pruned", "ratio"):
        sizes.add_column(column, justify="right")
    for key in ("parameters", "weight_bytes", "file_bytes"):
        size = figures["size"]
        ratio = size["ratio"][key]  # None when the model has no weights to prune (0 / 0)
        sizes.add_row(key, f"{size['original'][key]:,}", f"{size['pruned'][key]:,}", "-" if ratio is None else f"{ratio:.3f}")
    latency = figures.get("latency", {})
    if "ratio" in latency:
        sizes.add_row("engine s/frame", f"{latency['original']['seconds_per_frame']:.3g}",
                      f"{latency['pruned']['seconds_per_frame']:.3g}", f"{latency['ratio']:.3f}")
    console.print(sizes)
    for entry in figures.get("pruned_layers", []):
        joined = f" (joined with {', '.join(entry['joined_with'])})" if entry.get("joined_with") else ""
        console.print(f"  {entry['node']} ({entry['op_type']}): {entry['units_before']} -> {entry['units_after']} units{joined}")
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
    tuned = figures.get("finetune")
    if tuned:
        loss = tuned["validation_loss"]
        console.print(f"{tuned['model']} validation loss ({'+'.join(tuned['data'])} data): unpruned {loss['unpruned']:.4g}, "
                      f"pruned {loss['pruned']:.4g}, fine-tuned {loss['finetuned']:.4g} ({tuned['epochs']} epochs; "
                      f"predict-the-mean baseline {loss['baseline']:.4g})")
    if latency and "ratio" not in latency:
        console.print(f"engine latency not measured: {latency.get('reason')}")
