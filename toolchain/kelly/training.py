"""Training of the Kelly models: seeded, resumable, early-stopped on validation loss.

Per model, in ``<output>/<ModelName>/``: ``best.ckpt`` (the best weights so far), ``latest.ckpt``
(everything needed to resume: weights, optimiser, early-stopping state, history), ``history.json``,
``history.csv`` and ``loss.png``. ``<output>/training_summary.json`` holds the report.

Determinism: the initial weights come from a seed per model, and epoch ``e`` shuffles with a generator
seeded from (seed, e) -- so a run killed at any point and resumed from ``latest.ckpt`` repeats the
interrupted epoch exactly and ends with the same weights as an uninterrupted run.
Early stopping keeps the weights of the epoch with the lowest validation loss (the untrained model
counts as epoch 0) and loads them back into the model when training ends.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from toolchain import atomic
from toolchain.errors import InputError
from toolchain.kelly.checkpoint import BEST, LATEST, load_checkpoint, save_checkpoint
from toolchain.kelly.config import TrainConfig
from toolchain.kelly.datasets import load_model_data
from toolchain.kelly.datasets.base import ModelData, Sequences
from toolchain.kelly.history import plot_history, write_history
from toolchain.kelly.losses import baseline_loss, floor_loss, model_loss
from toolchain.kelly.models import KellyModel, build_model
from toolchain.kelly.progress import Reporter
from toolchain.kelly.spec import MODEL_NAMES, ModelSpec, get_spec

GRADIENT_CLIP = 1.0
#: Settings that must match for a checkpoint to be resumed (epochs and patience may grow).
RESUME_KEYS = ("seed", "learning_rate", "batch_size")


@dataclass
class ModelResult:
    name: str
    sources: list[str]
    parameters: int  # counted as in the exported RTNeural model
    torch_parameters: int
    train_sequences: int
    val_sequences: int
    epochs_run: int
    best_epoch: int
    best_val_loss: float  # re-measured on the restored best weights
    baseline_loss: float
    floor_loss: float  # loss of a perfect prediction (target entropy; 0 for mse and one-hot targets)
    stopped_early: bool
    seconds: float
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Validation loss as a fraction of the predict-the-mean baseline (< 1 = learned something)."""
        return self.best_val_loss / self.baseline_loss if self.baseline_loss > 0 else math.inf

    @property
    def gap_closed(self) -> float:
        """Share of the possible improvement over the baseline obtained: 0 = baseline, 1 = perfect."""
        room = self.baseline_loss - self.floor_loss
        return (self.baseline_loss - self.best_val_loss) / room if room > 0 else 0.0


@dataclass
class TrainReport:
    output: str
    results: dict[str, ModelResult]
    skipped_total: int
    skipped_reasons: list[str]

    def to_dict(self) -> dict:
        return {"output": self.output, "skipped_total": self.skipped_total, "skipped_reasons": self.skipped_reasons,
                "models": {name: {**asdict(r), "ratio": r.ratio, "gap_closed": r.gap_closed} for name, r in self.results.items()}}


@dataclass
class RunState:
    """Everything that changes during training (and goes into ``latest.ckpt``)."""

    epoch: int
    best_val: float
    best_epoch: int
    best_state: dict
    bad_epochs: int = 0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)


def model_seed(seed: int, name: str) -> int:
    return seed * 1009 + MODEL_NAMES.index(name)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


