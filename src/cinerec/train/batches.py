"""Batch sources: what the `Trainer` iterates over each epoch.

A batch source yields, for one epoch, dicts of equally long tensors (one dict per
optimizer step). The default, `TensorBatches`, shuffles in-memory tensors with one
``torch.randperm`` per epoch and slices it: no per-sample ``DataLoader``, so a small
model with batch 64 spends its time in torch, not in Python. A model that needs fresh
negatives or padded histories each epoch writes its own source (any object with
``batches(epoch, generator)``, ``to(device)`` and ``n_rows``).

Sharding (``shard=(rank, world_size)``) gives each process of a distributed run its
share of every *global* batch: all ranks draw the same permutation (same seed) and cut
it into the batches one process would take; rank r takes rows r, r + world, ... of each.
So together they see every row once per epoch, and a step of N processes averages the
gradient of the very batch a single process would use (`cinerec.train.distributed`).
A source that cannot shard is refused in a distributed run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from cinerec.errors import ConfigError

Batch = dict[str, Tensor]


@runtime_checkable
class BatchSource(Protocol):
    """An epoch-wise iterator of batches."""

    #: Rows per epoch (for averaging and progress); 0 is refused by the Trainer.
    n_rows: int

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        """The batches of epoch ``epoch`` (0-based); draw randomness from ``generator``
        only, so a resumed run continues exactly."""
        ...

    def to(self, device: torch.device) -> BatchSource:
        """The same source with its tensors on ``device``."""
        ...


def check_tensors(tensors: Batch, what: str) -> int:
    """Number of rows of a dict of equally long tensors (errors name ``what``)."""
    if not tensors:
        raise ConfigError(f"{what} tensors are empty: pass a dict of equally long tensors")
    sizes = {k: int(v.shape[0]) for k, v in tensors.items()}
    if len(set(sizes.values())) != 1:
        raise ConfigError(f"{what} tensors differ in length: {sizes}")
    n = next(iter(sizes.values()))
    if n == 0:
        raise ConfigError(f"{what} tensors have no rows")
    return n


class TensorBatches:
    """Shuffled mini-batches of in-memory tensors (the default source)."""

    def __init__(self, tensors: Batch, batch_size: int, shard: tuple[int, int] = (0, 1)):
        self.tensors = tensors
        self.n_rows = check_tensors(tensors, "train")
        self.batch_size = batch_size
        rank, world = shard
        if not 0 <= rank < world:
            raise ConfigError(f"shard {shard}: rank must be in [0, world_size)")
        self.shard = shard

    def to(self, device: torch.device) -> TensorBatches:
        moved = {k: v.to(device) for k, v in self.tensors.items()}
        return TensorBatches(moved, self.batch_size, self.shard)

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        device = next(iter(self.tensors.values())).device
        perm = torch.randperm(self.n_rows, generator=generator).to(device)
        rank, world = self.shard
        n = perm.shape[0]
        # A last batch too small to give every rank two rows is merged into the one
        # before (BatchNorm cannot train on a single row; DDP needs every rank in every
        # step). One process: only a last batch of one row.
        starts = list(range(0, n, self.batch_size))
        if len(starts) > 1 and n - starts[-1] < 2 * world:
            starts.pop()
        ends = starts[1:] + [n]
        for s, e in zip(starts, ends, strict=True):
            idx = perm[s:e] if world == 1 else perm[s:e][rank::world]
            yield {k: v[idx] for k, v in self.tensors.items()}

    def sharded(self, rank: int, world: int) -> TensorBatches:
        """This source as rank ``rank`` of ``world`` processes sees it."""
        return TensorBatches(self.tensors, self.batch_size, (rank, world))


def ordered_batches(tensors: Batch, batch_size: int) -> Iterator[Batch]:
    """Unshuffled slices (validation)."""
    n = check_tensors(tensors, "valid")
    for s in range(0, n, batch_size):
        yield {k: v[s : s + batch_size] for k, v in tensors.items()}
