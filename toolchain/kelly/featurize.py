"""``kelly-tc features``: every source file -> one shard of the feature store, as tasks on Dask.

The task (:func:`build_shard`) is a plain top-level function of one :class:`Job` returning the job's
manifest record: it hashes the source, keeps an existing shard of the same source hash and feature
version, or computes the pieces with the functions in-memory training uses (``datasets.*``:
``tree_piece``, ``deam_piece``, ``corpus_piece``, ``progression_file_pieces``, ``synthetic_sequences``,
then ``base.model_arrays``) and writes the shard atomically. It shares no state, so Dask may run it on any
worker, twice, or again after a worker died; the driver alone writes the manifest.

A source that fails (corrupt MIDI, undecodable audio) becomes a ``failed`` record with its one-line
error; it never stops the run.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from toolchain.errors import InputError, KellyError
from toolchain.kelly import store as feature_store
from toolchain.kelly.spec import MODEL_NAMES

log = logging.getLogger(__name__)

SOURCES = ("datasets", "corpus", "synthetic")
#: Synthetic sequences per shard (the synthetic source has no files: it is sharded in fixed-size groups).
SYNTHETIC_GROUP = 32


@dataclass(frozen=True)
class Job:
    """One source file (or group) to turn into a shard."""

    dataset: str  # lakh, maestro, groove, deam, harmony, corpus, synthetic
    key: str  # unique source key, "<dataset>:<relative path or id>"
    path: str | None  # the file to read (None for synthetic)
    store: str
    version: str  # feature version (store.feature_version of ``settings``)
    settings: dict = field(default_factory=dict)  # max_seconds, render, seq_len, seed, ...
    params: dict = field(default_factory=dict)  # per-source extras: DEAM label, corpus index, synthetic group


# ------------------------------------------------------------------------------------------ jobs
def store_settings(max_seconds: float, seed: int, seq_len: int, render_lakh: bool) -> dict[str, Any]:
    return {"max_seconds": float(max_seconds), "seed": int(seed), "seq_len": int(seq_len), "render_lakh": bool(render_lakh),
            "synthetic_group": SYNTHETIC_GROUP}


def list_jobs(store: str | Path, settings: dict[str, Any], source: str = "datasets", datasets_dir: str | Path | None = None,
              corpus_pieces: int = 24, synthetic_groups: int = 10, max_files: int | None = None) -> list[Job]:
    """Every job of ``source``: the files of each dataset found under ``datasets_dir``, the corpus's
    chorales, or ``synthetic_groups`` groups of synthetic sequences."""
    version = feature_store.feature_version(settings)
    store = str(store)
    make = lambda dataset, key, path, **params: Job(dataset, key, path, store, version, settings, params)  # noqa: E731
    if source == "synthetic":
        return [make("synthetic", f"synthetic:group{g:05d}", None, group=g, groups=synthetic_groups) for g in range(synthetic_groups)]
    if source == "corpus":
        from toolchain.kelly.datasets.corpus import chorale_paths, corpus_available

        if not corpus_available():
            raise InputError("the corpus source needs music21, pretty_midi and librosa (pip install 'kelly-tc[audio,synth]')")
        return [make("corpus", f"corpus:{path.stem}", str(path), index=index)
                for index, path in enumerate(chorale_paths(corpus_pieces))]
    if source != "datasets":
        raise InputError(f"must be one of {', '.join(SOURCES)}, not {source!r}", where="--source")
    return _dataset_jobs(make, datasets_dir, max_files)


def _dataset_jobs(make: Callable, datasets_dir, max_files: int | None) -> list[Job]:
    from toolchain.kelly.datasets import DATASET_DIRS, find_dataset
    from toolchain.kelly.datasets.midi_trees import midi_files

    if not datasets_dir or not Path(datasets_dir).is_dir():
        raise InputError("no such folder", file=datasets_dir)
    limit = max_files or 10 ** 9
    jobs = []
    for dataset in DATASET_DIRS:
        root = find_dataset(datasets_dir, dataset)
        if root is None:
            continue
        if dataset in ("lakh", "maestro", "groove"):
            jobs += [make(dataset, f"{dataset}:{p.relative_to(root).as_posix()}", str(p), root=str(root))
                     for p in midi_files(root, limit)]
        elif dataset == "harmony":
            files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".json", ".csv") and p.is_file())[:limit]
            jobs += [make(dataset, f"harmony:{p.relative_to(root).as_posix()}", str(p)) for p in files]
        elif dataset == "deam":
            jobs += _deam_jobs(make, root, limit)
    if not jobs:
        raise InputError(f"no dataset folder found (looked for {', '.join(n for names in DATASET_DIRS.values() for n in names)})",
                         file=datasets_dir)
    return jobs


def _deam_jobs(make: Callable, root: Path, limit: int) -> list[Job]:
    """DEAM's labels live in one CSV for all songs: read once here, passed to each song's job."""
    from toolchain.kelly.datasets.base import SkipCounter
    from toolchain.kelly.datasets.deam import AUDIO_SUFFIXES, find_audio_dir, read_annotations

    labels: dict[str, tuple[float, float]] = {}
    for path in sorted(root.rglob("static_annotations*.csv")):
        try:
            labels.update(read_annotations(path, SkipCounter()))
        except (InputError, OSError, UnicodeDecodeError, csv.Error) as error:
            log.warning("%s: %s", path, getattr(error, "reason", error))
    audio_dir = find_audio_dir(root)
    jobs = []
    for song in sorted(labels, key=lambda s: (len(s), s))[:limit]:
        path = next((audio_dir / f"{song}{s}" for s in AUDIO_SUFFIXES if (audio_dir / f"{song}{s}").exists()), audio_dir / f"{song}.mp3")
        jobs.append(make("deam", f"deam:{song}", str(path), song=song, label=list(labels[song])))
    return jobs


# ------------------------------------------------------------------------------------------ the task
def source_hash(job: Job) -> str:
    """SHA-256 of the source's bytes and the job's parameters (a DEAM label or a corpus index is part of
    what the shard depends on); synthetic groups hash their parameters alone."""
    digest = hashlib.sha256(json.dumps(job.params, sort_keys=True).encode())
    if job.path is not None:
        digest.update(Path(job.path).read_bytes())
    return digest.hexdigest()


def compute_pieces(job: Job) -> list:
    """The :class:`Piece` objects (or, for synthetic groups, ready model arrays) of one job."""
    settings = job.settings
    if job.dataset in ("lakh", "maestro", "groove"):
        from toolchain.kelly.datasets.midi_trees import tree_piece

        # issue 14: every model reads audio feature frames, so MAESTRO and Groove are rendered too (a piece
        # without audio teaches no model); Lakh follows the setting (the `features` command renders it)
        render = job.dataset != "lakh" or settings["render_lakh"]
        return [tree_piece(Path(job.path), Path(job.params["root"]), job.dataset, settings["max_seconds"], render)]
    if job.dataset == "deam":
        from toolchain.kelly.datasets.deam import deam_piece

        return [deam_piece(job.params["song"], Path(job.path), tuple(job.params["label"]), settings["max_seconds"])]
    if job.dataset == "corpus":
        from toolchain.kelly.datasets.corpus import corpus_piece

        return [corpus_piece(Path(job.path), job.params["index"], settings["seed"], settings["max_seconds"])]
    if job.dataset == "harmony":
        from toolchain.kelly.datasets.base import SkipCounter
        from toolchain.kelly.datasets.progressions import progression_file_pieces

        skips = SkipCounter()
        pieces = progression_file_pieces(Path(job.path), settings["max_seconds"], skips)
        if not pieces:
            raise InputError("; ".join(skips.reasons) or "no usable progression", file=job.path)
        return pieces
    raise ValueError(f"unknown dataset {job.dataset!r}")


def piece_arrays(piece) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The frame-aligned (inputs, targets) of every model ``piece`` can train (``base.model_arrays``)."""
    from toolchain.kelly.datasets.base import model_arrays

    arrays = {}
    for name in MODEL_NAMES:
        pair = model_arrays(name, piece)
        if pair is not None and len(pair[0]):
            arrays[name] = pair
    return arrays


