"""The per-model losses named in the spec, and the predict-the-mean baseline each is compared with.

- ``mse``: mean squared error of the activated output (tanh / sigmoid outputs of regression targets);
- ``bce``: binary cross-entropy on the sigmoid logits (note probabilities; soft targets allowed);
- ``cross_entropy``: cross-entropy of the softmax logits against a target distribution per frame.

All are means over frames (and over outputs for mse/bce), so a loss does not depend on batch size.
The baseline predicts, at every frame, the mean target of the training set (for bce the mean
probability per pitch, for cross_entropy the mean class distribution); it is computed in NumPy,
independently of the model. The floor is the loss of predicting the targets themselves: 0 for mse
and for one-hot targets, the targets' entropy for soft ones (synthetic data), so that
``(baseline - loss) / (baseline - floor)`` is the share of the learnable improvement obtained.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from toolchain.kelly.spec import ModelSpec

EPSILON = 1e-7


def model_loss(model, spec: ModelSpec, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if spec.loss == "mse":
        return F.mse_loss(model(inputs), targets)
    if spec.loss == "bce":
        return F.binary_cross_entropy_with_logits(model.logits(inputs), targets)
    if spec.loss == "cross_entropy":
        return -(targets * F.log_softmax(model.logits(inputs), dim=-1)).sum(dim=-1).mean()
    raise ValueError(f"unknown loss {spec.loss!r}")


def baseline_loss(spec: ModelSpec, train_targets: np.ndarray, val_targets: np.ndarray) -> float:
    """The loss on ``val_targets`` of always predicting the mean of ``train_targets``."""
    mean = train_targets.reshape(-1, spec.output_size).astype(np.float64).mean(axis=0)
    targets = val_targets.reshape(-1, spec.output_size).astype(np.float64)
    if spec.loss == "mse":
        return float(((targets - mean) ** 2).mean())
    if spec.loss == "bce":
        p = np.clip(mean, EPSILON, 1 - EPSILON)
        return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())
    if spec.loss == "cross_entropy":
        p = np.clip(mean / mean.sum(), EPSILON, None)
        return float(-(targets * np.log(p)).sum(axis=1).mean())
    raise ValueError(f"unknown loss {spec.loss!r}")


def floor_loss(spec: ModelSpec, val_targets: np.ndarray) -> float:
    """The loss of a perfect prediction (the targets' own entropy for bce / cross_entropy)."""
    targets = val_targets.reshape(-1, spec.output_size).astype(np.float64)
    if spec.loss == "mse":
        return 0.0
    p = np.clip(targets, EPSILON, 1 - EPSILON)
    if spec.loss == "bce":
        return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())
    return float(-(targets * np.log(p)).sum(axis=1).mean())


def _constant_loss_sum(spec: ModelSpec, mean: np.ndarray, targets: np.ndarray) -> tuple[float, int]:
    """(sum, count) whose quotient is :func:`baseline_loss` of predicting ``mean`` on ``targets``."""
    targets = targets.reshape(-1, spec.output_size).astype(np.float64)
    if spec.loss == "mse":
        return float(((targets - mean) ** 2).sum()), targets.size
    if spec.loss == "bce":
        p = np.clip(mean, EPSILON, 1 - EPSILON)
        return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum()), targets.size
    if spec.loss == "cross_entropy":
        p = np.clip(mean / mean.sum(), EPSILON, None)
        return float(-(targets * np.log(p)).sum()), targets.shape[0]
    raise ValueError(f"unknown loss {spec.loss!r}")


def streamed_baseline_and_floor(spec: ModelSpec, train_chunks, val_chunks) -> tuple[float, float]:
    """:func:`baseline_loss` and :func:`floor_loss` over data read in chunks (a feature store is never
    in memory at once): the training mean in float64 first, then one pass over the validation chunks."""
    total, count = np.zeros(spec.output_size), 0
    for chunk in train_chunks:
        chunk = chunk.reshape(-1, spec.output_size).astype(np.float64)
        total += chunk.sum(axis=0)
        count += chunk.shape[0]
    mean = total / max(count, 1)
    base_sum = base_count = floor_sum = floor_count = 0.0
    for chunk in val_chunks:
        value, n = _constant_loss_sum(spec, mean, chunk)
        base_sum, base_count = base_sum + value, base_count + n
        frames = chunk.reshape(-1, spec.output_size).shape[0]
        floor_sum, floor_count = floor_sum + floor_loss(spec, chunk) * frames, floor_count + frames
    return base_sum / max(base_count, 1), floor_sum / max(floor_count, 1)
