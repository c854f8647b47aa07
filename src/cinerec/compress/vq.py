"""Vector quantization of embedding tables: product quantization (PQ, Jegou et al. 2011)
and residual quantization (RQ, Chen et al. 2010), with a vectorised, seeded k-means.

PQ cuts each row into M sub-vectors and stores, per sub-vector, the uint8 index of its
nearest of K <= 256 centroids: a row costs M bytes plus the shared (M, K, d/M) codebook.
RQ quantizes the row with K centroids, then the residual with another K, L times: a row
costs L bytes plus the (L, K, d) codebooks. Scoring a user against all rows uses lookup
tables ``u_m . C_m[k]`` (B x M x K) and a gather-sum over the codes, never the fp32 table.

Codebooks are ``nn.Parameter``s: with the codes fixed they can be fine-tuned end to end by
the model's own Trainer (gradients reach the centroids the batch's rows use); they are
cast to fp16 for storage afterwards (``codebook_dtype``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from cinerec.compress.base import CompressedEmbedding, blockwise_dot
from cinerec.compress.ptq import SMALL_BATCH
from cinerec.errors import ConfigError

_DTYPES = {"float16": torch.float16, "float32": torch.float32}


def _sq_dists(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(n, k) squared Euclidean distances, via ||x||^2 - 2 x.c + ||c||^2 (one matmul)."""
    return (x * x).sum(1, keepdim=True) - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]


def assign(x: torch.Tensor, centroids: torch.Tensor, block: int = 16384) -> torch.Tensor:
    """Index of the nearest centroid for every row of ``x`` (blockwise, int64)."""
    out = torch.empty(x.shape[0], dtype=torch.long)
    for s in range(0, x.shape[0], block):
        out[s : s + block] = _sq_dists(x[s : s + block], centroids).argmin(1)
    return out