def synthetic_arrays(job: Job) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """One piece per synthetic group: every model's sequences of the group, as one frame stream. The group
    is a slice of the synthetic source of ``groups x SYNTHETIC_GROUP`` sequences (one seeded teacher for all
    groups, so the store holds exactly what ``train --source synthetic`` would generate)."""
    from toolchain.kelly.datasets.synthetic import synthetic_sequences

    seq_len, seed, group = job.settings["seq_len"], job.settings["seed"], job.params["group"]
    rows = slice(group * SYNTHETIC_GROUP, (group + 1) * SYNTHETIC_GROUP)
    piece = {}
    for name in MODEL_NAMES:
        data = synthetic_sequences(name, job.params["groups"] * SYNTHETIC_GROUP, seq_len, seed)
        inputs, targets = data.inputs[rows], data.targets[rows]
        piece[name] = (inputs.reshape(-1, inputs.shape[2]), targets.reshape(-1, targets.shape[2]))
    return [piece]


def build_shard(job: Job) -> dict:
    """Make (or keep) the shard of ``job``; return its manifest record as a dict. Never raises for a bad
    source: the failure is the record."""
    started = time.perf_counter()
    record = feature_store.ShardRecord(job.key, job.dataset, job.path or job.key, "", job.version, "failed")
    try:
        record.source_hash = source_hash(job)
        relpath = feature_store.shard_relpath(job.key, job.dataset, record.source_hash, job.version)
        path = Path(job.store) / relpath
        meta = feature_store.read_shard_meta(path) if path.is_file() else None
        if meta and meta.get("source_hash") == record.source_hash and meta.get("feature_version") == job.version:
            record.status, record.shard, record.pieces = "ok", relpath, meta["pieces"]
            record.shard_hash = feature_store.sha256_file(path)
            return {**asdict(record), "kept": True, "seconds": time.perf_counter() - started}
        if job.dataset == "synthetic":
            pieces = synthetic_arrays(job)
            names = [job.key]
        else:
            found = compute_pieces(job)
            pieces, names = [piece_arrays(piece) for piece in found], [piece.name for piece in found]
        record.pieces = [{"name": name, "frames": {m: int(a[0].shape[0]) for m, a in arrays.items()}}
                         for name, arrays in zip(names, pieces)]
        meta = {"key": job.key, "source_hash": record.source_hash, "feature_version": job.version, "pieces": record.pieces}
        record.shard_hash = feature_store.write_shard(path, pieces, meta)
        record.status, record.shard = "ok", relpath
    except KellyError as error:
        record.error = error.reason[:300]
    except OSError as error:
        record.error = f"cannot read: {error.strerror or error}"
    except Exception as error:  # a library's own failure on a degenerate file (mido, librosa, music21)
        record.error = f"cannot analyse ({type(error).__name__}: {str(error)[:200]})"
    record.seconds = time.perf_counter() - started
    if record.error:
        record.error = " ".join(record.error.split())  # one line in the manifest and the summary
    return {**asdict(record), "kept": False}


