"""``kelly-tc validate DIR [--check-specs]``: the five Kelly model files load, match the spec and
reproduce their stored reference pairs (exit 0; 1 if a check failed; 2 if a file is missing or broken)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from toolchain.cli import command


@command
def validate(
    directory: Path = typer.Argument(..., help="Folder holding NAME.json for the five Kelly models (the -o of kelly-tc export)."),
    check_specs: bool = typer.Option(False, "--check-specs", help="Also check sizes, layer stack, activations and parameter count against the spec."),
    atol: float = typer.Option(1e-5, "--atol", help="Largest absolute error allowed on the stored reference pair."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here."),
) -> None:
    """Validate exported Kelly models; one error line per broken model (exit 1: a check failed, 2: a file is missing or unreadable)."""
    from toolchain import atomic, options
    from toolchain.atomic import write_json
    from toolchain.kelly.validate import validate_directory

    options.atol(atol)
    if json_out is not None:
        inputs = sorted(directory.glob("*.json")) if directory.is_dir() else []
        atomic.check_output(json_out, inputs=inputs, stdout_ok=True, what="--json")

    report = validate_directory(directory, check_specs=check_specs, atol=atol)
    Console(width=max(Console().width, 120), soft_wrap=True, stderr=str(json_out) == atomic.STDOUT).print(render(report))
    if json_out is not None:
        write_json(json_out, report.to_json())
    for line in report.lines():
        print(f"error: {line}", file=sys.stderr, flush=True)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def render(report) -> Table:
    from toolchain.kelly.validate import OK

    checks = "load, reference pair" + (", spec" if report.check_specs else "")
    table = Table(title=f"{report.directory}: {checks} (atol {report.atol:g})")
    for column in ("model", "status", "params", "ref frames", "ref max abs error", "max logit"):
        table.add_column(column, justify="left" if column in ("model", "status") else "right")
    for model in report.models:
        colour = "green" if model.status == OK else "red"
        table.add_row(model.name, f"[{colour}]{model.status}[/]", "-" if model.parameters is None else f"{model.parameters:,}",
                      str(model.reference_frames or "-"),
                      "-" if model.reference_error is None else f"{model.reference_error:.2g}",
                      "-" if model.max_logit is None else f"{model.max_logit:.3g}")
    return table
