"""``kelly-tc run MODEL.json --input X.npy [-o Y.npy]``: run frames through the reference engine."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from toolchain.cli import command


@command
def run(
    model: Path = typer.Argument(..., help="RTNeural JSON model."),
    input_path: Path = typer.Option(..., "--input", "-i", help="Frames [frames, in] as .npy, or .csv with one frame per line (RTNeural's test-vector layout)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output .npy or .csv [frames, out] (default: INPUT.out.<ext> beside the input)."),
) -> None:
    """Run a model frame by frame (reset once, state carried), as a plugin would."""
    import kelly_tc
    from reference_engine.frames import default_output_path
    from toolchain import atomic

    atomic.check_output(output or default_output_path(input_path), inputs=[model, input_path], what="--output")

    console = Console(stderr=True)
    progress = Progress(TextColumn("running"), BarColumn(), MofNCompleteColumn(), TextColumn("frames"),
                        TimeRemainingColumn(), console=console, transient=True)
    task = progress.add_task("run", total=None)

    def start(total: int) -> None:  # shown only once the model and the frames have loaded, and only on a
        progress.update(task, total=total)  # terminal: elsewhere a stopped bar leaves a stray blank line
        if console.is_terminal:
            progress.start()

    try:
        result = kelly_tc.run(model, input_path, output, on_start=start,
                              on_progress=lambda done: progress.update(task, completed=done))
    finally:
        if progress.live.is_started:
            progress.stop()
    Console(soft_wrap=True).print(f"wrote {result.output_path}: {result.frames} frames x {result.output_size} outputs "
                                  f"in {result.seconds * 1e3:.1f} ms ({result.seconds_per_frame * 1e6:.2f} us/frame, steady state; "
                                  f"compilation {result.compile_seconds:.2f} s before it, not counted)")
    if result.non_finite_outputs:
        console.print(f"[yellow]warning:[/] {result.non_finite_outputs} output values are NaN or Inf")
