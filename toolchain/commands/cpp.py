"""``kelly-tc cpp MODEL.json -o model.h``: a C++ header on RTNeural's compile-time API (ModelT)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from toolchain.cli import command


@command
def cpp(
    model: Path = typer.Argument(..., help="Model file: RTNeural JSON (plain or with in_skip) or a kelly-tc graph file."),
    output: Path = typer.Option(..., "--output", "-o", help="Header to write (e.g. model.h; '-': standard output)."),
    name: Optional[str] = typer.Option(None, "--name", help="C++ name of the model type (default: from the file name, e.g. EmotionRecognizer)."),
    namespace: Optional[str] = typer.Option(None, "--namespace", help="C++ namespace of the header (default: the name in snake_case)."),
    embed_weights: bool = typer.Option(False, "--embed-weights", help="Compile the weights into the header (no file system or JSON at run time)."),
    precision: str = typer.Option("float", "--precision", help="Scalar type: float or double."),
) -> None:
    """Write one self-contained header: the ModelT type (a graph file: a class wiring RTNeural's layers), a loader and self_test()."""
    import kelly_tc
    from toolchain import atomic

    atomic.check_output(output, inputs=[model], stdout_ok=True, what="--output")
    info = kelly_tc.cpp(model, output, name=name, namespace=namespace, embed_weights=embed_weights, precision=precision)
    weights = f"{info.embedded_values} weights compiled in" if embed_weights else f"weights read from {model.name} by load()"
    check = f"self_test() over {info.reference_frames} reference frames" if info.reference_frames else \
        "no reference pair in the model: self_test() returns NaN"
    layers = f"{len(info.types)} compile-time layers"
    if info.form == "graph":
        layers = f"a graph of {len(info.types) + info.merges} nodes: {layers} and {info.merges} merges"
    elif info.form == "in_skip":
        layers += " plus the input skip (in_skip: output + input feature 0)"
    Console(soft_wrap=True, stderr=str(output) == atomic.STDOUT).print(
        f"wrote {info.path}: {info.namespace}::{info.name} ({layers}, {weights}; {check})")
