"""Feature-store throughput on this machine, what dominates a file's cost, and resume after a kill.

    python -m bench.scale [--lakh 60] [--groove 60] [--seconds 20] [--out bench/results]

Generates a synthetic corpus in the Lakh and Groove layouts (``toolchain.kelly.synthetic_corpus``), then:
1. runs ``kelly-tc features`` on it with a local Dask cluster of 1 and of 2 worker processes (files/s,
   wall time including the cluster's start);
2. times the stages of one file's task in this process over a sample of Lakh-layout files: reading the
   MIDI, the label streams, rendering audio (fluidsynth), log-mel features, writing the shard;
3. kills a ``features`` run half-way (SIGKILL) and measures the re-run: shards kept vs recomputed, time.
Writes ``scale.json`` and ``scale.md`` (tables) under ``--out``; docs/SCALE.md quotes them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from toolchain import atomic

REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
#: All of Lakh MIDI (lmd_full), for the projection.
LAKH_FILES = 176_581


def run_features(corpus: Path, store: Path, workers: int) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "toolchain.cli", "features", "--datasets-dir", str(corpus),
                             "--store", str(store), "--workers", str(workers)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"features failed: {result.stderr[-500:]}")
    return time.perf_counter() - started, result.stdout.strip().splitlines()[0]


def stage_times(corpus: Path, sample: int, max_seconds: float) -> dict[str, float]:
    """Mean seconds per Lakh-layout file of each stage of the feature task."""
    from toolchain.kelly.datasets.base import Piece
    from toolchain.kelly.datasets.midi_trees import midi_files, read_midi
    from toolchain.kelly.datasets.music import piece_from_midi
    from toolchain.kelly.featurize import piece_arrays
    from toolchain.kelly.features import log_mel, render_midi
    from toolchain.kelly.store import write_shard

    root = corpus / "lmd_full"
    totals = dict.fromkeys(("read MIDI", "labels", "render audio", "log-mel", "model arrays + shard write"), 0.0)
    files = midi_files(root, sample)
    with tempfile.TemporaryDirectory() as folder:
        for path in files:
            t0 = time.perf_counter()
            midi = read_midi(path)
            t1 = time.perf_counter()
            piece = piece_from_midi(midi, path.name, "lakh", max_seconds, render=False)
            t2 = time.perf_counter()
            audio = render_midi(midi, max_seconds=min(midi.get_end_time(), max_seconds))
            t3 = time.perf_counter()
            features = log_mel(audio)
            t4 = time.perf_counter()
            frames = min(len(features), len(piece.melody))
            full = Piece(piece.name, piece.source, features[:frames], piece.emotion, piece.melody[:frames],
                         piece.chords[:frames], piece.expression[:frames], piece.groove[:frames])
            write_shard(Path(folder) / f"{path.stem}.npz", [piece_arrays(full)], {})
            t5 = time.perf_counter()
            for key, value in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                totals[key] += value
    return {key: value / len(files) for key, value in totals.items()}


def killed_run(corpus: Path, store: Path, fraction: float = 0.5) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    total = sum(1 for p in corpus.rglob("*.mid"))
    process = subprocess.Popen([sys.executable, "-m", "toolchain.cli", "features", "--datasets-dir", str(corpus),
                                "--store", str(store), "--workers", "0"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while process.poll() is None and len(list((store / "shards").rglob("[!.]*.npz"))) < total * fraction:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list((store / "shards").rglob("[!.]*.npz")))
    seconds, line = run_features(corpus, store, 0)
    return {"files": total, "finished_before_kill": finished, "rerun_seconds": seconds, "rerun_summary": line}


def measure(lakh: int, groove: int, seconds: float) -> dict:
    from toolchain.kelly.synthetic_corpus import write_corpus

    report = {"machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0], "python": platform.python_version(), "platform": platform.platform()},
              "corpus": {"lakh_files": lakh, "groove_files": groove, "seconds_per_file": seconds}}
    with tempfile.TemporaryDirectory(prefix="kelly-tc-scale-") as folder:
        corpus = Path(folder) / "corpus"
        write_corpus(corpus, lakh=lakh, groove=groove, seconds=seconds)
        files = lakh + groove
        report["throughput"] = {}
        for workers in (1, 2):
            wall, line = run_features(corpus, Path(folder) / f"store{workers}", workers)
            report["throughput"][workers] = {"wall_seconds": wall, "files_per_second": files / wall, "summary": line}
            print(f"{workers} worker(s): {files / wall:.2f} files/s ({wall:.1f} s)", file=sys.stderr)
        report["stages_seconds_per_lakh_file"] = stage_times(corpus, min(lakh, 12), 60.0)
        report["resume"] = killed_run(corpus, Path(folder) / "killed")
    stages = report["stages_seconds_per_lakh_file"]
    per_file = sum(stages.values())
    # Projection: a real Lakh file is read for up to --max-seconds 60 s of music (most are longer), and the
    # per-file cost here is proportional to the seconds rendered and analysed; scale the measured
    # per-second cost to 60 s per file. Workers are assumed to scale linearly (tasks share nothing).
    per_second = per_file / seconds
    lakh_core_hours = LAKH_FILES * per_second * 60.0 / 3600
    report["projection"] = {"seconds_per_music_second": per_second, "lakh_files": LAKH_FILES,
                            "lakh_core_hours_at_60s_per_file": lakh_core_hours,
                            "hours_on_workers": {n: lakh_core_hours / n for n in (2, 16, 64, 256)}}
    return report


def markdown(report: dict) -> str:
    t = report["throughput"]
    lines = ["# Feature store throughput (`python -m bench.scale`)", "",
             f"Corpus: {report['corpus']['lakh_files']} Lakh-layout files (melody, chords, drums; rendered with "
             f"fluidsynth) + {report['corpus']['groove_files']} Groove-layout drum files, "
             f"{report['corpus']['seconds_per_file']:g} s each; {report['machine']['cpus']} cores.", "",
             "| local Dask workers | wall s (incl. cluster start) | files/s | speed-up |", "|---:|---:|---:|---:|"]
    base = t[1]["files_per_second"]
    for workers, row in t.items():
        lines.append(f"| {workers} | {row['wall_seconds']:.1f} | {row['files_per_second']:.2f} | "
                     f"{row['files_per_second'] / base:.2f}x |")
    stages = report["stages_seconds_per_lakh_file"]
    total = sum(stages.values())
    lines += ["", "Where one Lakh-layout file's time goes (one process):", "", "| stage | ms per file | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {value * 1000:.1f} | {value / total:.0%} |" for name, value in stages.items()]
    r = report["resume"]
    lines += ["", f"Resume: a run SIGKILLed after {r['finished_before_kill']} of {r['files']} shards; the re-run: "
              f"`{r['rerun_summary']}` in {r['rerun_seconds']:.1f} s.", ""]
    p = report["projection"]
    lines += [f"Projection for all of Lakh ({p['lakh_files']:,} files, 60 s read per file): "
              f"{p['seconds_per_music_second'] * 1000:.1f} ms of work per second of music -> "
              f"{p['lakh_core_hours_at_60s_per_file']:.0f} worker-hours; "
              + ", ".join(f"{hours:.1f} h on {n} workers" for n, hours in p["hours_on_workers"].items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakh", type=int, default=60)
    parser.add_argument("--groove", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = measure(args.lakh, args.groove, args.seconds)
    report = json.loads(json.dumps(report))  # integer keys -> strings, as the JSON file holds them
    report["throughput"] = {int(k): v for k, v in report["throughput"].items()}
    atomic.write_json(args.out / "scale.json", report)
    atomic.write_text(args.out / "scale.md", markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
