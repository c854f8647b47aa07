"""`SASRec` ("sasrec"): causal self-attention over the user's latest ratings.

Kang & McAuley (ICDM 2018): item embeddings plus learned position embeddings, ``n_blocks``
Transformer blocks (pre-norm here, GELU feed-forward) under a causal mask, so position
``t`` attends to positions ``<= t`` only, and the last hidden state scored against the
tied item embeddings. Trained on every position's next item. The original BCE with one
sampled negative (``loss="bce"``) is over-confident for popular items; full-softmax
cross-entropy (the default) and gSASRec's generalised BCE (``loss="gbce"``, Petrov &
Macdonald 2023) are the fixes; see `cinerec.models.sequence.base`.

Padding: windows are left-padded. A padded position attends only to itself, so no
row of the attention is empty, and real positions never attend to padding.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field
from torch import Tensor, nn

from cinerec.errors import ConfigError
from cinerec.models.base import ModelConfig
from cinerec.models.search import Choice, FloatRange, IntRange, Param
from cinerec.models.sequence.base import SequenceConfig, SequenceModule, SequenceRecommender
from cinerec.train.sequences import N_GAP_TOKENS, n_rating_tokens


class SASRecConfig(SequenceConfig):
    n_blocks: int = Field(2, ge=1, le=12)
    n_heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


class SASRecModule(SequenceModule):
    def __init__(self, n_items: int, n_ratings: int, config: SASRecConfig):
        d = config.embedding_dim
        if d % config.n_heads:
            raise ConfigError(f"embedding_dim={d} must be a multiple of n_heads={config.n_heads}")
        super().__init__(n_items, d, n_ratings, N_GAP_TOKENS, config)
        self.n_heads = config.n_heads
        self.pos_emb = nn.Embedding(config.max_len, d)
        layer = nn.TransformerEncoderLayer(d, config.n_heads, dim_feedforward=d, dropout=config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, config.n_blocks, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def encode(self, items: Tensor, ratings: Tensor, gaps: Tensor) -> Tensor:
        b, length = items.shape
        positions = torch.arange(length, device=items.device) + (self.pos_emb.num_embeddings - length)
        x = self.embed(items, ratings, gaps) + self.pos_emb(positions)[None]
        pad = items == 0
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).triu(1)
        blocked = causal[None] | pad[:, None, :]
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=items.device)[None]
        mask = blocked.repeat_interleave(self.n_heads, dim=0)
        return self.norm(self.blocks(x, mask=mask))


class SASRec(SequenceRecommender):
    """Self-attention over the last ``max_len`` ratings, next-item objective."""

    name = "sasrec"
    Config: ClassVar[type[ModelConfig]] = SASRecConfig
    search_space: ClassVar[dict[str, Param]] = {
        "embedding_dim": Choice((32, 64, 128)), "n_blocks": IntRange(1, 3), "dropout": FloatRange(0.0, 0.5),
        "lr": FloatRange(1e-4, 1e-2, log=True), "max_len": Choice((25, 50, 100, 200)),
    }  # fmt: skip

    def build_module(self) -> nn.Module:
        return SASRecModule(self.n_items_, n_rating_tokens(self.rating_scale_), self.config)