def kmeans(
    x: torch.Tensor,
    k: int,
    iters: int = 20,
    seed: int = 0,
    init: Literal["kmeans++", "random"] = "kmeans++",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on (n, d) float rows; returns (centroids (k, d), assignment (n,)).

    ``init="kmeans++"`` samples each next seed proportionally to the squared distance to
    the nearest chosen one (Arthur & Vassilvitskii 2007); "random" takes k distinct rows.
    An empty cluster keeps its previous centroid. Deterministic for a given seed.
    """
    x = x.detach().float().cpu()
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ConfigError(f"k-means needs 1 <= k <= n_rows, got k={k} for {n} rows")
    gen = torch.Generator().manual_seed(seed)
    if init == "random":
        centroids = x[torch.randperm(n, generator=gen)[:k]].clone()
    elif init == "kmeans++":
        centroids = torch.empty(k, x.shape[1])
        centroids[0] = x[torch.randint(n, (1,), generator=gen)]
        d2 = _sq_dists(x, centroids[:1])[:, 0].clamp_min_(0)
        for j in range(1, k):
            total = d2.sum()
            if total <= 0:  # fewer distinct rows than k: any row is as good
                pick = torch.randint(n, (1,), generator=gen)
            else:
                pick = torch.multinomial(d2 / total, 1, generator=gen)
            centroids[j] = x[pick]
            d2 = torch.minimum(d2, _sq_dists(x, centroids[j : j + 1])[:, 0].clamp_min_(0))
    else:
        raise ConfigError(f"k-means init must be 'kmeans++' or 'random', got {init!r}")
    labels = assign(x, centroids)
    for _ in range(iters):
        sums = torch.zeros_like(centroids).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k).float()
        nonempty = counts > 0
        centroids[nonempty] = sums[nonempty] / counts[nonempty, None]
        new = assign(x, centroids)
        if torch.equal(new, labels):
            break
        labels = new
    return centroids, labels


class _CodebookEmbedding(CompressedEmbedding):
    """Shared machinery: uint8 ``codes`` (n, S) and ``codebooks`` (S, K, w)."""

    def _init_buffers(self, n_slots: int, n_centroids: int, width: int, codebook_dtype: str) -> None:
        if not 1 <= n_centroids <= 256:
            raise ConfigError(f"n_centroids must be in 1..256 (uint8 codes), got {n_centroids}")
        if codebook_dtype not in _DTYPES:
            raise ConfigError(f"codebook_dtype must be float16 or float32, got {codebook_dtype!r}")
        self.n_centroids = int(n_centroids)
        self.codebook_dtype = codebook_dtype
        self.register_buffer("codes", torch.zeros(self.num_embeddings, n_slots, dtype=torch.uint8))
        cb = torch.zeros(n_slots, self.n_centroids, width, dtype=_DTYPES[codebook_dtype])
        self.codebooks = nn.Parameter(cb, requires_grad=codebook_dtype == "float32")

    def set_codebook_dtype(self, dtype: str) -> None:
        """Cast the codebooks (``"float16"`` for storage; ``"float32"`` to fine-tune)."""
        if dtype not in _DTYPES:
            raise ConfigError(f"codebook_dtype must be float16 or float32, got {dtype!r}")
        self.codebook_dtype = dtype
        self.codebooks = nn.Parameter(
            self.codebooks.detach().to(_DTYPES[dtype]), requires_grad=dtype == "float32"
        )

    def _gather(self, codes: torch.Tensor) -> torch.Tensor:
        """(b, S) codes -> (b, S, w) float32 centroid rows (differentiable in codebooks)."""
        cb = self.codebooks.float() if self.codebooks.dtype != torch.float32 else self.codebooks
        slots = torch.arange(codes.shape[1], device=codes.device)
        return cb[slots[None, :], codes.long()]

    def _lut(self, u: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _codebooks_np(self) -> np.ndarray:
        """float32 numpy copy of the codebooks, cached until they change (see
        `QuantizedEmbedding._params_f32`: small torch ops stall on a loaded machine)."""
        cb = self.codebooks
        key = (id(cb), cb._version, cb.dtype)
        cached = getattr(self, "_np_cache", None)
        if cached is None or cached[0] != key:
            cached = (key, cb.detach().cpu().numpy().astype(np.float32))
            self._np_cache = cached
        return cached[1]

    def dot_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        u = user_vecs.detach().float()
        with torch.no_grad():
            if u.shape[0] <= SMALL_BATCH and self.codes.device.type == "cpu":
                from cinerec.compress import _kernels

                lut = self._lut(u).contiguous().numpy()
                return torch.from_numpy(_kernels.lut_sum(self.codes.numpy(), lut))
            # Many users: decode a block of rows from the codebooks (n x S gathers), then
            # one BLAS matmul per block. Per-subspace lookup tables with a gather-sum
            # over the codes cost B x n x S gathers instead, which measured slower than
            # the GEMM for B >= 32 (see docs/compression.md).
            return blockwise_dot(u, self.num_embeddings,
                                 lambda s, e: self.forward(torch.arange(s, e, device=u.device)))


class PQEmbedding(_CodebookEmbedding):
    """Product-quantized table: ``n_subvectors`` uint8 codes per row."""

    kind = "pq"

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        n_subvectors: int = 8,
        n_centroids: int = 256,
        codebook_dtype: str = "float16",
    ):
        super().__init__()
        if n_subvectors < 1 or embedding_dim % n_subvectors:
            raise ConfigError(
                f"PQ needs embedding_dim divisible by n_subvectors: {embedding_dim} % "
                f"{n_subvectors} != 0 (pick a divisor of {embedding_dim}, e.g. --subvectors 8)"
            )
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.n_subvectors = int(n_subvectors)
        self.sub_dim = self.embedding_dim // self.n_subvectors
        self._init_buffers(self.n_subvectors, n_centroids, self.sub_dim, codebook_dtype)

    @classmethod
    def from_float(
        cls,
        weight: torch.Tensor,
        n_subvectors: int = 8,
        n_centroids: int = 256,
        iters: int = 20,
        seed: int = 0,
        init: Literal["kmeans++", "random"] = "kmeans++",
        codebook_dtype: str = "float16",
    ) -> PQEmbedding:
        """Fit one k-means per sub-space (K clamped to the number of rows)."""
        w = weight.detach().float().cpu()
        n, d = w.shape
        k = min(n_centroids, n)
        mod = cls(n, d, n_subvectors, k, "float32")
        sub = w.reshape(n, n_subvectors, d // n_subvectors)
        with torch.no_grad():
            for m in range(n_subvectors):
                c, lab = kmeans(sub[:, m], k, iters=iters, seed=seed + m, init=init)
                mod.codebooks[m] = c
                mod.codes[:, m] = lab.to(torch.uint8)
        if codebook_dtype != "float32":
            mod.set_codebook_dtype(codebook_dtype)
        return mod

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "n_subvectors": self.n_subvectors,
                "n_centroids": self.n_centroids, "codebook_dtype": self.codebook_dtype}

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        flat = idx.long().reshape(-1)
        rows = self._gather(self.codes[flat]).reshape(flat.shape[0], self.embedding_dim)
        return rows.reshape(*idx.shape, self.embedding_dim)

    def _lut(self, u: torch.Tensor) -> torch.Tensor:
        us = u.reshape(u.shape[0], self.n_subvectors, self.sub_dim)
        # numpy matmul: torch took ~20-30 ms for this 8 x 256 x 8 product on the loaded
        # test machine (intra-op thread overhead), numpy ~0.02 ms.
        cb = self._codebooks_np()
        lut = np.matmul(us.cpu().numpy().transpose(1, 0, 2), cb.transpose(0, 2, 1))
        return torch.from_numpy(np.ascontiguousarray(lut.transpose(1, 0, 2)))


class RQEmbedding(_CodebookEmbedding):
    """Residual-quantized table: ``n_stages`` uint8 codes per row, x ~ sum_l C_l[c_l]."""

    kind = "rq"

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        n_stages: int = 4,
        n_centroids: int = 256,
        codebook_dtype: str = "float16",
    ):
        super().__init__()
        if n_stages < 1:
            raise ConfigError(f"RQ needs at least one stage, got n_stages={n_stages}")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.n_stages = int(n_stages)
        self._init_buffers(self.n_stages, n_centroids, self.embedding_dim, codebook_dtype)

    @classmethod
    def from_float(
        cls,
        weight: torch.Tensor,
        n_stages: int = 4,
        n_centroids: int = 256,
        iters: int = 20,
        seed: int = 0,
        init: Literal["kmeans++", "random"] = "kmeans++",
        codebook_dtype: str = "float16",
    ) -> RQEmbedding:
        """Greedy residual k-means: stage l quantizes what stages < l left over."""
        w = weight.detach().float().cpu()
        n, d = w.shape
        k = min(n_centroids, n)
        mod = cls(n, d, n_stages, k, "float32")
        resid = w.clone()
        with torch.no_grad():
            for stage in range(n_stages):
                c, lab = kmeans(resid, k, iters=iters, seed=seed + stage, init=init)
                mod.codebooks[stage] = c
                mod.codes[:, stage] = lab.to(torch.uint8)
                resid -= c[lab]
        if codebook_dtype != "float32":
            mod.set_codebook_dtype(codebook_dtype)
        return mod

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "num_embeddings": self.num_embeddings,
                "embedding_dim": self.embedding_dim, "n_stages": self.n_stages,
                "n_centroids": self.n_centroids, "codebook_dtype": self.codebook_dtype}

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        flat = idx.long().reshape(-1)
        # One fused gather-and-sum over the L stages (flat index l * K + code).
        cb = self.codebooks.float() if self.codebooks.dtype != torch.float32 else self.codebooks
        stage = torch.arange(self.n_stages, device=flat.device) * self.n_centroids
        rows = nn.functional.embedding_bag(
            self.codes[flat].long() + stage, cb.reshape(-1, self.embedding_dim), mode="sum")
        return rows.reshape(*idx.shape, self.embedding_dim)

    def _lut(self, u: torch.Tensor) -> torch.Tensor:
        cb = self._codebooks_np().reshape(-1, self.embedding_dim)
        lut = u.cpu().numpy() @ cb.T
        return torch.from_numpy(np.ascontiguousarray(lut.reshape(u.shape[0], self.n_stages, -1)))
