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
from toolchain.kelly import distributed
from toolchain.kelly.losses import baseline_loss, floor_loss, model_loss, streamed_baseline_and_floor
from toolchain.kelly.models import KellyModel, build_model
from toolchain.kelly.progress import Reporter
from toolchain.kelly.spec import MODEL_NAMES, ModelSpec, get_spec
from toolchain.kelly.windows import MemoryWindows, StoreWindows

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
    #: {model name: the pieces of its validation split} (for the music metrics; not in the JSON)
    validation_pieces: dict = field(default_factory=dict)

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
    if isinstance(data.train, StoreWindows):  # a store's pieces: their shards, split and window length
        for ref in data.train.refs + [None] + data.validation.refs:
            digest.update(f"{ref.shard.name}:{ref.index}:{ref.frames};".encode() if ref else b"|")
        digest.update(str(data.train.seq_len).encode())
        return digest.hexdigest()
    for array in (data.train.inputs, data.train.targets, data.validation.inputs, data.validation.targets):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def windows_of(data) -> MemoryWindows | StoreWindows:
    """The batching view of a model's training or validation data (in memory or in a feature store)."""
    return data if isinstance(data, StoreWindows) else MemoryWindows(data.inputs, data.targets)


def _copy_state(model: torch.nn.Module) -> dict:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


class LossModule(torch.nn.Module):
    """``model_loss`` as a module's ``forward``: DDP synchronises gradients only of what runs through the
    wrapped module's forward, and the losses call ``model.logits`` (not ``forward``) for bce/cross-entropy."""

    def __init__(self, model: KellyModel, spec: ModelSpec):
        super().__init__()
        self.model, self.spec = model, spec

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return model_loss(self.model, self.spec, inputs, targets)


@torch.no_grad()
def evaluate(model: KellyModel, spec: ModelSpec, data, batch_size: int) -> float:
    """Mean loss over ``data`` (frame-weighted, so independent of batch size). Under DDP every rank
    evaluates the whole validation set: the ranks then take identical early-stopping decisions without
    exchanging anything, for one forward pass over a fifth of the data."""
    model.eval()
    total, count = 0.0, 0
    for x, y in windows_of(data).chunks(batch_size):
        total += float(model_loss(model, spec, x, y)) * x.shape[0]
        count += x.shape[0]
    return total / max(count, 1)


@torch.no_grad()
def start_at_the_prior(model: KellyModel, spec: ModelSpec, mean: np.ndarray) -> None:
    """Set the output layer's bias so that the untrained model predicts ``mean``, the training targets' mean.

    A zero bias starts every sigmoid at 0.5: with one melody pitch in 128 sounding, most of a short
    training run would go into pushing 127 outputs down. Starting at the prior (the predict-the-mean
    baseline, up to the input-dependent part) spends every step on what the inputs tell. Softmax: log of
    the class shares; sigmoid: logit of the mean; tanh: atanh of the mean (clipped away from +-1)."""
    last = [module for module in model.body if isinstance(module, torch.nn.Linear)][-1]
    mean = np.asarray(mean, np.float64)
    if spec.output_activation == "softmax":
        bias = np.log(np.clip(mean / max(mean.sum(), 1e-12), 1e-4, None))
    elif spec.output_activation == "sigmoid":
        mean = np.clip(mean, 1e-4, 1 - 1e-4)
        bias = np.log(mean / (1 - mean))
    elif spec.output_activation == "tanh":
        bias = np.arctanh(np.clip(mean, -0.999, 0.999))
    else:
        bias = mean
    last.bias.copy_(torch.from_numpy(bias.astype(np.float32)))


def target_mean(spec: ModelSpec, data) -> np.ndarray:
    """The mean training target per output, of in-memory sequences or of a store's streamed windows."""
    if isinstance(data, StoreWindows):
        total, count = np.zeros(spec.output_size), 0
        for chunk in data.target_chunks():
            flat = np.asarray(chunk, np.float64).reshape(-1, spec.output_size)
            total += flat.sum(axis=0)
            count += len(flat)
        return total / max(count, 1)
    return data.targets.reshape(-1, spec.output_size).astype(np.float64).mean(axis=0)


def train_epoch(model, optimizer, spec: ModelSpec, data, batch_size: int,
                generator: torch.Generator, reporter: Reporter, seed: int = 0, epoch: int = 0,
                loss_module: torch.nn.Module | None = None, rank: int = 0, world: int = 1) -> float:
    """One epoch; ``loss_module`` (a DDP-wrapped :class:`LossModule`) replaces the plain loss under DDP,
    and ``batch_size`` is then the per-rank share of the global batch."""
    model.train()
    loss_of = loss_module or (lambda x, y: model_loss(model, spec, x, y))
    parameters = list(model.parameters())
    total, count = 0.0, 0
    for x, y in windows_of(data).epoch_batches(batch_size, seed, epoch, generator, rank, world):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, GRADIENT_CLIP)
        optimizer.step()
        total += float(loss.detach()) * x.shape[0]
        count += x.shape[0]
        reporter.advance()
    return total / max(count, 1)


def baseline_and_floor(spec: ModelSpec, data: ModelData) -> tuple[float, float]:
    if isinstance(data.train, StoreWindows):
        return streamed_baseline_and_floor(spec, data.train.target_chunks(), data.validation.target_chunks())
    return (baseline_loss(spec, data.train.targets, data.validation.targets), floor_loss(spec, data.validation.targets))


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


def train_model(data: ModelData, config: TrainConfig, directory: Path, reporter: Reporter | None = None,
                context: distributed.Context | None = None) -> tuple[KellyModel, ModelResult]:
    """Train one model on ``data``; return it holding its best weights, and its result. Under torchrun
    (``context.active``) this runs on every rank with DDP; rank 0 alone writes files."""
    with torch_threads(config.threads):
        return _train_model(data, config, directory, reporter or Reporter(), context or distributed.Context())


