"""``kelly-tc convert MODEL.onnx [-o OUT.json] [--check]``: ONNX -> RTNeural JSON."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from toolchain.check import DEFAULT_FRAMES
from toolchain.cli import command
from toolchain.commands.check import finish
from toolchain.convert import output_paths
from toolchain.errors import InputError
from toolchain.graph_json import MESSAGE_GRAPH, MESSAGE_IN_SKIP, output_form


@command
def convert(
    model: Path = typer.Argument(..., help="The ONNX model to convert (or a GuitarML SimpleRNN .json: model_data + state_dict)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output JSON (default: MODEL.json beside the model)."),
    run_check: bool = typer.Option(False, "--check", help="Then compare the JSON with the ONNX model (as `kelly-tc check`)."),
    frames: int = typer.Option(DEFAULT_FRAMES, "--frames", "-n", help="Frames of random input for --check."),
    atol: Optional[float] = typer.Option(None, "--atol", help="Fixed bound for --check (default: judged against a float64 run of the ONNX graph, as `kelly-tc check`)."),
    int8: bool = typer.Option(False, "--int8", help="Also write the INT8 variant OUT.int8.json (a kelly-tc extension for int8 engines; quant/int8_json.py); for NAME.int8.onnx: NAME.int8.json, with the float JSON as NAME.int8.float.json."),
) -> None:
    """Convert an ONNX model to RTNeural JSON (refusing, with the reason, what RTNeural cannot compute)."""
    from toolchain import atomic, options

    options.integer(frames, "--frames", 2, options.MAX_CHECK_FRAMES)
    if atol is not None:
        options.atol(atol)
    if _starts_like_json(model):  # GuitarML's SimpleRNN files (model_data + state_dict); by content, not name
        from toolchain.convert import convert_json_file

        target = output or model.with_name(f"{model.stem}.rtneural.json")
        atomic.check_output(target, inputs=[model], what="--output")
        converted, error = convert_json_file(model, output)
        Console(soft_wrap=True).print(f"wrote {target}: {', '.join(f'{l.kind} {l.in_size}->{l.out_size}' for l in converted.layers)}"
                                      f" ({converted.parameter_count()} parameters); max abs error {error:.3g} against a float64 "
                                      "evaluation of the source weights")
        return
    import kelly_tc

    target, int8_target = output_paths(model, output, int8)
    to_stdout = str(target) == atomic.STDOUT
    if to_stdout and (int8 or run_check):
        raise InputError("-o - (standard output) writes the JSON only; give a file name for --int8 or --check", where="--output")
    atomic.check_output(target, inputs=[model], stdout_ok=True, what="--output")
    if int8_target is not None:
        atomic.check_output(int8_target, inputs=[model, target])
    console = Console(soft_wrap=True, stderr=to_stdout)  # with -o -, stdout carries the JSON alone
    converted = kelly_tc.convert(model, output, int8=int8)
    layers = ", ".join(f"{layer.kind} {layer.in_size}->{layer.out_size}" + (f" {layer.activation}" if getattr(layer, "activation", "") else "")
                       for layer in converted.layers)
    console.print(f"wrote {'standard output' if to_stdout else target}: {layers} ({converted.parameter_count()} parameters)")
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


def _starts_like_json(path: Path) -> bool:
    """True when the file's first non-blank byte is ``{`` (a JSON object); an ONNX protobuf never starts
    so (its first byte is a field tag such as 0x08). Only a regular file is opened (a FIFO would block);
    anything else goes on to the ONNX reader, which names the problem."""
    import os
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as handle:
            return handle.read(4096).lstrip().startswith(b"{")
    except OSError:
        return False
