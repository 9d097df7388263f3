"""``kelly-tc bench`` results: the verdict against the budgets, the JSON report and the latency plot."""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_engine.benchmark import Measurement, machine
from reference_engine.budget import Budget
from toolchain import atomic
from toolchain.errors import InputError


@dataclass
class BenchResult:
    models: list[Measurement]
    pipeline: Measurement | None
    budget: Budget
    settings: dict

    @property
    def entries(self) -> list[Measurement]:
        return self.models + ([self.pipeline] if self.pipeline else [])

    def violations(self) -> list[str]:
        return [message for entry in self.entries
                for message in self.budget.violations(entry.name, entry.latency, entry.memory["total_bytes"])]

    def headroom(self, entry: Measurement) -> float | None:
        return self.budget.headroom(entry.latency)

    def as_dict(self) -> dict:
        def entry_dict(entry: Measurement) -> dict:
            values = entry.as_dict()
            values["headroom"] = self.headroom(entry)
            values["within_budget"] = not self.budget.violations(entry.name, entry.latency, entry.memory["total_bytes"])
            return values

        return {"tool": "kelly-tc bench", "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "settings": self.settings, "budget": self.budget.as_dict(), "machine": machine(),
                "models": [entry_dict(m) for m in self.models],
                "pipeline": entry_dict(self.pipeline) if self.pipeline else None,
                "violations": self.violations(), "within_budget": not self.violations()}


def write_json(result: BenchResult, path: str | Path) -> Path:
    return atomic.write_json(path, result.as_dict())


def write_plot(result: BenchResult, path: str | Path) -> Path:
    """Per-call latency tails (a call is one block; one frame with ``--block 1``): for each model and the
    pipeline, the fraction of calls slower than x
    (log-log, so p99 and p99.9 are the crossings of the 1e-2 and 1e-3 lines), with the budget marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("needs matplotlib (pip install 'kelly-tc[plot]')", where="--plot") from None
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for entry in result.entries:
        samples = np.sort(entry.samples) * 1e6
        slower = 1.0 - np.arange(samples.size) / samples.size  # 1 ... 1/n
        axes.step(samples, slower, where="post", label=entry.name, linewidth=2.2 if entry is result.pipeline else 1.4)
    if result.budget.latency is not None:
        axes.axvline(result.budget.latency * 1e6, color="red", linestyle="--", label=f"budget ({result.budget.statistic})")
    for level, label in ((1e-2, "p99"), (1e-3, "p99.9")):
        axes.axhline(level, color="grey", linewidth=0.6, linestyle=":")
        axes.annotate(label, (1.0, level), xycoords=("axes fraction", "data"), fontsize="x-small", color="grey",
                      xytext=(2, 0), textcoords="offset points", va="center")
    axes.set_xscale("log")
    axes.set_yscale("log")
    block = result.settings.get("block", 1)
    unit = "frame" if block == 1 else f"block of {block} frames"
    axes.set_xlabel(f"latency per {unit} (us)")
    axes.set_ylabel("fraction of calls slower")
    axes.set_title(f"kelly-tc bench: {result.settings['frames']} frames, one call per {unit}")
    axes.legend(loc="upper right", fontsize="small")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
    return Path(path)