# ------------------------------------------------------------------------------------------ the driver
@dataclass
class FeatureSummary:
    store: str
    total: int
    done: int  # computed in this run
    kept: int  # already in the store (same source hash and feature version)
    failed: int
    seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def files_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "files_per_second": self.files_per_second}


def run_jobs(jobs: list[Job], results: Iterable[dict], store: str | Path, settings: dict,
             on_result: Callable[[dict, int, int], None] | None = None, save_every: float = 5.0) -> FeatureSummary:
    """Collect task results into the manifest (saved every ``save_every`` seconds and at the end)."""
    records, _ = feature_store.read_manifest(store)
    wanted = {job.key for job in jobs}
    started = last_save = time.perf_counter()
    done = kept = failed = 0
    failures = []
    for count, result in enumerate(results, start=1):
        was_kept = result.pop("kept", False)
        record = feature_store.ShardRecord(**result)
        records[record.key] = record
        if record.status != "ok":
            failed += 1
            failures.append(f"{record.source}: {record.error}")
        elif was_kept:
            kept += 1
        else:
            done += 1
        if on_result:
            on_result(result, count, len(jobs))
        if time.perf_counter() - last_save > save_every:
            feature_store.write_manifest(store, records, settings)
            last_save = time.perf_counter()
    records = {key: record for key, record in records.items() if key in wanted}  # sources that vanished
    feature_store.write_manifest(store, records, settings)
    return FeatureSummary(str(store), len(jobs), done, kept, failed, time.perf_counter() - started, failures)


def local_results(jobs: list[Job]) -> Iterable[dict]:
    """Run the tasks in this process, in order (tests, and ``--workers 0``)."""
    for job in jobs:
        yield build_shard(job)


def dask_results(client, jobs: list[Job]) -> Iterable[dict]:
    """Submit every job to the Dask cluster behind ``client``; yield records as tasks finish."""
    from distributed import as_completed

    futures = client.map(build_shard, jobs, pure=False, key=[f"kelly-shard-{i}" for i in range(len(jobs))])
    for future in as_completed(futures):
        yield future.result()


def start_client(scheduler: str | None, workers: int | None):
    """A Dask client: of the cluster at ``scheduler``, or of a new ``LocalCluster`` of ``workers``
    single-threaded processes (default one per core). Returns (client, cluster or None)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("`kelly-tc features` needs Dask: pip install 'kelly-tc[scale]'") from None
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as error:
            raise InputError(f"cannot reach the Dask scheduler ({str(error)[:160]})", where=scheduler) from None
    import os

    count = workers or os.cpu_count() or 1
    logging.getLogger("distributed").setLevel(logging.ERROR)  # its INFO lines would drown the progress lines
    cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster
