"""Training windows from memory or from the feature store, batched for one process or one DDP rank.

Training reads its data through two small classes with one interface (``len``, ``epoch_batches``,
``chunks``, ``target_chunks``):

- :class:`MemoryWindows` -- the ``[N, T, F]`` arrays ``kelly-tc train`` builds in memory. In a single
  process an epoch is ``torch.randperm`` of the windows with the epoch's seeded generator (exactly the
  order training always used, so resumed runs stay bit-identical).
- :class:`StoreWindows` -- the pieces of a feature store (``store.PieceRef``), streamed: an epoch deals
  the SHARDS' pieces to the ranks with torch's own ``DistributedSampler`` (seeded, ``set_epoch``), and each
  rank shuffles windows inside a buffer of ``buffer_pieces`` pieces, so memory holds a few pieces, never
  the corpus.

Under DDP every rank must take the same number of optimiser steps (a rank that stops early would leave the
others waiting in the gradient all-reduce). Both classes therefore yield exactly
``ceil(windows / (batch x world))`` batches per rank; a rank whose share runs out first starts its share
again. ``batch_size`` here is the per-rank batch: the global batch divided by the world size.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from toolchain.kelly.store import PieceRef, iter_windows, window_count

Batch = tuple[torch.Tensor, torch.Tensor]


def steps_per_epoch(windows: int, batch_size: int, world: int) -> int:
    return max(1, math.ceil(windows / (batch_size * world)))


class MemoryWindows:
    def __init__(self, inputs: np.ndarray, targets: np.ndarray):
        self.inputs = torch.from_numpy(np.ascontiguousarray(inputs))
        self.targets = torch.from_numpy(np.ascontiguousarray(targets))

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, generator: torch.Generator,
                      rank: int = 0, world: int = 1) -> Iterator[Batch]:
        order = torch.randperm(len(self), generator=generator)
        if world == 1:
            for start in range(0, len(self), batch_size):
                index = order[start:start + batch_size]
                yield self.inputs[index], self.targets[index]
            return
        mine = order[rank::world]
        steps = steps_per_epoch(len(self), batch_size, world)
        for step in range(steps):
            index = mine[torch.arange(step * batch_size, (step + 1) * batch_size) % len(mine)]
            yield self.inputs[index], self.targets[index]

    def chunks(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(self), batch_size):
            yield self.inputs[start:start + batch_size], self.targets[start:start + batch_size]

    def target_chunks(self) -> Iterator[np.ndarray]:
        yield self.targets.numpy()


class StoreWindows:
    def __init__(self, refs: list[PieceRef], model: str, seq_len: int, buffer_pieces: int = 8):
        self.refs, self.model, self.seq_len, self.buffer_pieces = refs, model, seq_len, max(1, buffer_pieces)
        self._count = window_count(refs, seq_len)

    def __len__(self) -> int:
        return self._count

    def _rank_pieces(self, seed: int, epoch: int, rank: int, world: int) -> list[PieceRef]:
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(len(self.refs)), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        return [self.refs[i] for i in sampler]

    def _rows(self, pieces: list[PieceRef], rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Windows of ``pieces``, shuffled within each buffer of ``buffer_pieces`` pieces, forever."""
        while True:
            produced = False
            for start in range(0, len(pieces), self.buffer_pieces):
                loaded = list(iter_windows(pieces[start:start + self.buffer_pieces], self.model, self.seq_len))
                if not loaded:
                    continue
                x = np.concatenate([pair[0] for pair in loaded])
                y = np.concatenate([pair[1] for pair in loaded])
                for index in rng.permutation(len(x)):
                    produced = True
                    yield x[index], y[index]
            if not produced:
                return

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, generator: torch.Generator | None = None,
                      rank: int = 0, world: int = 1) -> Iterator[Batch]:
        rows = self._rows(self._rank_pieces(seed, epoch, rank, world), np.random.default_rng([seed, epoch, rank]))
        for _ in range(steps_per_epoch(len(self), batch_size, world)):
            batch = [row for _, row in zip(range(batch_size), rows)]
            if not batch:
                return
            yield (torch.from_numpy(np.stack([x for x, _ in batch])), torch.from_numpy(np.stack([y for _, y in batch])))

    def chunks(self, batch_size: int) -> Iterator[Batch]:
        for x, y in iter_windows(self.refs, self.model, self.seq_len):
            for start in range(0, len(x), batch_size):
                yield torch.from_numpy(x[start:start + batch_size]), torch.from_numpy(y[start:start + batch_size])

    def target_chunks(self) -> Iterator[np.ndarray]:
        for _, y in iter_windows(self.refs, self.model, self.seq_len):
            yield y
