"""The per-sample models at block 64, in one run: the table program, the specialised program
(``reference_engine/specialise.py``) and RTNeural's ``ModelT`` (timed in C++), round after round.

    RTNEURAL_SRC=../shared/rtneural-cpp python -m bench.per_sample_speed [--rounds 5] [--frames 6400]

Prints, per model, the median over rounds of each round's p50 per frame, and the ratios to ModelT. A loaded
machine moves single timings by tens of percent: the three are timed back to back within every round so
that they see the same load, and the median of rounds is quoted. Writes nothing.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from bench.compare_runtimes import time_blocks
from bench.models import per_sample_models
from reference_engine.benchmark import latency_statistics
from reference_engine.model import Engine
from toolchain.cpp import bench as rtneural_bench

BLOCK = 64


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.per_sample_speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=6400)
    args = parser.parse_args(argv)
    source = os.environ.get("RTNEURAL_SRC")
    rng = np.random.default_rng(0)
    print(f"block {BLOCK}, {args.frames} frames per timing, {args.rounds} rounds; p50 per frame (ns), median of rounds")
    print(f"{'model':28s} {'table':>7s} {'special':>7s} {'ModelT':>7s} {'table/ModelT':>12s} {'special/ModelT':>14s}")
    for name, model in per_sample_models(np.random.default_rng(1)).items():
        inputs = rng.standard_normal((args.frames, model.input_size)).astype(np.float32)
        rounds = {key: [] for key in ("table", "special", "modelt")}
        for _ in range(args.rounds):
            # new engines every round: where their buffers land moves a frame's time (cache sets, aliasing)
            engines = {"table": Engine(model, specialised=False), "special": Engine(model)}
            for key, engine in engines.items():
                samples = time_blocks(engine, inputs, BLOCK, args.frames, 640)
                rounds[key].append(latency_statistics(samples)["p50"] / BLOCK * 1e9)
            if source:
                row = {"agreement_max_abs_error": {}, "latency_us": {}}
                rtneural_bench.add_to_row(row, model, inputs, source, BLOCK)
                rounds["modelt"].append(row["latency_us"]["rtneural-modelt"]["p50"] * 1e3)
        med = {key: float(np.median(values)) if values else float("nan") for key, values in rounds.items()}
        print(f"{name:28s} {med['table']:7.0f} {med['special']:7.0f} {med['modelt']:7.0f} "
              f"{med['table'] / med['modelt']:12.2f} {med['special'] / med['modelt']:14.2f}   "
              f"rounds: {', '.join(f'{k}=' + '/'.join(f'{v:.0f}' for v in vs) for k, vs in rounds.items())}", flush=True)


if __name__ == "__main__":
    main()
