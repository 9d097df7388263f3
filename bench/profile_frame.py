"""Where one frame's time goes, per model: the Python-side call cost vs the compiled compute, and the
compute split by layer.

    python -m bench.profile_frame            # writes bench/results/profile_frame.{json,md}

- ``forward p50``: one ``Engine.forward`` call per frame, timed one by one (what a Python caller pays);
- ``compute``: time per frame of ``Engine.run`` (median over 20-frame calls, so no Python per frame);
- ``call overhead`` = forward - compute: the input check, the numpy copy of the frame into the
  engine's input row and the jump into compiled code; also measured alone on a one-value model;
- per layer: each layer alone in its own engine, ``run`` per frame (the sum can differ from the whole
  model's compute: layers share caches differently alone).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.models import benchmark_models
from reference_engine import synthetic
from reference_engine.benchmark import compute_seconds, latency_statistics, time_frames
from reference_engine.model import Engine
from reference_engine.program import describe
from toolchain import atomic
from toolchain.layers import Model

RESULTS = Path(__file__).resolve().parent / "results"


def forward_p50(engine: Engine, frames: np.ndarray) -> float:
    forward = engine.forward
    time_frames(lambda t: forward(frames[t]), 500)
    return latency_statistics(time_frames(lambda t: forward(frames[t]), len(frames)))["p50"]


def profile(model: Model, frames: int, rng) -> dict:
    inputs = rng.standard_normal((frames, model.input_size)).astype(np.float32)
    engine = Engine(model)
    layers, size = [], model.input_size
    for layer in model.layers:
        alone = Engine(Model(layer.in_size, [layer]))
        layers.append({"layer": describe(layer), "compute_us": compute_seconds(alone, rng.standard_normal((frames, layer.in_size)).astype(np.float32)) * 1e6})
    forward, compute = forward_p50(engine, inputs) * 1e6, compute_seconds(engine, inputs) * 1e6
    return {"forward_p50_us": forward, "compute_us": compute, "call_overhead_us": forward - compute, "layers": layers}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_frame", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    models, _, _ = benchmark_models()
    trivial = Engine(synthetic.model(1, [synthetic.activation(1, "relu")]))
    overhead = forward_p50(trivial, rng.standard_normal((arguments.frames, 1)).astype(np.float32)) * 1e6
    results = {name: profile(model, arguments.frames, rng) for name, model in models.items()}
    lines = ["# Where a frame's time goes (engine)", "",
             f"Call overhead alone (forward on a one-value relu model, p50): {overhead:.2f} us.", "",
             "| model | forward p50 | compute | call overhead | compute by layer (each alone) |", "|---|---:|---:|---:|---|"]
    for name, result in results.items():
        split = ", ".join(f"{layer['layer']} {layer['compute_us']:.2f}" for layer in result["layers"])
        lines.append(f"| {name} | {result['forward_p50_us']:.2f} us | {result['compute_us']:.2f} us | "
                     f"{result['call_overhead_us']:.2f} us | {split} |")
    arguments.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(arguments.out / "profile_frame.json", {"trivial_forward_p50_us": overhead, "models": results})
    atomic.write_text(arguments.out / "profile_frame.md", "\n".join(lines) + "\n")
    Console(width=200).print("\n".join(lines))


if __name__ == "__main__":
    main()
