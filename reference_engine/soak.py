"""Soak test: stream a long run of frames through each recurrent model and watch what drifts.

    python -m reference_engine.soak                          # 10^6 frames per model, table on stdout
    python -m reference_engine.soak --frames 100000 --json soak.json

Models (seeded random weights, PyTorch's initialisation ranges, ``reference_engine.synthetic``): an LSTM
and a GRU of odd sizes, and the five Kelly model shapes of ``toolchain/kelly/spec.py``. Each engine is
reset once and fed ``--frames`` frames of fresh standard-normal input, in chunks through
``Engine.run`` (state carried across chunks, as a plugin's callback carries it across buffers).

Checked per model (exit 1 if any fails):

- **finite**: every output value of every frame is finite;
- **bounded state**: the largest ``|state|`` (recurrent h and c, sampled after every chunk) in the last
  quarter of the run is at most ``STATE_GROWTH`` times the largest in the first quarter after warm-up,
  i.e. it does not drift upwards (an LSTM cell state can grow by 1 per frame in principle; a healthy
  one saturates);
- **flat memory**: the resident set (Linux ``/proc/self/statm``) after the run is within
  ``RSS_SLACK_BYTES`` of what it was after the first chunk (the engine allocates nothing per frame).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from reference_engine import synthetic
from reference_engine.model import Engine
from toolchain.layers import Model

CHUNK_FRAMES = 4096
#: Frames before the state statistics start (the state leaves zero and settles).
WARMUP_FRAMES = 10_000
#: Fewest frames for which each quarter after warm-up holds at least one chunk boundary (a state sample).
MIN_FRAMES = WARMUP_FRAMES + 4 * CHUNK_FRAMES
STATE_GROWTH = 1.5
RSS_SLACK_BYTES = 4 << 20  # a few pages of allocator noise; a per-frame leak of 8 bytes over 10^6 frames is 8 MB
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class SoakResult:
    name: str
    frames: int
    seconds: float
    finite: bool
    max_abs_output: float
    state_size: int
    max_abs_state_early: float  # first quarter after warm-up
    max_abs_state_late: float  # last quarter
    rss_after_first_chunk: int
    rss_after_run: int

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    @property
    def rss_growth(self) -> int:
        return self.rss_after_run - self.rss_after_first_chunk

    @property
    def state_bounded(self) -> bool:
        return bool(np.isfinite(self.max_abs_state_late)) and self.max_abs_state_late <= STATE_GROWTH * self.max_abs_state_early + 1e-6

    @property
    def memory_flat(self) -> bool:
        return self.rss_growth <= RSS_SLACK_BYTES

    @property
    def passed(self) -> bool:
        return self.finite and self.state_bounded and self.memory_flat

    def as_dict(self) -> dict:
        return {**asdict(self), "frames_per_second": self.frames_per_second, "rss_growth": self.rss_growth,
                "state_bounded": self.state_bounded, "memory_flat": self.memory_flat, "passed": self.passed}


def resident_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


def soak_models(seed: int = 0) -> dict[str, Model]:
    """An LSTM and a GRU of odd sizes, then the five Kelly shapes, all with seeded random weights."""
    from reference_engine.synthetic import build_stack, kelly_stacks

    rng = np.random.default_rng(seed)
    models = {"lstm 7->23->5": synthetic.model(7, [synthetic.lstm(rng, 7, 23), synthetic.dense(rng, 23, 5)]),
              "gru 9->17->3": synthetic.model(9, [synthetic.gru(rng, 9, 17), synthetic.dense(rng, 17, 3, "tanh")])}
    stacks, _ = kelly_stacks()
    for name, (input_size, layers) in stacks.items():
        models[name] = build_stack(rng, input_size, layers)
    return models


def soak(engine: Engine, name: str, frames: int, seed: int = 0) -> SoakResult:
    """Stream ``frames`` standard-normal frames through ``engine`` from a reset; see the module doc."""
    rng = np.random.default_rng(seed)
    chunk = np.empty((CHUNK_FRAMES, engine.input_size), np.float32)
    quarter = max((frames - WARMUP_FRAMES) // 4, 1)
    early_end, late_start = WARMUP_FRAMES + quarter, frames - quarter
    early = late = max_output = 0.0
    finite, rss_first, done, seconds = True, None, 0, 0.0
    engine.reset()
    while done < frames:
        count = min(CHUNK_FRAMES, frames - done)
        rng.standard_normal(dtype=np.float32, out=chunk[:count])
        started = time.perf_counter()
        outputs = engine.run(chunk[:count])
        seconds += time.perf_counter() - started
        finite = finite and bool(np.all(np.isfinite(outputs)))
        max_output = max(max_output, float(np.max(np.abs(outputs))))
        state = float(np.max(np.abs(engine.state))) if engine.state.size else 0.0
        done += count
        if WARMUP_FRAMES < done <= early_end:
            early = max(early, state)
        if done >= late_start:
            late = max(late, state)
        if rss_first is None:
            rss_first = resident_bytes()
    return SoakResult(name, frames, seconds, finite, max_output, int(engine.program.state_size), early, late,
                      rss_first, resident_bytes())


def run_soak(frames: int, seed: int = 0, on_model=None) -> list[SoakResult]:
    results = []
    for index, (name, model) in enumerate(soak_models(seed).items()):
        if on_model:
            on_model(name)
        results.append(soak(Engine(model, name=name), name, frames, seed + index))
    return results


def render(results: list[SoakResult]):
    from rich.table import Table

    table = Table(title=f"soak: {results[0].frames:,} frames per model, one reset, standard-normal input" if results else "soak")
    for column in ("model", "frames/s", "finite", "max |out|", "state floats", "max |state| early", "max |state| late",
                   "RSS growth", ""):
        table.add_column(column, justify="left" if column in ("model", "") else "right")
    for r in results:
        table.add_row(r.name, f"{r.frames_per_second:,.0f}", "yes" if r.finite else "[red]NO[/]", f"{r.max_abs_output:.3g}",
                      f"{r.state_size:,}", f"{r.max_abs_state_early:.4g}", f"{r.max_abs_state_late:.4g}",
                      f"{r.rss_growth / 1024:+,.0f} KB", "[green]ok[/]" if r.passed else "[red]FAIL[/]")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Stream many frames through each recurrent model; check finiteness, state and memory.")
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="Also write every figure here (atomically).")
    args = parser.parse_args(argv)
    if args.frames < MIN_FRAMES:
        parser.error(f"--frames must be at least {MIN_FRAMES}")
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("soaking") as status:
        results = run_soak(args.frames, args.seed, on_model=lambda name: status.update(f"soaking {name}"))
    Console(width=max(Console().width, 150)).print(render(results))
    if args.json:
        from toolchain import atomic

        atomic.write_json(args.json, {"frames": args.frames, "seed": args.seed, "chunk_frames": CHUNK_FRAMES,
                                      "warmup_frames": WARMUP_FRAMES, "state_growth_allowed": STATE_GROWTH,
                                      "rss_slack_bytes": RSS_SLACK_BYTES, "models": [r.as_dict() for r in results]})
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
