"""``kelly-tc train``: train the Kelly models (datasets, the music21 corpus, or synthetic data)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from toolchain.cli import command
from toolchain.errors import InputError, UnsupportedError


@command
def train(
    models: Optional[List[str]] = typer.Option(None, "--models", "-m", help="Models to train (repeat the option or separate by commas); default all five."),
    datasets_dir: Optional[Path] = typer.Option(None, "--datasets-dir", help="Folder holding DEAM/, lmd_full/, maestro-v3.0.0/, groove/, harmony/."),
    store: Optional[Path] = typer.Option(None, "--store", help="Train from a feature store made by `kelly-tc features` (streamed shards; needed under torchrun)."),
    source: Optional[str] = typer.Option(None, "--source", help="auto (default), datasets, corpus or synthetic."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Maximum epochs per model (default 12)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sequences per batch (default 32)."),
    seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Frames per training sequence (default 32)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Output folder (default kelly-out/training)."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON file of settings (see docs/TRAINING.md)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed (default 0)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from each model's latest.ckpt."),
):
    """Train the five Kelly models; report validation loss against the predict-the-mean baseline."""
    try:
        from toolchain.kelly.training import train_models
    except ImportError as error:
        raise UnsupportedError(f"training needs PyTorch ({error.name} is missing): pip install torch==2.13.0") from None
    from toolchain.kelly.config import load_config
    from toolchain.kelly.progress import progress_reporter

    from toolchain.kelly import distributed

    names = [name.strip() for value in models or [] for name in value.split(",") if name.strip()]
    if store is not None and (datasets_dir is not None or source is not None):
        raise InputError("--store trains from the store's shards; --datasets-dir and --source choose sources for "
                         "`kelly-tc features` instead", where="--store")
    settings = load_config(config, models=names or None, datasets_dir=str(datasets_dir) if datasets_dir else None,
                           store=str(store) if store else None,
                           source=source, epochs=epochs, batch_size=batch_size, seq_len=seq_len,
                           output=str(output) if output else None, seed=seed, resume=resume or None)
    from toolchain import atomic

    atomic.check_folder(settings.output, what="--output")  # before the training, not after it
    if distributed.launched_world() > 1 and os.environ.get("RANK", "0") != "0":
        train_models(settings)  # another torchrun rank: computes, writes and prints nothing
        return
    with progress_reporter() as reporter:
        report = train_models(settings, reporter)
    render_report(report)


def render_report(report) -> None:
    table = Table(title=f"Kelly training ({report.output})")
    for column in ("model", "data", "params", "epochs", "best", "val loss", "baseline", "ratio", "gap closed", "skipped"):
        table.add_column(column, justify="left" if column in ("model", "data") else "right")
    for result in report.results.values():
        table.add_row(result.name, "+".join(result.sources), f"{result.parameters:,}",
                      f"{result.epochs_run}{'*' if result.stopped_early else ''}", str(result.best_epoch),
                      f"{result.best_val_loss:.4g}", f"{result.baseline_loss:.4g}", f"{result.ratio:.3f}",
                      f"{result.gap_closed:.0%}", str(sum(result.skipped.values())))
    console = Console()
    console.print(table)
    console.print("params: counted as in the exported RTNeural model; epochs*: stopped early; ratio: val loss / "
                  "predict-the-mean baseline; gap closed: (baseline - val) / (baseline - perfect-prediction loss)")
    console.print(f"skipped samples (unreadable audio, corrupt MIDI, bad annotation rows): {report.skipped_total}")
