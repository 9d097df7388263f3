"""``--auto``: per weight, one scale per tensor instead of per channel where accuracy allows, and int8 biases.

Per-channel INT8 stores one float32 scale per output row next to the int8 values, and the biases stay
float32. On the small Kelly models (40-unit LSTMs) those are ~10% of the INT8 bytes, which keeps
them at 0.27-0.29x of float. A scale per tensor costs accuracy only where a tensor's rows differ a
lot in magnitude -- which is measurable, so this module measures it instead of guessing:

1. the baseline is the default form (per-channel weights, float biases) and its error-to-signal ``e0``
   against the float model on the calibration samples (onnxruntime, ``quant.report``);
2. the budget: error-to-signal at most ``max_error_growth * e0`` and cosine at least ``min_cosine``;
3. int8 biases (per tensor) are taken if the model stays within budget;
4. then each per-channel weight, the one with the most rows (most scales saved) first, switches to one
   scale per tensor if the model *with every switch so far* stays within budget.

The choice is made on the calibration samples; the report's accuracy is measured on the same ones,
so pass representative input (``--calibration``), not a single sequence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import onnx

from quant import calibration, int8, report

#: Default budget: the auto form may have at most 10% more error-to-signal than per-channel INT8,
#: and must keep the issue's accuracy target (cosine >= 0.999) in any case.
MAX_ERROR_GROWTH, MIN_COSINE = 1.1, 0.999


@dataclass
class Granularity:
    """The chosen form: int8 biases or not, the weights quantized per tensor, and every trial measured."""

    biases: bool
    per_tensor: frozenset[str]
    baseline: dict  # worst-output figures of per-channel INT8 with float biases
    budget: dict  # {"error_to_signal": ..., "cosine": ...}
    trials: list[dict] = field(default_factory=list)  # {"change", "accepted", "error_to_signal", "cosine"}

    def to_json(self) -> dict:
        return {"mode": "auto", "biases": "int8 per tensor" if self.biases else "float",
                "per_tensor": sorted(self.per_tensor), "baseline_per_channel": self.baseline,
                "budget": self.budget, "trials": self.trials}


def choose(model: onnx.ModelProto, samples: list, reference: list[dict], max_error_growth: float = MAX_ERROR_GROWTH,
           min_cosine: float = MIN_COSINE, progress: Callable[[int, int], None] | None = None) -> Granularity:
    """Search the INT8 form of ``model`` as in the module docstring; ``reference`` is the float model's
    outputs on ``samples``."""
    first = int8.quantize_weights(model, True, False)
    candidates = sorted((w for w in first.weights if w.axis is not None), key=lambda w: -w.shape[w.axis])
    runs = {"done": 0, "total": 2 + len(candidates)}

    def measure(biases: bool, per_tensor: frozenset[str]) -> dict:
        quantized = int8.quantize_weights(model, True, biases, per_tensor).model
        figures = report.worst(report.output_errors(reference, calibration.run(quantized, samples)))
        runs["done"] += 1
        if progress:
            progress(runs["done"], runs["total"])
        return figures

    baseline = measure(False, frozenset())
    budget = {"error_to_signal": max_error_growth * baseline["error_to_signal"], "cosine": min_cosine}
    chosen = Granularity(False, frozenset(), baseline, budget)
    steps = [("int8 biases", True, frozenset())] + [(f"per-tensor {w.name}", None, frozenset({w.name})) for w in candidates]
    for label, biases, names in steps:
        trial_biases = chosen.biases if biases is None else biases
        figures = measure(trial_biases, chosen.per_tensor | names)
        accepted = figures["error_to_signal"] <= budget["error_to_signal"] and figures["cosine"] >= min_cosine
        if accepted:
            chosen.biases, chosen.per_tensor = trial_biases, chosen.per_tensor | names
        chosen.trials.append({"change": label, "accepted": accepted, "error_to_signal": figures["error_to_signal"],
                              "cosine": figures["cosine"]})
    return chosen
