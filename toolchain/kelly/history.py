"""Metrics history of a training run: ``history.json``, ``history.csv`` and ``loss.png`` per model.

All written atomically; the PNG only when matplotlib (the ``plot`` extra) is installed.
"""
from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

from toolchain import atomic

log = logging.getLogger(__name__)
COLUMNS = ("epoch", "train_loss", "val_loss", "baseline_loss", "seconds")


def write_history(directory: Path, name: str, history: list[dict], baseline: float) -> None:
    """``history.json`` and ``history.csv`` of model ``name`` in ``directory``."""
    rows = [{**epoch, "baseline_loss": baseline} for epoch in history]
    atomic.write_json(directory / "history.json", {"model": name, "baseline_loss": baseline, "epochs": rows})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic.write_text(directory / "history.csv", text.getvalue())


def plot_history(directory: Path, name: str, history: list[dict], baseline: float, best_epoch: int) -> Path | None:
    """``loss.png``: train and validation loss per epoch, the mean baseline and the best epoch."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib not installed: no loss curve for %s", name)
        return None
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.plot(epochs, [row["train_loss"] for row in history], label="train")
    axes.plot(epochs, [row["val_loss"] for row in history], label="validation")
    axes.axhline(baseline, color="grey", linestyle="--", label="predict-the-mean baseline")
    axes.axvline(best_epoch, color="green", linestyle=":", label=f"best epoch {best_epoch}")
    axes.set(title=name, xlabel="epoch", ylabel="loss")
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = directory / "loss.png"
    with atomic.atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp)
    plt.close(figure)
    return path