@contextlib.contextmanager
def torch_threads(count: int):
    """Run with ``count`` intra-op threads, then restore the caller's setting. With small batches on
    shared cores, extra threads mostly spin-wait: 1 thread measured 3-10x faster under load here."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def data_digest(data: ModelData) -> str:
    digest = hashlib.sha256()
    for array in (data.train.inputs, data.train.targets, data.validation.inputs, data.validation.targets):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _tensors(data: Sequences) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.ascontiguousarray(data.inputs)), torch.from_numpy(np.ascontiguousarray(data.targets))


def _copy_state(model: torch.nn.Module) -> dict:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


@torch.no_grad()
def evaluate(model: KellyModel, spec: ModelSpec, data: Sequences, batch_size: int) -> float:
    """Mean loss over ``data`` (frame-weighted, so independent of batch size)."""
    model.eval()
    inputs, targets = _tensors(data)
    total = 0.0
    for start in range(0, len(data), batch_size):
        x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
        total += float(model_loss(model, spec, x, y)) * x.shape[0]
    return total / max(len(data), 1)


def train_epoch(model, optimizer, spec: ModelSpec, data: Sequences, batch_size: int,
                generator: torch.Generator, reporter: Reporter) -> float:
    model.train()
    inputs, targets = _tensors(data)
    order = torch.randperm(len(data), generator=generator)
    total = 0.0
    for start in range(0, len(data), batch_size):
        index = order[start:start + batch_size]
        optimizer.zero_grad(set_to_none=True)
        loss = model_loss(model, spec, inputs[index], targets[index])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRADIENT_CLIP)
        optimizer.step()
        total += float(loss.detach()) * len(index)
        reporter.advance()
    return total / len(data)


def _checkpoint_payload(model, optimizer, state: RunState, spec: ModelSpec, settings: dict) -> dict:
    return {"format": 1, "model": spec.name, "stack": spec.stack(), "settings": settings,
            "epoch": state.epoch, "model_state": _copy_state(model), "optimizer_state": optimizer.state_dict(),
            "best_state": state.best_state, "best_val": state.best_val, "best_epoch": state.best_epoch,
            "bad_epochs": state.bad_epochs, "stopped_early": state.stopped_early, "history": state.history}


def _resume(path: Path, model, optimizer, spec: ModelSpec, settings: dict) -> RunState:
    payload = load_checkpoint(path)
    if payload.get("model") != spec.name or payload.get("stack") != spec.stack():
        raise InputError(f"checkpoint is for {payload.get('model')} {payload.get('stack')}, not {spec.stack()}", file=path)
    if payload.get("settings") != settings:
        changed = sorted(k for k in settings if payload.get("settings", {}).get(k) != settings[k])
        raise InputError(f"cannot resume: {', '.join(changed)} differ from the checkpoint's run "
                         "(train without --resume to start over)", file=path)
    model.load_state_dict(payload["model_state"])
    optimizer.load_state_dict(payload["optimizer_state"])
    return RunState(payload["epoch"], payload["best_val"], payload["best_epoch"], payload["best_state"],
                    payload["bad_epochs"], payload["stopped_early"], list(payload["history"]))


def train_model(data: ModelData, config: TrainConfig, directory: Path, reporter: Reporter | None = None
                ) -> tuple[KellyModel, ModelResult]:
    """Train one model on ``data``; return it holding its best weights, and its result."""
    with torch_threads(config.threads):
        return _train_model(data, config, directory, reporter or Reporter())


def _train_model(data: ModelData, config: TrainConfig, directory: Path, reporter: Reporter
                 ) -> tuple[KellyModel, ModelResult]:
    spec = get_spec(data.name)
    started = time.perf_counter()
    model = build_model(spec.name, seed=model_seed(config.seed, spec.name))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    baseline = baseline_loss(spec, data.train.targets, data.validation.targets)
    settings = {**{key: getattr(config, key) for key in RESUME_KEYS}, "data": data_digest(data)}
    if config.resume and directory.is_dir():
        # A killed run leaves its temporaries (.history.csv.XXXXXXXX.tmp, ...): this run owns the folder.
        for stale in atomic.remove_stale_temps(directory):
            reporter.note(f"{spec.name}: removed {stale.name}, a temporary file of an interrupted run")
    if config.resume and (directory / LATEST).exists():
        state = _resume(directory / LATEST, model, optimizer, spec, settings)
    else:
        if config.resume:
            reporter.note(f"{spec.name}: no {directory / LATEST} to resume from; starting from scratch")
        initial = evaluate(model, spec, data.validation, config.batch_size)
        state = RunState(0, initial, 0, _copy_state(model))
        save_checkpoint(directory / BEST, _best_payload(spec, state, baseline, data))
    batches = math.ceil(len(data.train) / config.batch_size)
    remaining = 0 if state.stopped_early else max(config.epochs - state.epoch, 0)
    reporter.stage(f"{spec.name}: training", remaining * batches)
    for epoch in range(state.epoch + 1, state.epoch + 1 + remaining):
        epoch_started = time.perf_counter()
        train_loss = train_epoch(model, optimizer, spec, data.train, config.batch_size,
                                 epoch_generator(config.seed, epoch), reporter)
        val_loss = evaluate(model, spec, data.validation, config.batch_size)
        state.epoch = epoch
        state.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                              "seconds": time.perf_counter() - epoch_started})
        if val_loss < state.best_val - config.min_delta:
            state.best_val, state.best_epoch, state.best_state, state.bad_epochs = val_loss, epoch, _copy_state(model), 0
            save_checkpoint(directory / BEST, _best_payload(spec, state, baseline, data))
        else:
            state.bad_epochs += 1
            state.stopped_early = state.bad_epochs >= config.patience
        save_checkpoint(directory / LATEST, _checkpoint_payload(model, optimizer, state, spec, settings))
        write_history(directory, spec.name, state.history, baseline)
        reporter.advance(0, f"{spec.name}: epoch {epoch} val {val_loss:.4g} (baseline {baseline:.4g})")
        if state.stopped_early:
            break
    model.load_state_dict(state.best_state)  # early stopping: back to the best epoch's weights
    if config.plot and state.history:
        plot_history(directory, spec.name, state.history, baseline, state.best_epoch)
    result = ModelResult(spec.name, data.sources, spec.parameter_count(), spec.parameter_count("torch"),
                         len(data.train), len(data.validation), state.epoch, state.best_epoch,
                         evaluate(model, spec, data.validation, config.batch_size), baseline,
                         floor_loss(spec, data.validation.targets), state.stopped_early,
                         time.perf_counter() - started, data.skipped, data.notes)
    return model, result


def _best_payload(spec: ModelSpec, state: RunState, baseline: float, data: ModelData) -> dict:
    return {"format": 1, "model": spec.name, "stack": spec.stack(), "epoch": state.best_epoch,
            "model_state": state.best_state, "val_loss": state.best_val, "baseline_loss": baseline,
            "sources": data.sources}


def train_models(config: TrainConfig, reporter: Reporter | None = None) -> TrainReport:
    """Load the data, train every model of ``config.models``, write the summary; return the report."""
    reporter = reporter or Reporter()
    all_data, skips = load_model_data(config, reporter)
    output = Path(config.output)
    results = {}
    for name in config.models:
        _, results[name] = train_model(all_data[name], config, output / name, reporter)
    report = TrainReport(str(output), results, skips.total, skips.reasons)
    atomic.write_json(output / "training_summary.json", {"config": config.to_dict(), **report.to_dict()})
    return report
