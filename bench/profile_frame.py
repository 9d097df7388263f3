"""Where one frame's time goes, per model: the Python-side call cost vs the compiled compute, the fixed
cost of walking the program, and the compute split by layer -- at block 1 and at block 64.

    python -m bench.profile_frame            # writes bench/results/profile_frame.{json,md}

- ``forward p50``: one ``Engine.forward`` call per frame, timed one by one (what a single-frame caller pays);
- ``block 64 p50/frame``: one ``Engine.process`` call per block of 64 frames, p50 / 64 (a plugin's callback);
- ``table program @64``: the same for ``Engine(model, specialised=False)`` where the model runs a specialised
  program (``reference_engine/specialise.py``: a per-sample model), so the two programs sit side by side;
- ``call overhead`` = forward - block-64 per-frame cost: the input check, the numpy copy of the frame into
  the engine's input row and the jump into compiled code, paid once per call;
- ``program walk``: the block-64 per-frame cost of a one-value relu model (a frame that computes nothing:
  the frame copy, the table walk, one row's dispatch, the output copy);
- per layer: each layer alone in its own engine at block 64, per frame, minus nothing (the sum can differ
  from the whole model's: layers share caches differently alone, and each alone pays the walk once).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.models import benchmark_models
from reference_engine import specialise, synthetic
from reference_engine.benchmark import latency_statistics, time_frames
from reference_engine.model import Engine
from reference_engine.program import describe
from toolchain import atomic
from toolchain.layers import Model

RESULTS = Path(__file__).resolve().parent / "results"
BLOCK = 64


def forward_p50(engine: Engine, frames: np.ndarray) -> float:
    forward = engine.forward
    rows = list(frames)
    time_frames(lambda t: forward(rows[t]), min(500, len(rows)))
    return latency_statistics(time_frames(lambda t: forward(rows[t]), len(rows)))["p50"]


def block_p50_per_frame(engine: Engine, frames: np.ndarray, block: int = BLOCK) -> float:
    engine.prepare(block)
    pieces = [frames[start:start + block] for start in range(0, len(frames) - block + 1, block)]
    process = engine.process
    time_frames(lambda t: process(pieces[t % len(pieces)]), 20)
    return latency_statistics(time_frames(lambda t: process(pieces[t]), len(pieces)))["p50"] / block


def profile(model: Model, frames: int, rng) -> dict:
    inputs = rng.standard_normal((frames, model.input_size)).astype(np.float32)
    engine = Engine(model)
    layers = []
    for layer in model.layers:
        alone = Engine(Model(layer.in_size, [layer]))
        x = rng.standard_normal((frames, layer.in_size)).astype(np.float32)
        layers.append({"layer": describe(layer), "block_us_per_frame": block_p50_per_frame(alone, x) * 1e6})
    forward, blocked = forward_p50(engine, inputs) * 1e6, block_p50_per_frame(engine, inputs) * 1e6
    table = (block_p50_per_frame(Engine(model, specialised=False), inputs) * 1e6
             if specialise.specialisable(engine.program) else None)
    return {"forward_p50_us": forward, "block_p50_us_per_frame": blocked, "call_overhead_us": forward - blocked,
            "table_program_block_p50_us_per_frame": table, "layers": layers}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_frame", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=6400)
    parser.add_argument("--out", type=Path, default=RESULTS)
    arguments = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    models, _, _ = benchmark_models()
    trivial = synthetic.model(1, [synthetic.activation(1, "relu")])
    ones = rng.standard_normal((arguments.frames, 1)).astype(np.float32)
    overhead = forward_p50(Engine(trivial), ones) * 1e6
    walk = block_p50_per_frame(Engine(trivial), ones) * 1e6
    results = {name: profile(model, arguments.frames, rng) for name, model in models.items()}
    lines = ["# Where a frame's time goes (engine)", "",
             f"One-value relu model: forward p50 {overhead:.2f} us (the cost of one call from Python); at block {BLOCK}, "
             f"{walk * 1e3:.0f} ns per frame (the program walk: frame copy, table walk, one row, output copy).", "",
             f"| model | forward p50 | block {BLOCK} p50/frame | table program @{BLOCK} | call overhead "
             f"| by layer, each alone at block {BLOCK} (us/frame) |",
             "|---|---:|---:|---:|---:|---|"]
    for name, result in results.items():
        split = ", ".join(f"{layer['layer']} {layer['block_us_per_frame']:.3f}" for layer in result["layers"])
        table = result["table_program_block_p50_us_per_frame"]
        table = "-" if table is None else f"{table * 1e3:.0f} ns"
        lines.append(f"| {name} | {result['forward_p50_us']:.2f} us | {result['block_p50_us_per_frame'] * 1e3:.0f} ns | "
                     f"{table} | {result['call_overhead_us']:.2f} us | {split} |")
    arguments.out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(arguments.out / "profile_frame.json", {"block": BLOCK, "trivial_forward_p50_us": overhead,
                                                             "trivial_block_us_per_frame": walk, "models": results})
    atomic.write_text(arguments.out / "profile_frame.md", "\n".join(lines) + "\n")
    Console(width=200).print("\n".join(lines))


if __name__ == "__main__":
    main()
