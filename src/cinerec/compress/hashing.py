"""Hashed embeddings: the hashing trick and quotient-remainder (QR) compositional tables.

Unlike quantization these change the model's structure (several ids share rows), so a
hashed model must be (re)trained with its tables: `cinerec.compress.api.compress_model`
with ``method="hash"``/``"qr"`` swaps the tables, warm-starts every shared row from the
mean of the trained fp32 rows mapped to it, and retrains through the model's own Trainer
(``model.finetune``).

Hash: seeded multiply-add on 64-bit words, ``(a*x + b) mod 2^64`` (a odd, a and b from
the seed), then the splitmix64 finalizer, reduced to ``[0, n_buckets)`` by
``(top32 * n_buckets) >> 32`` (Lemire's fastrange). The finalizer matters: plain
multiply-shift maps *contiguous* ids (our indices) onto an evenly spaced Weyl sequence,
so its collisions are far below the birthday rate for n < buckets and pile up in
patterns above it; with the mixer, collisions follow the birthday formula. ``n_hashes=2`` sums
the rows of two independent hashes, so two ids fully collide only when both agree.

QR (Shi et al. 2020, "Compositional Embeddings Using Complementary Partitions"): id i
uses ``Q[i // m]`` and ``R[i % m]`` combined by element-wise product (or sum); the pair is
unique for every id, so there are no full collisions with ``ceil(n/m) + m`` rows.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from cinerec.compress.base import CompressedEmbedding, blockwise_dot
from cinerec.errors import ConfigError


def hash_params(seed: int, n_hashes: int) -> list[tuple[int, int]]:
    """(a, b) pairs as signed int64 values (a odd) for ``n_hashes`` independent hashes."""
    rng = np.random.default_rng(seed)
    words = rng.integers(0, 2**63, size=(n_hashes, 2), dtype=np.int64)
    return [(int(a) | 1, int(b)) for a, b in words]


_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _signed(c: int) -> int:
    return c - 2**64 if c >= 2**63 else c


def hash_ids_np(ids: np.ndarray, n_buckets: int, a: int, b: int) -> np.ndarray:
    """numpy reference of `hash_ids` (uint64 arithmetic wraps mod 2^64)."""
    z = np.asarray(ids).astype(np.uint64)
    with np.errstate(over="ignore"):
        z = z * np.uint64(a % 2**64) + np.uint64(b % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
        z = z ^ (z >> np.uint64(31))
    top = z >> np.uint64(32)
    return ((top * np.uint64(n_buckets)) >> np.uint64(32)).astype(np.int64)


def _shr(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 (torch only has the arithmetic one)."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def hash_ids(ids: torch.Tensor, n_buckets: int, a: int, b: int) -> torch.Tensor:
    """Bucket of each id: multiply-add (seeded a, b), splitmix64 finalizer, fastrange.

    int64 multiplication wraps in two's complement, i.e. mod 2^64 as in numpy.
    """
    z = ids.long() * a + b
    z = (z ^ _shr(z, 30)) * _signed(_MIX1)
    z = (z ^ _shr(z, 27)) * _signed(_MIX2)
    z = z ^ _shr(z, 31)
    return (_shr(z, 32) * n_buckets) >> 32


def collision_rate(n_ids: int, n_buckets: int, seed: int = 0, n_hashes: int = 1) -> float:
    """Share of the ids 0..n_ids-1 whose bucket (tuple of buckets for n_hashes=2) is
    shared with at least one other id, under the seeded hash."""
    ids = np.arange(n_ids)
    keys = np.zeros(n_ids, dtype=np.int64)
    for a, b in hash_params(seed, n_hashes):
        keys = keys * n_buckets + hash_ids_np(ids, n_buckets, a, b)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return float((counts[inverse] > 1).mean())


def expected_collision_rate(n_ids: int, n_buckets: int, n_hashes: int = 1) -> float:
    """Birthday estimate for a uniform hash: 1 - (1 - 1/B)^(n-1), with B = n_buckets^h."""
    cells = float(n_buckets) ** n_hashes
    return 1.0 - math.exp((n_ids - 1) * math.log1p(-1.0 / cells))


class HashedEmbedding(CompressedEmbedding):
    """``num_embeddings`` ids sharing ``n_buckets`` rows through ``n_hashes`` hashes."""

    kind = "hash"

    def __init__(self, num_embeddings: int, embedding_dim: int, n_buckets: int, n_hashes: int = 1, seed: int = 0):
        super().__init__()
        if n_buckets < 1 or n_hashes not in (1, 2):
            raise ConfigError(f"hashing needs n_buckets >= 1 and n_hashes 1 or 2, got {n_buckets}, {n_hashes}")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.n_buckets = int(n_buckets)
        self.n_hashes = int(n_hashes)
        self.seed = int(seed)
        self._params = hash_params(self.seed, self.n_hashes)
        self.table = nn.Parameter(torch.zeros(self.n_buckets, self.embedding_dim))

    @classmethod
    def from_float(cls, weight: torch.Tensor, n_buckets: int, n_hashes: int = 1, seed: int = 0) -> HashedEmbedding:
        """Warm start: each bucket = mean of the fp32 rows hashed to it (/ n_hashes)."""
        w = weight.detach().float()
        mod = cls(w.shape[0], w.shape[1], n_buckets, n_hashes, seed).to(w.device)
        ids = torch.arange(w.shape[0], device=w.device)
        with torch.no_grad():
            sums = torch.zeros_like(mod.table)
            counts = torch.zeros(n_buckets, device=w.device)
            for h in mod.buckets(ids):
                sums.index_add_(0, h, w)
                counts.index_add_(0, h, torch.ones_like(h, dtype=torch.float32))
            mod.table.copy_(sums / counts.clamp_min(1)[:, None] / n_hashes)
        return mod

    def buckets(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """Bucket index of every id under each hash."""
        return [hash_ids(idx, self.n_buckets, a, b) for a, b in self._params]

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "n_buckets": self.n_buckets,
                "n_hashes": self.n_hashes, "seed": self.seed}

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return sum(self.table[h] for h in self.buckets(idx.long()))  # type: ignore[return-value]

    def dot_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        per_bucket = user_vecs @ self.table.T  # (B, n_buckets): the only matmul needed
        ids = torch.arange(self.num_embeddings, device=user_vecs.device)
        return sum(per_bucket[:, h] for h in self.buckets(ids))  # type: ignore[return-value]


class QREmbedding(CompressedEmbedding):
    """Quotient-remainder table: ``Q[i // m] (*|+) R[i % m]`` with m = ``n_buckets``."""

    kind = "qr"

    def __init__(
        self, num_embeddings: int, embedding_dim: int, n_buckets: int, combine: Literal["mult", "sum"] = "mult"
    ):
        super().__init__()
        if n_buckets < 1 or combine not in ("mult", "sum"):
            raise ConfigError(f"QR needs n_buckets >= 1 and combine 'mult' or 'sum', got {n_buckets}, {combine!r}")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.n_buckets = int(n_buckets)
        self.combine = combine
        n_q = -(-self.num_embeddings // self.n_buckets)
        self.quotient = nn.Parameter(torch.zeros(n_q, self.embedding_dim))
        self.remainder = nn.Parameter(torch.zeros(self.n_buckets, self.embedding_dim))

    @classmethod
    def from_float(cls, weight: torch.Tensor, n_buckets: int, combine: Literal["mult", "sum"] = "mult") -> QREmbedding:
        """Warm start: Q = mean of its ids' fp32 rows, R = the neutral element (1 or 0)."""
        w = weight.detach().float()
        mod = cls(w.shape[0], w.shape[1], n_buckets, combine).to(w.device)
        q = torch.arange(w.shape[0], device=w.device) // n_buckets
        with torch.no_grad():
            sums = torch.zeros_like(mod.quotient).index_add_(0, q, w)
            counts = torch.bincount(q, minlength=mod.quotient.shape[0]).clamp_min(1)
            mod.quotient.copy_(sums / counts[:, None])
            mod.remainder.fill_(1.0 if combine == "mult" else 0.0)
        return mod

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "n_buckets": self.n_buckets, "combine": self.combine}

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.long()
        q, r = self.quotient[idx // self.n_buckets], self.remainder[idx % self.n_buckets]
        return q * r if self.combine == "mult" else q + r

    def dot_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        n = self.num_embeddings
        ids = torch.arange(n, device=user_vecs.device)
        if self.combine == "sum":
            uq, ur = user_vecs @ self.quotient.T, user_vecs @ self.remainder.T
            return uq[:, ids // self.n_buckets] + ur[:, ids % self.n_buckets]
        return blockwise_dot(user_vecs, n, lambda s, e: self.forward(ids[s:e]))
