"""Users' rating histories as sequences, and the batch source sequence models train on.

`Sequences` holds every user's items in time order (ties by row position) as flat
token arrays with an index pointer: item tokens are ``item + 1`` (0 is padding), and
optional rating-level and time-gap tokens run alongside (`rating_tokens`,
`gap_tokens`). `Sequences.windows` cuts the last ``max_len`` tokens of given users,
left-padded: what a model reads to score a user.

`SequenceBatches` is the Trainer's batch source. Each epoch it cuts every user's
sequence into windows of ``max_len`` inputs and ``max_len`` next-item targets, at a
fresh random offset per user: the window that ends at the user's latest rating is
always there (it is the context the model is asked for at serving time), the earlier
ones tile the rest, and every target is predicted exactly once per epoch, from a
context whose length changes from epoch to epoch. With ``horizon`` H > 1 each position
also learns the H - 1 items after its next one (a "dense all-action" objective: the
model is asked what a user will watch soon, not only next). Negatives are drawn fresh for each
batch, in proportion to ``count ** negative_alpha`` (0: uniform, 1: popularity), either
one set shared by the batch or a set per position. All randomness comes from the
Trainer's generator, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from cinerec.errors import ConfigError
from cinerec.train.batches import Batch, TensorBatches

#: Time-gap tokens: 0 padding, 1 unknown (no timestamps), then log2 buckets of seconds.
N_GAP_TOKENS = 32


def rating_tokens(ratings: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Half-star levels of ``ratings`` on ``scale`` as tokens 1..n (0 is padding)."""
    lo, hi = scale
    n_levels = int(round((hi - lo) * 2)) + 1
    level = np.clip(np.rint((np.asarray(ratings, dtype=np.float64) - lo) * 2), 0, n_levels - 1)
    return (level + 1).astype(np.int16)


def n_rating_tokens(scale: tuple[float, float]) -> int:
    return int(round((scale[1] - scale[0]) * 2)) + 2


def gap_tokens(timestamps: np.ndarray | None, indptr: np.ndarray) -> np.ndarray:
    """Tokens of the gap to the previous rating of the same sequence (its first rating:
    gap 0): 2 + floor(log2(1 + seconds)), capped; all 1 ("unknown") without timestamps."""
    n = int(indptr[-1])
    if timestamps is None:
        return np.ones(n, dtype=np.int16)
    ts = np.asarray(timestamps, dtype=np.int64)
    gaps = np.zeros(n, dtype=np.float64)
    if n > 1:
        gaps[1:] = np.maximum(np.diff(ts), 0)
    starts = indptr[:-1][np.diff(indptr) > 0]
    gaps[starts] = 0
    return (2 + np.minimum(np.floor(np.log2(1.0 + gaps)), N_GAP_TOKENS - 3)).astype(np.int16)


@dataclass(frozen=True, eq=False)
class Sequences:
    """Token sequences of ``len(indptr) - 1`` rows (users or histories), time-ordered."""

    indptr: np.ndarray  # int64 (n_rows + 1,)
    items: np.ndarray  # int32 item tokens (item + 1)
    ratings: np.ndarray  # int16 rating tokens
    gaps: np.ndarray  # int16 time-gap tokens

    @classmethod
    def from_rows(
        cls, rows: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray | None,
        n_rows: int, scale: tuple[float, float],
    ) -> Sequences:  # fmt: skip
        """Group (row, item, rating, time) by row, in time order (ties: input order)."""
        rows = np.asarray(rows, dtype=np.int64)
        if timestamps is None:
            order = np.argsort(rows, kind="stable")
        else:
            order = np.lexsort((np.arange(rows.shape[0]), np.asarray(timestamps, dtype=np.int64), rows))
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)[order]
        return cls(
            indptr=indptr,
            items=(np.asarray(items, dtype=np.int64)[order] + 1).astype(np.int32),
            ratings=rating_tokens(np.asarray(ratings)[order], scale),
            gaps=gap_tokens(ts, indptr),
        )

    def rating_values(self, scale: tuple[float, float]) -> np.ndarray:
        """The ratings the rating tokens stand for (half-star levels on ``scale``)."""
        return (scale[0] + (self.ratings.astype(np.float32) - 1) / 2).astype(np.float32)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def windows(self, rows: np.ndarray, max_len: int) -> dict[str, Tensor]:
        """The last ``max_len`` tokens of each row, left-padded with 0: ``items``,
        ``ratings``, ``gaps`` as (len(rows), max_len) int64 tensors."""
        rows = np.asarray(rows, dtype=np.int64)
        end = self.indptr[rows + 1]
        start = self.indptr[rows]
        pos = end[:, None] - max_len + np.arange(max_len)[None, :]
        return self._gather(pos, pos >= start[:, None])

    def _gather(self, pos: np.ndarray, ok: np.ndarray) -> dict[str, Tensor]:
        at = np.where(ok, pos, 0)
        out = {}
        for name in ("items", "ratings", "gaps"):
            values = getattr(self, name)
            picked = values[at] if values.size else np.zeros(at.shape, dtype=values.dtype)
            out[name] = torch.from_numpy(np.where(ok, picked, 0).astype(np.int64))
        return out


