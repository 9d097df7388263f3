"""INT8 against float on the five Kelly shapes: engine weight bytes, latency and accuracy, in one run.

    python -m bench.int8_kelly            # writes bench/results/int8_kelly.{json,md}

Variants of each model (seeded random weights, the shapes of ``bench/models.py``):

- ``float``: the float kernels;
- ``int8 per-row``: ``quant.int8_json.quantize_model`` (one scale per output row / gate row, float biases:
  what ``kelly-tc convert --int8`` writes for a float model);
- ``int8 per-tensor``: one scale per matrix and int8 biases (``quant.int8_json.per_tensor_model``: what
  ``kelly-tc quantize --per-tensor --quantize-biases``, or ``--auto`` where it accepts them, bakes in), stored
  compactly by the engine. Trained models decide with ``--auto`` whether the accuracy holds; on random
  weights the accuracy figures below only say how much per-tensor costs on these shapes.

Latency: per frame, in blocks of 64 (``Engine.process``) and one ``forward`` call per frame: the median
of each round, rounds alternating between the variants (a noisy neighbour hits all alike), best round kept. Accuracy: against the
float model on 2,000 seeded standard-normal frames (cosine, error-to-signal = RMS error / RMS output).
GB/s: weight bytes / block-64 per-frame time (each frame reads every weight once).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.models import benchmark_models
from quant.int8_json import per_tensor_model, quantize_model
from reference_engine.benchmark import latency_statistics, machine, time_frames
from reference_engine.model import Engine
from toolchain import atomic

RESULTS = Path(__file__).resolve().parent / "results"
BLOCK = 64


def variants(model) -> dict:
    return {"float": model, "int8 per-row": quantize_model(model), "int8 per-tensor": quantize_model(per_tensor_model(model, True))}


def accuracy(engine: Engine, reference: np.ndarray, frames: np.ndarray) -> dict:
    engine.reset()
    outputs = engine.run(frames).astype(np.float64)
    error = outputs - reference
    cosine = float(np.dot(outputs.ravel(), reference.ravel()) / (np.linalg.norm(outputs) * np.linalg.norm(reference)))
    return {"cosine": cosine, "error_to_signal": float(np.sqrt(np.mean(error ** 2)) / np.sqrt(np.mean(reference ** 2))),
            "max_abs": float(np.abs(error).max())}


def timings(engines: dict[str, Engine], frames: np.ndarray, rounds: int) -> dict[str, dict]:
    blocks = [frames[i:i + BLOCK] for i in range(0, len(frames) - BLOCK + 1, BLOCK)]
    samples = {name: {"block": [], "forward": []} for name in engines}
    for engine in engines.values():
        engine.prepare(BLOCK)
    for _ in range(rounds):
        for name, engine in engines.items():
            process, forward = engine.process, engine.forward
            engine.reset()
            time_frames(lambda t: process(blocks[t]), 4)
            samples[name]["block"].append(time_frames(lambda t: process(blocks[t]), len(blocks)) / BLOCK)
            rows = list(frames[:2000])
            samples[name]["forward"].append(time_frames(lambda t: forward(rows[t]), len(rows)))
    # The best round's median: on a shared machine a block of a large model (64 x 27 us) is often preempted,
    # which would charge another process's time slice to the block; the best round is the least disturbed.
    return {name: {kind: min(latency_statistics(part)["p50"] for part in parts) for kind, parts in figures.items()}
            for name, figures in samples.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.int8_kelly", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=6400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    models, kelly, source = benchmark_models()
    rng = np.random.default_rng(0)
    rows = {}
    for name in kelly:
        forms = variants(models[name])
        engines = {label: Engine(form) for label, form in forms.items()}
        frames = rng.standard_normal((arguments.frames, models[name].input_size)).astype(np.float32)
        reference = engines["float"].run(frames[:2000]).astype(np.float64)
        times = timings(engines, frames, arguments.rounds)
        base = engines["float"].memory().weight_bytes
        rows[name] = {}
        for label, engine in engines.items():
            weight_bytes = engine.memory().weight_bytes
            rows[name][label] = {"weight_bytes": weight_bytes, "bytes_ratio": weight_bytes / base,
                                 "block64_us_per_frame": times[label]["block"] * 1e6, "forward_us": times[label]["forward"] * 1e6,
                                 "latency_ratio_block64": times[label]["block"] / times["float"]["block"],
                                 "latency_ratio_forward": times[label]["forward"] / times["float"]["forward"],
                                 "gb_per_s": weight_bytes / times[label]["block"] / 1e9,
                                 **accuracy(engine, reference, frames[:2000])}
    lines = ["# INT8 vs float on the Kelly shapes (engine)", "",
             f"Kelly shapes from {source}, seeded random weights; {arguments.frames} frames, {arguments.rounds} rounds "
             f"alternating between variants; machine load average {machine()['load_average_1_5_15min']}.", "",
             "| model | variant | weight bytes | x float | block 64 us/frame | x float | forward us | x float | GB/s | cosine | error/signal |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, forms in rows.items():
        for label, r in forms.items():
            lines.append(f"| {name} | {label} | {r['weight_bytes']:,} | {r['bytes_ratio']:.3f} | {r['block64_us_per_frame']:.2f} | "
                         f"{r['latency_ratio_block64']:.2f} | {r['forward_us']:.2f} | {r['latency_ratio_forward']:.2f} | "
                         f"{r['gb_per_s']:.1f} | {r['cosine']:.6f} | {r['error_to_signal']:.2g} |")
    arguments.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(arguments.out / "int8_kelly.json", {"tool": "bench.int8_kelly", "frames": arguments.frames,
                                                          "rounds": arguments.rounds, "machine": machine(), "models": rows})
    atomic.write_text(arguments.out / "int8_kelly.md", "\n".join(lines) + "\n")
    Console(width=200).print("\n".join(lines))


if __name__ == "__main__":
    main()
