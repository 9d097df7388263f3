"""``--auto``: per weight, one scale per tensor instead of per channel where accuracy allows, and int8 biases.

Per-channel INT8 stores one float32 scale per output row next to the int8 values, and the biases stay
float32. On the small Kelly models (40-unit LSTMs) those are ~10% of the INT8 bytes, which keeps
them at 0.27-0.29x of float. A scale per tensor costs accuracy only where a tensor's rows differ a
lot in magnitude -- which is measurable, so this module measures it instead of guessing:

1. the baseline is the default form (per-channel weights, float biases) and its error-to-signal ``e0``
   against the float model on the calibration samples (onnxruntime, ``quant.report``);
2. the budget: error-to-signal at most ``max_error_growth * e0`` and cosine at least ``min_cosine``;
3. int8 biases (per tensor) are taken if the model stays within budget, else biases on a 16-bit grid (half
   a float bias's bytes; trained biases span too wide a range for int8 but rarely for 16 bits);
4. then each per-channel weight, the one with the most rows (most scales saved) first, switches to one
   scale per tensor if the model *with every switch so far* stays within budget;
5. a weight that cannot go per tensor tries grouped scales, the largest group first: consecutive rows
   sharing one scale (an LSTM's or GRU's gate block, then 16, 8, 4 or 2 rows), kept at the first group
   size that stays within budget.

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
    grouped: dict[str, int] = field(default_factory=dict)  # weight -> consecutive rows per scale
    bias_bits: int = 8  # with ``biases``: 8 or 16

    def quantize(self, model: onnx.ModelProto) -> int8.QuantizeResult:
        """``model`` quantized in this form (per-channel weights except where chosen otherwise)."""
        return int8.quantize_weights(model, True, self.biases, self.per_tensor, self.grouped, self.bias_bits)

    @property
    def bias_form(self) -> str:
        return f"int{self.bias_bits}" if self.biases else "float"

    def describe(self) -> str:
        grouped = f", {len(self.grouped)} with grouped scales" if self.grouped else ""
        return f"{len(self.per_tensor)} weight(s) per tensor{grouped}, biases {self.bias_form}"

    def to_json(self) -> dict:
        return {"mode": "auto", "biases": f"{self.bias_form} per tensor" if self.biases else "float",
                "per_tensor": sorted(self.per_tensor), "grouped_rows_per_scale": dict(sorted(self.grouped.items())),
                "baseline_per_channel": self.baseline, "budget": self.budget, "trials": self.trials}


#: Gate blocks along the channel axis of a recurrent weight: RTNeural reorders an LSTM's blocks, so a group
#: must not straddle two of them (it would stop being consecutive rows in the engine).
GATES = {"LSTM": 4, "GRU": 3}


def group_sizes(rows: int, op_type: str = "") -> list[int]:
    """The group sizes tried for a weight of ``rows`` channels, largest first: the gate block of an LSTM or
    GRU (a quarter or a third of the rows), then 16, 8, 4 and 2 rows -- each dividing the block (the whole
    weight for other ops)."""
    block = rows // GATES.get(op_type, 1)
    sizes = {size for size in (block, 16, 8, 4, 2) if 1 < size < rows and block % size == 0}
    return sorted(sizes, reverse=True)


def choose(model: onnx.ModelProto, samples: list, reference: list[dict], max_error_growth: float = MAX_ERROR_GROWTH,
           min_cosine: float = MIN_COSINE, progress: Callable[[int, int], None] | None = None) -> Granularity:
    """Search the INT8 form of ``model`` as in the module docstring; ``reference`` is the float model's
    outputs on ``samples``."""
    first = int8.quantize_weights(model, True, False)
    candidates = sorted((w for w in first.weights if w.axis is not None), key=lambda w: -w.shape[w.axis])
    runs = {"done": 0, "total": 3 + len(candidates)}

    def measure(biases: bool, per_tensor: frozenset[str], grouped: dict[str, int] | None = None, bias_bits: int | None = None) -> dict:
        quantized = int8.quantize_weights(model, True, biases, per_tensor, grouped,
                                          chosen.bias_bits if bias_bits is None else bias_bits).model
        figures = report.worst(report.output_errors(reference, calibration.run(quantized, samples)))
        runs["done"] += 1
        if progress:
            progress(runs["done"], runs["total"])
        return figures

    chosen = Granularity(False, frozenset(), {}, {})
    baseline = measure(False, frozenset())
    budget = {"error_to_signal": max_error_growth * baseline["error_to_signal"], "cosine": min_cosine}
    chosen.baseline, chosen.budget = baseline, budget
    steps = [("int8 biases", True, frozenset())] + [(f"per-tensor {w.name}", None, frozenset({w.name})) for w in candidates]

    def within(figures: dict) -> bool:
        return figures["error_to_signal"] <= budget["error_to_signal"] and figures["cosine"] >= min_cosine

    def record(label: str, accepted: bool, figures: dict) -> None:
        chosen.trials.append({"change": label, "accepted": accepted, "error_to_signal": figures["error_to_signal"],
                              "cosine": figures["cosine"]})

    for label, biases, names in steps:
        trial_biases = chosen.biases if biases is None else biases
        figures = measure(trial_biases, chosen.per_tensor | names, chosen.grouped)
        accepted = within(figures)
        if accepted:
            chosen.biases, chosen.per_tensor = trial_biases, chosen.per_tensor | names
        record(label, accepted, figures)
        if not names and not accepted:  # int8 biases cost too much: a 16-bit grid
            figures = measure(True, chosen.per_tensor, chosen.grouped, 16)
            accepted = within(figures)
            record("int16 biases", accepted, figures)
            if accepted:
                chosen.biases, chosen.bias_bits = True, 16
        if accepted or not names:
            continue
        (name,) = names  # per tensor costs too much: the largest group of rows that does not
        weight = next(w for w in candidates if w.name == name)
        for size in group_sizes(weight.shape[weight.axis], weight.op_type):
            figures = measure(chosen.biases, chosen.per_tensor, {**chosen.grouped, name: size})
            accepted = within(figures)
            record(f"{size} rows per scale {name}", accepted, figures)
            if accepted:
                chosen.grouped[name] = size
                break
    return chosen