class SequenceBatches:
    """Per-epoch windows of next-item targets with fresh negatives (module docstring).

    Each batch holds ``items``/``ratings``/``gaps`` (B, max_len + horizon): inputs are
    the first ``max_len`` columns, and position c's targets the item tokens of columns
    c + 1 .. c + horizon; ``mask`` (B, max_len) marks the positions to learn (each
    user's next item once per epoch), ``target_ok`` (B, max_len + horizon, when
    horizon > 1) the tokens usable as targets; ``negatives`` holds item tokens,
    (n_negatives,) shared or (B, max_len, n_negatives) per position.
    """

    def __init__(
        self, seqs: Sequences, max_len: int, batch_size: int, *, target_ok: np.ndarray | None = None,
        n_negatives: int = 0, per_position: bool = False, item_counts: np.ndarray | None = None,
        negative_alpha: float = 0.0, horizon: int = 1, shard: tuple[int, int] = (0, 1),
    ) -> None:  # fmt: skip
        if max_len < 1 or horizon < 1:
            raise ConfigError(f"max_len={max_len} and horizon={horizon} must be >= 1")
        self.horizon = horizon
        self.seqs, self.max_len, self.batch_size = seqs, max_len, batch_size
        self.target_ok = target_ok
        self.n_negatives, self.per_position = n_negatives, per_position
        self.shard = shard
        lengths = seqs.lengths
        learnable = np.ones(int(seqs.indptr[-1]), dtype=bool)
        learnable[seqs.indptr[:-1][lengths > 0]] = False  # the first rating of a sequence has no context
        if target_ok is not None:
            learnable &= target_ok
        self._learnable = learnable
        #: Next-item targets per epoch.
        self.n_rows = int(learnable.sum())
        self.device = torch.device("cpu")
        weights = None
        if n_negatives:
            counts = np.ones(int(seqs.items.max(initial=0))) if item_counts is None else np.asarray(item_counts, np.float64)
            weights = np.where(counts > 0, np.power(np.maximum(counts, 1e-12), negative_alpha), 0.0)
            if weights.sum() <= 0:
                raise ConfigError("no item to draw negatives from")
        self._neg_weights = None if weights is None else torch.as_tensor(weights / weights.sum(), dtype=torch.float64)

    def to(self, device: torch.device) -> SequenceBatches:
        self.device = torch.device(device)
        return self

    def sharded(self, rank: int, world: int) -> SequenceBatches:
        other = SequenceBatches.__new__(SequenceBatches)
        other.__dict__ = dict(self.__dict__)
        other.shard = (rank, world)
        return other

    def epoch_windows(self, generator: torch.Generator) -> dict[str, Tensor]:
        """This epoch's windows (every learnable target once; module docstring)."""
        L = self.max_len
        lengths = self.seqs.lengths
        users = np.flatnonzero(lengths >= 2)
        n = lengths[users]
        offset = torch.randint(1, L + 1, (users.shape[0],), generator=generator).numpy().astype(np.int64)
        more = np.ceil(np.maximum(n - offset - 1, 0) / L).astype(np.int64)
        per_user = 1 + more
        owner = np.repeat(np.arange(users.shape[0]), per_user)
        j = np.arange(owner.shape[0]) - np.repeat(np.cumsum(per_user) - per_user, per_user)
        # Window 0 ends at the latest rating; window j >= 1 ends at n - offset - (j-1) L.
        end = np.where(j == 0, n[owner], n[owner] - offset[owner] - (j - 1) * L)
        first_target = np.where(j == 0, n[owner] - np.minimum(offset[owner], L), 1)
        base = self.seqs.indptr[users][owner]
        H = self.horizon
        local = end[:, None] - (L + 1) + np.arange(L + H)[None, :]
        ok = (local >= 0) & (local < n[owner][:, None])
        out = self.seqs._gather(base[:, None] + local, ok)
        usable = ok & self._learnable[np.where(ok, base[:, None] + local, 0)]
        learn = ok[:, :L] & (local[:, 1 : L + 1] >= first_target[:, None]) & usable[:, 1 : L + 1]
        keep = learn.any(axis=1)
        out = {k: v[torch.from_numpy(keep)] for k, v in out.items()}
        out["mask"] = torch.from_numpy(learn[keep])
        if H > 1:
            out["target_ok"] = torch.from_numpy(usable[keep])
        return out

    def batches(self, epoch: int, generator: torch.Generator) -> Iterator[Batch]:
        windows = self.epoch_windows(generator)
        for batch in TensorBatches(windows, self.batch_size, self.shard).batches(epoch, generator):
            batch = {k: v.to(self.device) for k, v in batch.items()}
            if self.n_negatives:
                rows = batch["items"].shape[0]
                shape = (rows, self.max_len, self.n_negatives) if self.per_position else (self.n_negatives,)
                draw = torch.multinomial(self._neg_weights, int(np.prod(shape)), replacement=True, generator=generator)
                batch["negatives"] = (draw + 1).reshape(shape).to(self.device)
            yield batch