def _train_model(data: ModelData, config: TrainConfig, directory: Path, reporter: Reporter,
                 context: distributed.Context) -> tuple[KellyModel, ModelResult]:
    spec = get_spec(data.name)
    started = time.perf_counter()
    batch_size = config.windows(spec.name)[2]  # long-context models: longer windows, smaller batches
    model = build_model(spec.name, seed=model_seed(config.seed, spec.name))  # the same seed on every rank
    start_at_the_prior(model, spec, target_mean(spec, data.train))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_module = distributed.wrap(LossModule(model, spec), context)
    baseline, floor = baseline_and_floor(spec, data)
    settings = {**{key: getattr(config, key) for key in RESUME_KEYS}, "data": data_digest(data)}
    save = context.is_main  # rank 0 writes; the others compute the same state
    if save and config.resume and directory.is_dir():
        # A killed run leaves its temporaries (.history.csv.XXXXXXXX.tmp, ...): this run owns the folder.
        for stale in atomic.remove_stale_temps(directory):
            reporter.note(f"{spec.name}: removed {stale.name}, a temporary file of an interrupted run")
    if config.resume and (directory / LATEST).exists():
        state = _resume(directory / LATEST, model, optimizer, spec, settings)
    else:
        if config.resume:
            reporter.note(f"{spec.name}: no {directory / LATEST} to resume from; starting from scratch")
        initial = evaluate(model, spec, data.validation, batch_size)
        state = RunState(0, initial, 0, _copy_state(model))
        if save:
            save_checkpoint(directory / BEST, _best_payload(spec, state, baseline, data))
    batches = math.ceil(len(data.train) / batch_size)
    remaining = 0 if state.stopped_early else max(config.epochs - state.epoch, 0)
    reporter.stage(f"{spec.name}: training", remaining * batches)
    for epoch in range(state.epoch + 1, state.epoch + 1 + remaining):
        epoch_started = time.perf_counter()
        train_loss = train_epoch(model, optimizer, spec, data.train, max(batch_size // context.world, 1),
                                 epoch_generator(config.seed, epoch), reporter, config.seed, epoch, loss_module,
                                 context.rank, context.world)
        val_loss = evaluate(model, spec, data.validation, batch_size)
        state.epoch = epoch
        state.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                              "seconds": time.perf_counter() - epoch_started})
        improved = val_loss < state.best_val - config.min_delta
        if improved:
            state.best_val, state.best_epoch, state.best_state, state.bad_epochs = val_loss, epoch, _copy_state(model), 0
        else:
            state.bad_epochs += 1
            state.stopped_early = state.bad_epochs >= config.patience
        if save:
            if improved:
                save_checkpoint(directory / BEST, _best_payload(spec, state, baseline, data))
            save_checkpoint(directory / LATEST, _checkpoint_payload(model, optimizer, state, spec, settings))
            write_history(directory, spec.name, state.history, baseline)
        distributed.barrier(context)  # no rank starts the next epoch (or resumes) before latest.ckpt exists
        reporter.advance(0, f"{spec.name}: epoch {epoch} val {val_loss:.4g} (baseline {baseline:.4g})")
        if state.stopped_early:
            reporter.finish(f"{spec.name}: stopped early at epoch {epoch} (best epoch {state.best_epoch})")
            break
    model.load_state_dict(state.best_state)  # early stopping: back to the best epoch's weights
    if save and config.plot and state.history:
        plot_history(directory, spec.name, state.history, baseline, state.best_epoch)
    result = ModelResult(spec.name, data.sources, spec.parameter_count(), spec.parameter_count("torch"),
                         len(data.train), len(data.validation), state.epoch, state.best_epoch,
                         evaluate(model, spec, data.validation, batch_size), baseline,
                         floor, state.stopped_early,
                         time.perf_counter() - started, data.skipped, data.notes)
    return model, result


def _best_payload(spec: ModelSpec, state: RunState, baseline: float, data: ModelData) -> dict:
    return {"format": 1, "model": spec.name, "stack": spec.stack(), "epoch": state.best_epoch,
            "model_state": state.best_state, "val_loss": state.best_val, "baseline_loss": baseline,
            "sources": data.sources}


def train_models(config: TrainConfig, reporter: Reporter | None = None) -> TrainReport:
    """Load the data (in memory, or streamed from ``config.store``), train every model of
    ``config.models``, write the summary; return the report. Under torchrun, every rank trains and rank
    0 writes (the others get a silent reporter)."""
    context = distributed.start()
    try:
        if context.active:
            if not config.store:
                raise InputError("distributed training reads a feature store: add --store STORE "
                                 "(build it with `kelly-tc features --store STORE`)")
            if config.batch_size % context.world:
                raise InputError(f"--batch-size {config.batch_size} (the global batch) must be a multiple of the "
                                 f"{context.world} processes", where="--batch-size")
            if not context.is_main:
                reporter = Reporter()
        reporter = reporter or Reporter()
        if config.store:
            from toolchain.kelly.store_data import load_store_data

            all_data, skips = load_store_data(config, reporter)
        else:
            all_data, skips = load_model_data(config, reporter)
        output = Path(config.output)
        results = {}
        for name in config.models:
            _, results[name] = train_model(all_data[name], config, output / name, reporter, context)
        report = TrainReport(str(output), results, skips.total, skips.reasons,
                             {name: data.validation_pieces for name, data in all_data.items()})
        if context.is_main:
            atomic.write_json(output / "training_summary.json",
                              {"config": config.to_dict(), "processes": context.world, **report.to_dict()})
        distributed.barrier(context)
        return report
    finally:
        distributed.stop(context)
