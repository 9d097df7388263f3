"""File in, file out: the library functions behind ``kelly-tc quantize`` and ``kelly-tc prune``.

Each loads and checks the model, runs one pass, writes the result atomically, measures it against the
original model with onnxruntime and returns the report (also written as JSON when asked).
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Callable

import onnx

from toolchain import atomic
from toolchain.errors import InputError, UnsupportedError

from quant import calibration, granularity, int8, prune, report
from quant.onnx_graph import load_model, save_model
from quant.validate import check_finite_weights, check_inferred_sizes, check_weight_shapes

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _load(path: Path) -> onnx.ModelProto:
    model = load_model(path)
    check_weight_shapes(model, file=path)
    check_finite_weights(model, file=path)
    check_inferred_sizes(model, file=path)
    return model


def _samples(model: onnx.ModelProto, calibration_path: Path | None) -> tuple[list, str]:
    if calibration_path is not None:
        samples = calibration.load_samples(calibration_path, model)
        return samples, f"{calibration_path} ({len(samples)} samples)"
    samples = calibration.random_samples(model)
    return samples, f"seeded standard normal (seed 0, {len(samples)} samples)"


def _write_report(figures: dict, report_path: Path | None) -> dict:
    if report_path is not None:
        atomic.write_json(report_path, figures)
    return figures


def quantize_file(model_path: Path, output_path: Path, *, per_channel: bool = True, biases: bool = False, activations: bool = False,
                  calibration_path: Path | None = None, method: str = "minmax", percentile: float = 99.99,
                  report_path: Path | None = None, compare_dynamic: bool = True, auto: bool = False,
                  max_error_growth: float = granularity.MAX_ERROR_GROWTH, progress: Progress | None = None) -> dict:
    """Quantize ``model_path`` to INT8 (standard QDQ ONNX) at ``output_path``; return the report.

    ``auto`` chooses per weight between per-channel and per-tensor scales, and int8 or float biases
    (``quant.granularity``); ``progress`` then follows its trials (else the activation calibration)."""
    model_path, output_path = Path(model_path), Path(output_path)
    if auto and (biases or not per_channel):
        raise InputError("--auto chooses the scales and the bias format itself: drop --per-tensor / --quantize-biases")
    if auto and not max_error_growth >= 1:
        raise InputError(f"the error growth limit {max_error_growth} must be at least 1 (1.1: 10% more error than per-channel)")
    model = _load(model_path)
    samples, source = _samples(model, calibration_path)
    reference = calibration.run(model, samples, file=model_path)
    chosen = granularity.choose(model, samples, reference, max_error_growth, progress=progress) if auto else None
    if chosen is not None:
        biases = chosen.biases
    result = int8.quantize_weights(model, per_channel, biases, chosen.per_tensor if chosen else frozenset(),
                                   chosen.grouped if chosen else None, chosen.bias_bits if chosen else 8)
    if activations:
        tensors = int8.activation_tensors(model)
        ranges = calibration.collect_ranges(model, samples, tensors, method, percentile, progress)
        int8.add_activation_qdq(result, ranges)
    save_model(result.model, output_path)
    quantized = calibration.run(result.model, samples, file=output_path)
    before, after = report.size_figures(model), report.size_figures(result.model, output_path)
    figures = {
        "model": str(model_path),
        "output": str(output_path),
        "weights": _granularity_label(per_channel, chosen),
        "biases": f"int{chosen.bias_bits if chosen else 8} symmetric per tensor" if biases else "float",
        "activations": {"method": method, "percentile": percentile if method == "percentile" else None,
                        "tensors": {k: {"scale": s, "zero_point": z} for k, (s, z) in result.activations.items()}}
                       if activations else None,
        "opset": {"before": result.opset_before, "after": result.opset_after},
        "input": source,
        "size": {"float": before, "int8": after, "ratio": report.ratios(before, after)},
        "accuracy": report.output_errors(reference, quantized),
        # the same model in a default onnxruntime session, whose QDQ fusions also quantize activations
        "accuracy_onnxruntime_fused": report.output_errors(reference, calibration.run(result.model, samples, fused=True)),
        "quantized_tensors": [vars(record) for record in result.weights],
    }
    if chosen is not None:
        figures["granularity"] = chosen.to_json()
    if compare_dynamic:
        figures["onnxruntime_quantize_dynamic"] = report.ort_dynamic(model_path, samples, reference, per_channel)
    return _write_report(figures, report_path)


def _granularity_label(per_channel: bool, chosen: granularity.Granularity | None) -> str:
    if chosen is not None:
        grouped = f", grouped scales for {len(chosen.grouped)}" if chosen.grouped else ""
        weights = sum(1 for trial in chosen.trials if trial["change"].startswith("per-tensor "))
        return (f"int8 symmetric, auto: per output channel, one scale per tensor for {len(chosen.per_tensor)} of "
                f"{weights} weights{grouped} (error/signal within {chosen.budget['error_to_signal']:.3g})")
    return f"int8 symmetric, {'per output channel (per gate row for LSTM/GRU)' if per_channel else 'per tensor'}"


def prune_file(model_path: Path, output_path: Path, *, amount: float = 0.5, structured: bool = True,
               criterion: str = "l2", calibration_path: Path | None = None, report_path: Path | None = None,
               latency: bool = True, finetune: bool = False, finetune_epochs: int = 4,
               datasets_dir: str | None = None, reporter=None) -> dict:
    """Prune ``model_path`` (structured by default) to ``output_path``; return the report.

    ``finetune`` (structured, Kelly models) then trains the pruned model on the Kelly data
    (``quant.finetune``) and writes that to ``output_path`` instead."""
    model_path, output_path = Path(model_path), Path(output_path)
    if finetune and not structured:
        raise UnsupportedError("--finetune applies to structured pruning (unstructured zeros would grow back)")
    prune.check_amount(amount)
    model = _load(model_path)
    samples, source = _samples(model, calibration_path)
    reference = calibration.run(model, samples, file=model_path)
    result = prune.structured_prune(model, amount, criterion) if structured else prune.unstructured_prune(model, amount)
    save_model(result.model, output_path)
    pruned = calibration.run(result.model, samples, file=output_path)
    tuned = None
    if finetune:
        from quant.finetune import finetune_file

        tuned = finetune_file(model_path, output_path, output_path, finetune_epochs, datasets_dir, reporter)
        tuned["accuracy_before_finetune"] = report.output_errors(reference, pruned)
        result.model = load_model(output_path)
        pruned = calibration.run(result.model, calibration.rename_inputs(samples, result.model), file=output_path)
        pruned = [dict(zip(r.keys(), p.values())) for r, p in zip(reference, pruned)]  # output names by position
    before, after = report.size_figures(model), report.size_figures(result.model, output_path)
    figures = {
        "model": str(model_path),
        "output": str(output_path),
        "method": f"structured, {criterion} norm of incoming x outgoing weights per unit" if structured
                  else "unstructured magnitude (per tensor; shapes unchanged, no speed-up on a dense engine)",
        "amount": amount,
        "input": source,
        "size": {"original": before, "pruned": after, "ratio": report.ratios(before, after)},
        "accuracy": report.output_errors(reference, pruned),
    }
    if structured:
        figures["pruned_layers"] = result.pruned
        figures["kept_layers"] = result.skipped
    else:
        zeros = sum(z for z, _ in result.sparsity.values())
        values = sum(n for _, n in result.sparsity.values())
        figures["sparsity"] = {"overall": zeros / values if values else 0.0,
                               "per_tensor": {name: z / n if n else 0.0 for name, (z, n) in result.sparsity.items()}}
    if tuned is not None:
        figures["finetune"] = tuned
    if latency and structured:
        figures["latency"] = _latency_ratio(model, output_path)
    return _write_report(figures, report_path)



def _latency_ratio(model: onnx.ModelProto, output_path: Path) -> dict:
    """Per-frame latency of both models in the reference engine, and pruned / original."""
    with tempfile.TemporaryDirectory(prefix="kelly-tc-prune-") as folder:
        original_path = Path(folder) / "original.onnx"
        onnx.save(model, str(original_path))  # self-contained copy (the input may use external data)
        engines = [report.build_engine(original_path), report.build_engine(output_path)]
    reasons = [e for e in engines if isinstance(e, str)]
    if reasons:
        return {"status": "unavailable", "reason": reasons[0]}
    original, pruned = report.time_engines(engines)
    return {"original": original, "pruned": pruned, "ratio": pruned["seconds_per_frame"] / original["seconds_per_frame"],
            "ratio_per_call": pruned["seconds_per_call"] / original["seconds_per_call"]}
