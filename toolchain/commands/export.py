"""``kelly-tc export CHECKPOINT_DIR -o DIR``: trained Kelly models -> ONNX -> RTNeural JSON, checked."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from toolchain.cli import command, status
from toolchain.errors import UnsupportedError


@command
def export(
    checkpoint_dir: Path = typer.Argument(..., help="Output folder of kelly-tc train (holds NAME/best.ckpt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for NAME.onnx and NAME.json; the report goes beside it as DIR.export_report.json."),
    models: Optional[List[str]] = typer.Option(None, "--models", "-m", help="Models to export (repeat or separate by commas); default all five."),
    dynamo: bool = typer.Option(False, "--dynamo/--no-dynamo", help="torch's dynamo exporter (fixed time length) instead of TorchScript with dynamic axes."),
    atol: float = typer.Option(1e-5, "--atol", help="Largest absolute error allowed against PyTorch and onnxruntime."),
) -> None:
    """Export trained models to ONNX and RTNeural JSON (with a reference pair); check against PyTorch and onnxruntime (exit 1 if over atol)."""
    try:
        from toolchain.kelly.export import export_checkpoints, require_passed
    except ImportError as error:
        raise UnsupportedError(f"export needs PyTorch and onnxscript ({error.name} is missing): "
                               "pip install torch==2.13.0 onnxscript") from None
    from toolchain import atomic, options

    options.atol(atol)
    atomic.check_folder(output, what="--output")  # a file in the way is found before the export, not after
    names = [name.strip() for value in models or [] for name in value.split(",") if name.strip()]
    with status(Console(stderr=True), "exporting") as spinner:
        report = export_checkpoints(checkpoint_dir, output, names or None, dynamo=dynamo, atol=atol,
                                    on_model=lambda name: spinner.update(f"exporting and checking {name}"))
    Console(width=max(Console().width, 120), soft_wrap=True).print(render(report))
    require_passed(report)


def render(report) -> Table:
    table = Table(title=f"Kelly export to {report.directory}")
    for column in ("model", "exporter", "params", "JSON bytes", "vs PyTorch", "vs onnxruntime", ""):
        table.add_column(column, justify="left" if column in ("model", "exporter", "") else "right")
    for model in report.models:
        table.add_row(model.name, model.exporter, f"{model.parameters:,}", f"{model.json_bytes:,}",
                      f"{model.torch_error:.2g}", f"{model.onnx_error:.2g}",
                      "[green]ok[/]" if model.passed else f"[red]FAIL[/] (atol {model.atol:g})")
    return table
