"""Product and residual quantization: k-means quality, scoring, storage."""

from __future__ import annotations

import pytest
import torch

from cinerec.compress.vq import PQEmbedding, RQEmbedding, kmeans
from cinerec.errors import ConfigError


def _clustered(n: int = 400, d: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(12, d, generator=g) * 2
    return centers[torch.randint(12, (n,), generator=g)] + 0.3 * torch.randn(n, d, generator=g)


def _mse(mod: torch.nn.Module, w: torch.Tensor) -> float:
    with torch.no_grad():
        return float(((mod(torch.arange(w.shape[0])) - w) ** 2).mean())


def test_kmeans_is_seeded_and_beats_its_init() -> None:
    x = _clustered()
    c1, l1 = kmeans(x, 12, iters=0, seed=3, init="random")
    c2, l2 = kmeans(x, 12, iters=20, seed=3, init="random")
    c3, l3 = kmeans(x, 12, iters=20, seed=3, init="random")
    assert torch.equal(c2, c3) and torch.equal(l2, l3)
    assert ((x - c2[l2]) ** 2).sum() <= ((x - c1[l1]) ** 2).sum()


def test_pq_kmeans_codebooks_beat_random_codebooks() -> None:
    w = _clustered()
    pq = PQEmbedding.from_float(w, n_subvectors=4, n_centroids=16, seed=0)
    rand = PQEmbedding(w.shape[0], 16, 4, 16, "float32")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        rand.codebooks.copy_(torch.randn(4, 16, 4, generator=g))
        rand.codes.copy_(torch.randint(0, 16, (w.shape[0], 4), generator=g).to(torch.uint8))
    assert _mse(pq, w) < 0.5 * _mse(rand, w)


def test_rq_more_stages_reconstruct_better() -> None:
    w = torch.randn(300, 8, generator=torch.Generator().manual_seed(4))
    e1 = _mse(RQEmbedding.from_float(w, n_stages=1, n_centroids=16), w)
    e3 = _mse(RQEmbedding.from_float(w, n_stages=3, n_centroids=16), w)
    assert e3 < e1


@pytest.mark.parametrize("batch", [1, 5, 33])
def test_dot_all_equals_reconstructed_matmul(batch: int) -> None:
    w = _clustered(200, 16)
    u = torch.randn(batch, 16)
    for mod in (PQEmbedding.from_float(w, 4, 32), RQEmbedding.from_float(w, 2, 32)):
        assert mod.codebooks.dtype == torch.float16 and mod.codes.dtype == torch.uint8
        with torch.no_grad():
            expected = u @ mod(torch.arange(200)).T
        assert torch.allclose(mod.dot_all(u), expected, atol=1e-4, rtol=1e-4)


def test_codebooks_are_trainable_with_codes_fixed() -> None:
    w = _clustered(100, 8)
    pq = PQEmbedding.from_float(w, 2, 8, codebook_dtype="float32")
    codes = pq.codes.clone()
    before = _mse(pq, w * 1.5)
    opt = torch.optim.Adam([pq.codebooks], lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        ((pq(torch.arange(100)) - w * 1.5) ** 2).mean().backward()
        opt.step()
    assert _mse(pq, w * 1.5) < before
    assert torch.equal(pq.codes, codes)


def test_pq_storage_and_validation() -> None:
    pq = PQEmbedding(1000, 16, 4, 256)
    assert pq.nbytes() == 1000 * 4 + 4 * 256 * 4 * 2
    with pytest.raises(ConfigError):
        PQEmbedding(10, 10, 3)
