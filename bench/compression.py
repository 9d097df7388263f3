"""Float / INT8 / pruned / pruned+INT8 (and fine-tuned) for the five Kelly models: size, accuracy, latency.

    python -m bench.compression MODELS_DIR [--finetune] [--epochs 4] [--amount 0.5]

``MODELS_DIR`` holds ``NAME.onnx`` from ``kelly-tc export`` (trained models). Accuracy is measured
against the float model with onnxruntime on Kelly validation inputs (the training data loader: real
datasets, else the music21 corpus, else synthetic), 8 sequences per model. Writes
``bench/results/compression.{json,md,png}`` and prints the table. Needs torch for the data (and
``--finetune``), matplotlib for the plot.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from quant.summary import compare_variants
from toolchain import atomic

RESULTS = Path(__file__).resolve().parent / "results"
SEQUENCES = 8


def kelly_samples(name: str, input_name: str) -> list[dict]:
    from toolchain.kelly.datasets import validation_samples

    return validation_samples(name, input_name, count=SEQUENCES)


def measure(models_dir: Path, amount: float, finetune: bool, epochs: int) -> dict:
    from quant.calibration import model_inputs
    from quant.onnx_graph import load_model, save_model
    from quant.prune import structured_prune

    from toolchain.kelly.spec import MODEL_NAMES

    rows = {}
    with tempfile.TemporaryDirectory(prefix="kelly-tc-compression-") as folder:
        for name in MODEL_NAMES:
            path = models_dir / f"{name}.onnx"
            samples = kelly_samples(name, model_inputs(load_model(path))[0].name)
            tuned = None
            if finetune:
                from quant.finetune import finetune_file

                tuned = Path(folder) / f"{name}.pruned.finetuned.onnx"
                pruned_path = save_model(structured_prune(load_model(path), amount).model, tuned)
                rows.setdefault("_finetune", {})[name] = finetune_file(path, pruned_path, tuned, epochs)
            rows[name] = compare_variants(path, samples, amount, tuned)
    return rows


def table(rows: dict) -> str:
    lines = ["| model | variant | params | engine weight bytes | ratio | cosine | error/signal | max abs | us/frame | latency ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, variants in rows.items():
        if name.startswith("_"):
            continue
        for variant, r in variants.items():
            lines.append(f"| {name} | {variant} | {r['parameters']:,} | {r['engine_weight_bytes']:,} | {r['engine_weight_ratio']:.3f} | "
                         f"{r['cosine']:.6f} | {r['error_to_signal']:.3g} | {r['max_abs']:.3g} | {r['seconds_per_frame'] * 1e6:.2f} | "
                         f"{r['latency_ratio']:.3f} |")
    for name, tuned in rows.get("_finetune", {}).items():
        loss = tuned["validation_loss"]
        lines.append(f"\n{name}: validation loss ({'+'.join(tuned['data'])}) unpruned {loss['unpruned']:.4g}, pruned "
                     f"{loss['pruned']:.4g}, pruned+finetune {loss['finetuned']:.4g} ({tuned['epochs']} epochs), "
                     f"predict-the-mean {loss['baseline']:.4g}")
    return "\n".join(lines)


def plot(rows: dict, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(8.5, 4.5))
    markers = {"float": "o", "int8": "s", "pruned": "^", "pruned+int8": "D", "pruned+finetune": "v", "pruned+finetune+int8": "P"}
    for index, (name, variants) in enumerate((k, v) for k, v in rows.items() if not k.startswith("_")):
        for variant, r in variants.items():
            axes.scatter(r["engine_weight_bytes"], max(r["error_to_signal"], 1e-7), color=f"C{index}",
                         marker=markers.get(variant, "x"), label=name if variant == "float" else None)
    for variant, marker in markers.items():
        axes.scatter([], [], color="grey", marker=marker, label=variant)
    axes.set(xscale="log", yscale="log", xlabel="engine weight bytes", ylabel="error / signal vs float (1e-7 = exact)",
             title="Kelly models: accuracy against size")
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    with atomic.atomic_path(path, suffix=".png") as temporary:  # atomic like every output (issue 7)
        figure.savefig(temporary, dpi=120)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models_dir", type=Path)
    parser.add_argument("--amount", type=float, default=0.5)
    parser.add_argument("--finetune", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    rows = measure(args.models_dir, args.amount, args.finetune, args.epochs)
    RESULTS.mkdir(exist_ok=True)
    atomic.write_text(RESULTS / "compression.json", json.dumps(rows, indent=2) + "\n")
    text = table(rows)
    atomic.write_text(RESULTS / "compression.md", text + "\n")
    plot(rows, RESULTS / "compression.png")
    print(text)


if __name__ == "__main__":
    main()
