"""``kelly-tc convert MODEL.onnx [-o OUT.json] [--check]``: ONNX -> RTNeural JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from toolchain.check import DEFAULT_ATOL, DEFAULT_FRAMES
from toolchain.cli import command
from toolchain.commands.check import finish
from toolchain.convert import output_paths
from toolchain.graph_json import MESSAGE_GRAPH, MESSAGE_IN_SKIP, output_form


@command
def convert(
    model: Path = typer.Argument(..., help="The ONNX model to convert."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output JSON (default: MODEL.json beside the model)."),
    run_check: bool = typer.Option(False, "--check", help="Then compare the JSON with the ONNX model (as `kelly-tc check`)."),
    frames: int = typer.Option(DEFAULT_FRAMES, "--frames", "-n", help="Frames of random input for --check."),
    atol: float = typer.Option(DEFAULT_ATOL, "--atol", help="Largest absolute error allowed by --check."),
    int8: bool = typer.Option(False, "--int8", help="Also write the INT8 variant OUT.int8.json (a kelly-tc extension for int8 engines; quant/int8_json.py); for NAME.int8.onnx: NAME.int8.json, with the float JSON as NAME.int8.float.json."),
) -> None:
    """Convert an ONNX model to RTNeural JSON (refusing, with the reason, what RTNeural cannot compute)."""
    import kelly_tc

    target, int8_target = output_paths(model, output, int8)
    converted = kelly_tc.convert(model, output, int8=int8)
    layers = ", ".join(f"{layer.kind} {layer.in_size}->{layer.out_size}" + (f" {layer.activation}" if getattr(layer, "activation", "") else "")
                       for layer in converted.layers)
    console = Console(soft_wrap=True)
    console.print(f"wrote {target}: {layers} ({converted.parameter_count()} parameters)")
    form = output_form(converted)
    if form != "sequential":  # stderr: what a plain RTNeural loader does with this file
        Console(stderr=True, soft_wrap=True).print(MESSAGE_IN_SKIP if form == "in_skip" else MESSAGE_GRAPH, markup=False)
    for note in converted.metadata.get("kelly_tc", {}).get("notes", []):
        console.print(f"[yellow]note:[/] {note}")
    if int8_target is not None:
        console.print(f"wrote {int8_target}: int8 weights, one scale per output unit / gate row")
    if run_check:
        for json_path in [target] + ([int8_target] if int8_target else []):
            finish(kelly_tc.check(model, json_path, frames=frames, atol=atol), None)
