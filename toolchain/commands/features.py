"""``kelly-tc features``: build (or bring up to date) a feature store with Dask, one task per source file."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer

from toolchain.cli import command
from toolchain.errors import InputError


class Progress:
    """Files done / total, files per second and ETA: a rich bar on a terminal, plain lines (every few
    seconds and at the end) when stderr is a pipe or a file."""

    def __init__(self, total: int, every: float = 2.0):
        self.total, self.every, self.started = total, every, time.perf_counter()
        self.last = 0.0
        self.bar = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeRemainingColumn

            self.bar = Bar(TextColumn("features"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=True)
            self.task = self.bar.add_task("features", total=total, rate="")
            self.bar.start()

    def __call__(self, record: dict, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else float("inf")
        if self.bar is not None:
            self.bar.update(self.task, completed=done, rate=f"{rate:.1f} files/s")
        elif done == total or elapsed - self.last >= self.every:
            self.last = elapsed
            print(f"features: {done}/{total} files, {rate:.1f} files/s, ETA {eta:.0f} s", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@command
def features(
    store: Path = typer.Option(..., "--store", help="Feature store folder (created if missing; re-runs keep what is up to date)."),
    datasets_dir: Optional[Path] = typer.Option(None, "--datasets-dir", help="Folder holding lmd_full/, maestro-v3.0.0/, groove/, DEAM/, harmony/."),
    source: Optional[str] = typer.Option(None, "--source", help="corpus (music21's chorales) or synthetic, instead of --datasets-dir."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler, e.g. tcp://host:8786."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local Dask worker processes (default: one per core; 0 = in this process)."),
    max_files: Optional[int] = typer.Option(None, "--max-files", help="At most this many files per dataset."),
    max_seconds: float = typer.Option(60.0, "--max-seconds", help="Seconds read per file."),
    corpus_pieces: int = typer.Option(24, "--corpus-pieces", help="Chorales taken with --source corpus."),
    synthetic_groups: int = typer.Option(10, "--synthetic-groups", help="Shards of 32 sequences with --source synthetic."),
    seq_len: int = typer.Option(32, "--seq-len", help="Frames per synthetic sequence (synthetic source only)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the corpus performances and synthetic data."),
):
    """Turn every source file into the five models' training features and targets, as Dask tasks."""
    from toolchain.kelly import featurize
    from toolchain.kelly.store import remove_stale_temporaries

    if (datasets_dir is None) == (source is None):
        raise InputError("give exactly one of --datasets-dir DIR or --source corpus|synthetic", where="--store")
    if source is not None and source not in ("corpus", "synthetic"):
        raise InputError(f"must be corpus or synthetic, not {source!r}", where="--source")
    for name, value, low in (("--workers", workers, 0), ("--max-files", max_files, 1), ("--corpus-pieces", corpus_pieces, 1),
                             ("--synthetic-groups", synthetic_groups, 1), ("--seq-len", seq_len, 1), ("--seed", seed, 0)):
        if value is not None and not low <= value <= 10 ** 7:
            raise InputError(f"must be between {low} and {10 ** 7}, got {value}", where=name)
    if not 0 < max_seconds <= 36000:
        raise InputError(f"must be between 0 and 36000 seconds, got {max_seconds}", where="--max-seconds")
    from toolchain import atomic

    atomic.check_folder(store, what="--store")  # a file in the way, a read-only or unwritable folder: before the work
    settings = featurize.store_settings(max_seconds, seed, seq_len, render_lakh=True)
    jobs = featurize.list_jobs(store, settings, source or "datasets", datasets_dir, corpus_pieces, synthetic_groups, max_files)
    store.mkdir(parents=True, exist_ok=True)
    stale = remove_stale_temporaries(store)
    if stale:
        print(f"removed {stale} temporary file(s) of an interrupted run", file=sys.stderr)
    client = cluster = None
    if workers != 0:
        client, cluster = featurize.start_client(scheduler, workers)
        where = f"Dask scheduler {scheduler}" if scheduler else f"local Dask cluster of {len(cluster.workers)} worker processes"
        print(f"{where}; dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
    progress = Progress(len(jobs))
    try:
        results = featurize.dask_results(client, jobs) if client else featurize.local_results(jobs)
        summary = featurize.run_jobs(jobs, results, store, settings, on_result=progress)
    finally:
        progress.close()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    print(f"{summary.store}: {summary.total} files: {summary.done} computed, {summary.kept} already up to date, "
          f"{summary.failed} failed; {summary.seconds:.1f} s ({summary.files_per_second:.2f} files/s)")
    for failure in summary.failures[:20]:
        print(f"  failed: {failure}")
    if len(summary.failures) > 20:
        print(f"  ... and {len(summary.failures) - 20} more (see {store / 'manifest.json'})")
