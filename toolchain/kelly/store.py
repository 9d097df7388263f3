"""The feature store: one shard of training features and targets per source file, and the manifest.

Layout of a store folder::

    manifest.json                      the only index (format, version, one record per source file)
    shards/<dataset>/<name>-<source hash>-<feature version>.npz

A shard holds, for every piece of its source file (a MIDI file, a recording, one chorale, one group of
synthetic sequences) and every Kelly model the piece can train, the frame-aligned ``inputs [F, in]`` and
``targets [F, out]`` that ``datasets.base.model_arrays`` makes -- the same function in-memory training
uses, so a store trains exactly what ``kelly-tc train`` would have computed itself.

Why ``.npz`` rather than zarr: a shard is written once, whole, by one task and read whole by one
trainer, so it is one file -- atomic with temp + rename, hashed with one read, no directory of chunks
to half-write. ``np.savez`` (uncompressed) reads at disk speed with numpy alone; zarr's partial reads
and cloud back ends buy nothing at a few MB per shard.

A shard's name carries the content hash of its source and the feature-code version, so a re-run finds
the shards it can keep by name (even those a killed run finished but never recorded in the manifest),
and recomputes everything else. The manifest records each shard's SHA-256; :class:`FeatureStore`
refuses a store whose shards do not match it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from toolchain import atomic
from toolchain.errors import InputError

STORE_FORMAT = "kelly-tc-feature-store"
STORE_VERSION = 1
MANIFEST = "manifest.json"
SHARDS = "shards"
#: The modules whose code decides the features and targets: a change to any of them is a new version.
FEATURE_MODULES = ("features.py", "spec.py", "chords.py", "datasets/base.py", "datasets/music.py",
                   "datasets/midi_trees.py", "datasets/deam.py", "datasets/corpus.py", "datasets/progressions.py",
                   "datasets/synthetic.py")
#: Refuse a manifest above this size before parsing it (a Lakh-sized manifest is ~60 MB).
MAX_MANIFEST_BYTES = 1 << 30


def feature_version(settings: dict[str, Any]) -> str:
    """A 16-hex digest of the feature code and the settings that shape a shard (max_seconds, ...)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    package = Path(__file__).resolve().parent
    for name in FEATURE_MODULES:
        path = package / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def safe_name(key: str) -> str:
    """A file-name-safe, readable form of a source key (path separators and odd characters -> '_')."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._") or "source"
    return name[-80:]


@dataclass
class ShardRecord:
    """One source file in the manifest: where its shard is, what it was made from, or why it failed."""

    key: str  # "<dataset>:<path relative to the dataset's root>" -- unique per source
    dataset: str
    source: str  # the source's path (or corpus/synthetic identifier)
    source_hash: str
    feature_version: str
    status: str  # "ok" or "failed"
    shard: str | None = None  # path relative to the store
    shard_hash: str | None = None
    pieces: list[dict] = field(default_factory=list)  # [{"name": str, "frames": {model: frames}}]
    error: str | None = None
    seconds: float = 0.0

    def frames(self, model: str) -> list[int]:
        """Frames of ``model``'s streams in each piece (0 where the piece cannot train it)."""
        return [int(piece["frames"].get(model, 0)) for piece in self.pieces]


def shard_relpath(record_key: str, dataset: str, source_hash: str, version: str) -> str:
    return f"{SHARDS}/{dataset}/{safe_name(record_key.split(':', 1)[-1])}-{source_hash[:16]}-{version}.npz"


def write_shard(path: Path, pieces: list[dict[str, tuple[np.ndarray, np.ndarray]]], meta: dict) -> str:
    """Write the per-model arrays of ``pieces`` atomically; return the file's SHA-256."""
    arrays = {"meta": np.array(json.dumps(meta, sort_keys=True))}
    for index, piece in enumerate(pieces):
        for model, (inputs, targets) in piece.items():
            arrays[f"p{index}.{model}.inputs"] = np.ascontiguousarray(inputs, np.float32)
            arrays[f"p{index}.{model}.targets"] = np.ascontiguousarray(targets, np.float32)
    with atomic.atomic_path(path, suffix=".npz") as tmp:  # ends in .npz, so numpy keeps the name
        np.savez(tmp, **arrays)
    return sha256_file(path)


