"""Hashed and quotient-remainder embeddings."""

from __future__ import annotations

import numpy as np
import torch

from cinerec.compress.hashing import (
    HashedEmbedding,
    QREmbedding,
    collision_rate,
    expected_collision_rate,
    hash_ids,
    hash_ids_np,
    hash_params,
)


def test_torch_and_numpy_hashes_agree_and_stay_in_range() -> None:
    ids = np.arange(0, 10**6, 37)
    for a, b in hash_params(5, 2):
        h_np = hash_ids_np(ids, 1000, a, b)
        h_t = hash_ids(torch.from_numpy(ids), 1000, a, b).numpy()
        assert np.array_equal(h_np, h_t)
        assert h_np.min() >= 0 and h_np.max() < 1000


def test_collision_rate_matches_birthday_formula() -> None:
    for n, buckets in ((5000, 20000), (5000, 5000), (2000, 500)):
        measured = collision_rate(n, buckets, seed=1)
        expected = expected_collision_rate(n, buckets)
        assert abs(measured - expected) < 0.05, (n, buckets, measured, expected)
    assert collision_rate(3000, 1000, n_hashes=2) < collision_rate(3000, 1000, n_hashes=1)


def test_hashed_embedding_scores_and_warm_start() -> None:
    w = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    for n_hashes in (1, 2):
        h = HashedEmbedding.from_float(w, 100, n_hashes=n_hashes, seed=3)
        u = torch.randn(4, 8)
        with torch.no_grad():
            assert torch.allclose(h.dot_all(u), u @ h(torch.arange(500)).T, atol=1e-4)
        assert h.nbytes() == 100 * 8 * 4


def test_qr_embedding_unique_pairs_and_scoring() -> None:
    w = torch.randn(103, 6, generator=torch.Generator().manual_seed(1))
    for combine in ("mult", "sum"):
        qr = QREmbedding.from_float(w, 10, combine)
        assert qr.quotient.shape == (11, 6) and qr.remainder.shape == (10, 6)
        u = torch.randn(3, 6)
        with torch.no_grad():
            assert torch.allclose(qr.dot_all(u), u @ qr(torch.arange(103)).T, atol=1e-4)
