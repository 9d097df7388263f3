"""The full recurrent conversion matrix of issue 12, too slow for the test session (~2 s per dynamo export).

LSTM and GRU x 1 and 2 layers x bare (the RNN output is the graph output) and with a Linear head x
batch_first and time-major x the four exporter variants (legacy with and without dynamic_axes, dynamo with
and without dynamic_shapes on the time axis) x input size 1 (an amp model) and 13: each exported,
converted and checked (``kelly-tc check``'s library function, 50 frames, half-way reset) against
onnxruntime, and the engine against torch's own output. Writes bench/results/rnn_catalogue.{json,md}.

    python -m bench.rnn_catalogue [--quick]
"""
from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from toolchain import atomic

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    import torch

    from reference_engine.model import load_engine
    from tests.fixtures import torch_models
    from tests.fixtures.catalog import BATCH_FIRST, TIME_MAJOR, TIME_STEPS
    from tests.fixtures.export import export_dynamo, export_legacy
    from toolchain.check import check_files
    from toolchain.convert import convert_file

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="input size 1 only")
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for cell, layers, head, batch_first, inputs in itertools.product(("LSTM", "GRU"), (1, 2), (False, True), (True, False),
                                                                        (1,) if args.quick else (1, 13)):
            torch.manual_seed(len(rows))
            model = torch_models.LSTMAmp(cell, layers, batch_first, head, inputs).eval()
            example = torch.randn((1, TIME_STEPS, inputs) if batch_first else (TIME_STEPS, 1, inputs))
            with torch.no_grad():
                expected = model(example).numpy()
            expected = expected[0] if batch_first else expected[:, 0]
            frames = example.numpy()[0] if batch_first else example.numpy()[:, 0]
            axes = BATCH_FIRST if batch_first else TIME_MAJOR
            for exporter in ("legacy", "legacy-static", "dynamo", "dynamo-dynamic"):
                name = f"{cell}{layers}-{'head' if head else 'bare'}-{'batch_first' if batch_first else 'time_major'}-in{inputs}-{exporter}"
                path = Path(folder) / f"{name}.onnx"
                row = {"model": name}
                try:
                    if exporter.startswith("legacy"):
                        export_legacy(model, example, path, axes if exporter == "legacy" else None)
                    else:
                        export_dynamo(model, example, path, time_axis=(1 if batch_first else 0) if exporter == "dynamo-dynamic" else None)
                    convert_file(path, path.with_suffix(".json"))
                    report = check_files(path, path.with_suffix(".json"), frames=50)
                    engine = load_engine(path.with_suffix(".json"))
                    engine.reset()
                    ours = np.stack([engine.forward(np.ascontiguousarray(f)).copy() for f in frames])
                    row.update(status="ok" if report.passed else "check failed", vs_onnxruntime=report.worst_abs_error,
                               vs_torch=float(np.abs(ours - expected).max()),
                               fixed_time=report.chunk)  # None: the exported time axis really is variable
                except Exception as error:  # a refusal is a result here: recorded, not raised
                    row.update(status="refused", reason=str(error).replace(f"{path}: ", "")[:400])
                rows.append(row)
                print(row)
    RESULTS.mkdir(exist_ok=True)
    summary = {"seconds": time.perf_counter() - started, "rows": rows,
               "worst_vs_onnxruntime": max((r.get("vs_onnxruntime", 0.0) for r in rows), default=0.0),
               "worst_vs_torch": max((r.get("vs_torch", 0.0) for r in rows), default=0.0),
               "not_ok": [r["model"] for r in rows if r["status"] != "ok"]}
    atomic.write_text(RESULTS / "rnn_catalogue.json", json.dumps(summary, indent=1))
    lines = ["# RNN conversion matrix (python -m bench.rnn_catalogue)", "",
             f"{len(rows)} exports, {len(summary['not_ok'])} not ok; worst max abs error vs onnxruntime "
             f"{summary['worst_vs_onnxruntime']:.3g}, vs torch {summary['worst_vs_torch']:.3g}; "
             f"{summary['seconds'] / 60:.0f} min", "",
             "`time axis`: `variable` when the exported model runs at any length (checked at 50 frames, half-way reset), "
             "else the only length the export accepts (checked in chunks of it). A refusal is a result: its reason is "
             "kelly-tc's one-line message.", "",
             "| model | status | time axis | vs onnxruntime | vs torch | reason |", "|---|---|---|---|---|---|"]
    for r in rows:
        axis = "-" if r["status"] == "refused" else ("variable" if r.get("fixed_time") is None else f"fixed {r['fixed_time']}")
        reason = r.get("reason", "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {r['model']} | {r['status']} | {axis} | {r.get('vs_onnxruntime', float('nan')):.3g} | "
                     f"{r.get('vs_torch', float('nan')):.3g} | {reason} |")
    atomic.write_text(RESULTS / "rnn_catalogue.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