def read_shard_meta(path: Path) -> dict | None:
    """The metadata a shard carries, or None if it is unreadable (a shard is then recomputed)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return json.loads(str(stored["meta"]))
    except Exception:  # a truncated or foreign file: not a shard we can keep
        return None


def read_piece(path: Path, index: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as stored:
        return stored[f"p{index}.{model}.inputs"], stored[f"p{index}.{model}.targets"]


# ------------------------------------------------------------------------------------------ manifest
def manifest_path(store: str | Path) -> Path:
    return Path(store) / MANIFEST


def write_manifest(store: str | Path, records: dict[str, ShardRecord], settings: dict[str, Any]) -> None:
    document = {"format": STORE_FORMAT, "version": STORE_VERSION, "settings": settings,
                "records": [asdict(records[key]) for key in sorted(records)]}
    atomic.write_json(manifest_path(store), document, indent=None)


def read_manifest(store: str | Path) -> tuple[dict[str, ShardRecord], dict[str, Any]]:
    """The records and settings of ``store``'s manifest; an empty store reads as no records."""
    path = manifest_path(store)
    if not path.exists():
        return {}, {}
    if not path.is_file():
        raise InputError("is not a regular file", file=path)
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise InputError(f"is larger than {MAX_MANIFEST_BYTES} bytes", file=path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InputError(f"not a readable manifest ({str(error)[:120]})", file=path) from None
    if not isinstance(document, dict) or document.get("format") != STORE_FORMAT:
        raise InputError(f"not a kelly-tc feature store manifest (format {document.get('format') if isinstance(document, dict) else None!r})", file=path)
    if document.get("version") != STORE_VERSION:
        raise InputError(f"store version {document.get('version')!r}; this kelly-tc reads version {STORE_VERSION}", file=path)
    records = {}
    for index, raw in enumerate(document.get("records", [])):
        try:
            record = ShardRecord(**raw)
        except TypeError as error:
            raise InputError(f"malformed record ({error})", file=path, where=f"records[{index}]") from None
        records[record.key] = record
    return records, document.get("settings", {})


# ------------------------------------------------------------------------------------------ reading
def is_validation(key: str, piece: int, seed: int, val_fraction: float) -> bool:
    """The train/validation split by piece: a hash of the source key, the piece index and the seed, so it
    is the same in every run, on every worker and rank, and does not move when the store grows."""
    digest = hashlib.sha256(f"{seed}:{key}:{piece}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64 < val_fraction


@dataclass(frozen=True)
class PieceRef:
    """One piece of one shard, for one model: where its arrays are and how many frames they hold."""

    shard: Path
    index: int
    frames: int
    key: str


class FeatureStore:
    """A verified store: every ``ok`` record's shard exists and has the SHA-256 the manifest records."""

    def __init__(self, path: str | Path, verify: bool = True, on_shard=None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError("no such feature store folder (make one with `kelly-tc features --store ...`)", file=self.path)
        self.records, self.settings = read_manifest(self.path)
        if not self.records:
            raise InputError("the store has no manifest or no records (run `kelly-tc features` first)", file=self.path)
        if verify:
            self.verify(on_shard)

    def verify(self, on_shard=None) -> None:
        """Check every ``ok`` shard against the manifest (``on_shard()`` ticks progress)."""
        for record in self.ok_records():
            self._verify(record)
            if on_shard:
                on_shard()

    def ok_records(self) -> list[ShardRecord]:
        return [record for key, record in sorted(self.records.items()) if record.status == "ok"]

    def _verify(self, record: ShardRecord) -> None:
        shard = self.path / (record.shard or "")
        if not record.shard or not shard.is_file():
            raise InputError(f"shard of '{record.key}' is missing ({record.shard}); re-run `kelly-tc features`",
                             file=manifest_path(self.path))
        actual = sha256_file(shard)
        if actual != record.shard_hash:
            raise InputError(f"shard {record.shard} has SHA-256 {actual[:12]}..., the manifest records "
                             f"{str(record.shard_hash)[:12]}...: the store is damaged or was changed; re-run `kelly-tc features`",
                             file=manifest_path(self.path))

    def pieces(self, model: str, seed: int, val_fraction: float) -> tuple[list[PieceRef], list[PieceRef]]:
        """(train, validation) pieces that can train ``model``, split by :func:`is_validation`; when the
        hash puts every piece on one side, the lowest-hash piece moves over so both sides exist."""
        train, validation = [], []
        for record in self.ok_records():
            for index, frames in enumerate(record.frames(model)):
                if frames > 0:
                    ref = PieceRef(self.path / record.shard, index, frames, record.key)
                    (validation if is_validation(record.key, index, seed, val_fraction) else train).append(ref)
        if train and not validation:
            validation.append(train.pop())
        elif validation and not train and len(validation) > 1:
            train.append(validation.pop())
        return train, validation

    def digest(self) -> str:
        """A digest of every shard's hash: the store's identity for checkpoint compatibility."""
        digest = hashlib.sha256()
        for record in self.ok_records():
            digest.update(f"{record.key}={record.shard_hash};".encode())
        return digest.hexdigest()


def iter_windows(refs: list[PieceRef], model: str, seq_len: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each piece's non-overlapping ``seq_len`` windows ``([N, T, in], [N, T, out])``, one piece in memory at a time."""
    from toolchain.kelly.datasets.base import windows

    for ref in refs:
        inputs, targets = read_piece(ref.shard, ref.index, model)
        x, y = windows(inputs, targets, seq_len)
        if len(x):
            yield x, y


def window_count(refs: list[PieceRef], seq_len: int) -> int:
    return sum(ref.frames // seq_len for ref in refs)


def store_size(store: str | Path) -> int:
    """Bytes of all shard files (for reports)."""
    root = Path(store) / SHARDS
    return sum(p.stat().st_size for p in root.rglob("*.npz")) if root.is_dir() else 0


def remove_stale_temporaries(store: str | Path) -> int:
    """Delete temporaries of writes a killed run left behind (``.NAME.npz.XXXX.npz``); return how many."""
    root = Path(store) / SHARDS
    removed = 0
    if root.is_dir():
        for path in root.rglob(".*.npz"):
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
    return removed
