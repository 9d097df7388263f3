"""Training data from a feature store: each model's pieces, split by piece (``store.is_validation``),
streamed as windows (``windows.StoreWindows``). The store is verified against its manifest first."""
from __future__ import annotations

from toolchain.errors import InputError
from toolchain.kelly.config import TrainConfig
from toolchain.kelly.datasets.base import ModelData, SkipCounter
from toolchain.kelly.progress import Reporter
from toolchain.kelly.store import FeatureStore
from toolchain.kelly.windows import StoreWindows


def load_store_data(config: TrainConfig, reporter: Reporter) -> tuple[dict[str, ModelData], SkipCounter]:
    """Every requested model's train/validation windows in ``config.store``, and the failed sources."""
    store = FeatureStore(config.store, verify=False)
    reporter.stage(f"verifying the feature store {config.store}", len(store.ok_records()))
    store.verify(on_shard=reporter.advance)
    skips = SkipCounter()
    for record in store.records.values():
        if record.status != "ok":
            skips.counts[record.dataset] += 1
            if len(skips.reasons) < 50:
                skips.reasons.append(f"{record.dataset}: {record.source}: {record.error}")
    result = {}
    for name in config.models:
        train, validation = store.pieces(name, config.seed, config.val_fraction)
        data = ModelData(name, StoreWindows(train, name, config.seq_len, config.buffer_pieces),
                         StoreWindows(validation, name, config.seq_len, config.buffer_pieces),
                         sorted({ref.key.split(":", 1)[0] for ref in train + validation}) or ["store"],
                         [f"{name}: {len(train)} training and {len(validation)} validation pieces from {config.store}"])
        if len(data.train) < 1 or len(data.validation) < 1:
            raise InputError(f"{name}: the store gives {len(data.train)} training and {len(data.validation)} validation "
                             f"windows of {config.seq_len} frames; need at least one of each (lower --seq-len or add sources)",
                             file=config.store)
        data.skipped = {dataset: count for dataset, count in skips.counts.items()}
        result[name] = data
    return result, skips
