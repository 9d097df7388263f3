"""Structured pruning of issue 11's graph models (tests/fixtures/graph_models.py, random weights, odd sizes):
parameters pruned/unpruned and the accuracy cost against the unpruned model in onnxruntime (4 seeded random
input sequences of 64 frames), then ``convert`` and ``check`` of the pruned ONNX against its JSON.

Usage: PYTHONPATH=. python bench/prune_graphs.py [--amounts 0.25,0.5] [--exporters legacy,dynamo,dynamo_dynamic] [NAME...]
Writes bench/results/prune_graphs.{md,json}.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from quant import calibration, prune, report
from quant.onnx_graph import load_model, parameter_count, save_model
from tests.fixtures import graph_models as gm
from tests.fixtures.export import export_dynamo, export_legacy
from toolchain.check import check_files
from toolchain.convert import convert_file
from toolchain.errors import KellyError
from toolchain import atomic


def export(name: str, exporter: str, folder: Path) -> Path:
    _, layout, features, _ = gm.PATTERNS[name]
    model, x, time_axis = gm.build(name), gm.example(layout, features), 1 if layout == "btf" else 2
    path = folder / f"{name}-{exporter}.onnx"
    if exporter == "legacy":
        export_legacy(model, x, path, {0: "batch", time_axis: "time"})
    else:
        export_dynamo(model, x, path, time_axis=time_axis if exporter == "dynamo_dynamic" else None)
    return path


def measure(path: Path, amount: float) -> dict:
    model = load_model(path)
    result = prune.structured_prune(model, amount)
    pruned_path = save_model(result.model, path.with_name(f"{path.stem}.p{amount}.onnx"))
    samples = calibration.random_samples(model, count=4)
    errors = report.output_errors(calibration.run(model, samples), calibration.run(result.model, samples))
    row = {"params": parameter_count(model), "params_pruned": parameter_count(result.model),
           "ratio": parameter_count(result.model) / parameter_count(model),
           "max_abs": max(e["max_abs"] for e in errors.values()),
           "error_to_signal": max(e["error_to_signal"] for e in errors.values()),
           "cosine": min(e["cosine"] for e in errors.values()),
           "joined": sorted({e["node"] for e in result.pruned if e.get("joined_with")}),
           "kept": [f"{e['node']}: {e['reason']}" for e in result.skipped]}
    try:
        convert_file(pruned_path, pruned_path.with_suffix(".json"))
        checked = check_files(pruned_path, pruned_path.with_suffix(".json"), frames=513, atol=1e-5)
        row["check"] = "passed" if checked.passed else "FAILED"
        row["check_worst"] = checked.worst_abs_error
    except KellyError as error:
        row["check"] = f"convert refused: {error.line()}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=["dense_residual", "concat_branches", "tcn", "wavenet",
                                                     "wavenet_pedalnet_slice", "simplernn_lstm_2in", "simplernn_gru_2in"])
    parser.add_argument("--amounts", default="0.25,0.5")
    parser.add_argument("--exporters", default="legacy,dynamo,dynamo_dynamic")
    args = parser.parse_args()
    folder, rows = Path(tempfile.mkdtemp(prefix="prune-graphs-")), []
    for name in args.names:
        for exporter in args.exporters.split(","):
            try:
                path = export(name, exporter, folder)
            except Exception as error:  # an exporter failure is a row, not the end of the table
                rows.append({"model": name, "exporter": exporter, "check": f"export failed: {type(error).__name__}"})
                continue
            for amount in (float(a) for a in args.amounts.split(",")):
                row = {"model": name, "exporter": exporter, "amount": amount, **measure(path, amount)}
                rows.append(row)
                print(json.dumps(row))
    lines = ["| model | exporter | amount | params pruned/unpruned | max abs error | error/signal | cosine | check (pruned ONNX vs JSON) |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "ratio" not in r:
            lines.append(f"| {r['model']} | {r['exporter']} | | | | | | {r['check']} |")
            continue
        check = r["check"] + (f" ({r['check_worst']:.1e})" if "check_worst" in r else "")
        lines.append(f"| {r['model']} | {r['exporter']} | {r['amount']} | {r['ratio']:.3f} ({r['params_pruned']}/{r['params']}) | "
                     f"{r['max_abs']:.3g} | {r['error_to_signal']:.3g} | {r['cosine']:.4f} | {check} |")
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "prune_graphs.md", "\n".join(lines) + "\n")
    atomic.write_text(out / "prune_graphs.json", json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
