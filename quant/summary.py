"""Float, INT8, pruned and pruned+INT8 forms of one model side by side: bytes, accuracy, latency.

For ``kelly-tc pipeline`` and ``bench/compression.py``. Every variant is written as ONNX (accuracy
against the float model through onnxruntime, ONNX semantics) and converted for the reference engine
(the float JSON, or the INT8 JSON for the INT8 variants), whose resident weight bytes and per-frame
latency (compiled frame loop, measured round-robin: ``report.time_engines``) are measured.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from toolchain.errors import UnsupportedError

from quant import calibration, prune, report
from quant.onnx_graph import load_model, save_model

VARIANTS = ("float", "int8", "pruned", "pruned+int8")


def compare_variants(onnx_path: Path, samples: list | None = None, amount: float = 0.5,
                     finetuned: Path | None = None) -> dict:
    """The four variants of ``onnx_path`` (plus ``pruned+finetune`` and its INT8 form when a fine-tuned
    pruned model is given), each with ONNX weight bytes, accuracy against float and engine figures."""
    model = load_model(onnx_path)
    samples = samples or calibration.random_samples(model)
    reference = calibration.run(model, samples)
    pruned = prune.structured_prune(model, amount).model
    from quant.variants import auto_int8  # the pipeline's INT8 form: --auto

    forms = {"float": model, "int8": auto_int8(model, samples)[0], "pruned": pruned, "pruned+int8": auto_int8(pruned, samples)[0]}
    if finetuned is not None:
        tuned = load_model(finetuned)
        forms["pruned+finetune"], forms["pruned+finetune+int8"] = tuned, auto_int8(tuned, samples)[0]
    rows, engines = {}, []
    with tempfile.TemporaryDirectory(prefix="kelly-tc-variants-") as folder:
        for name, form in forms.items():
            path = save_model(form, Path(folder) / f"{name.replace('+', '_')}.onnx")
            outputs = calibration.run(form, calibration.rename_inputs(samples, form))
            errors = report.worst(report.output_errors(reference, [dict(zip(r, o.values())) for r, o in zip(reference, outputs)]))
            engine = report.build_engine(path, quantized=name.endswith("int8"))
            if isinstance(engine, str):
                raise UnsupportedError(f"{name}: {engine}", file=onnx_path)
            rows[name] = {**report.size_figures(form, path), **errors, "engine_weight_bytes": engine.memory().weight_bytes}
            engines.append(engine)
    for row, timing in zip(rows.values(), report.time_engines(engines)):
        row["seconds_per_frame"] = timing["seconds_per_frame"]
    base = rows["float"]
    for row in rows.values():
        row["engine_weight_ratio"] = row["engine_weight_bytes"] / base["engine_weight_bytes"]
        row["latency_ratio"] = row["seconds_per_frame"] / base["seconds_per_frame"]
        row["parameter_ratio"] = row["parameters"] / base["parameters"]
    return rows

