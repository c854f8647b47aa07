"""`TextHybrid` ("text-hybrid"): paper 003's movie-id + title-token networks.

Paper 003 (section "Model Architecture"): a movie-id embedding (50) and the movie's
title as token ids (vocabulary of the 5,000 most frequent words, padded to 15)
embedded at 50 d, both flattened and concatenated, then Dense 128 -> Dense 64 (ReLU,
dropout 0.3 after each) and one linear output; Adam 1e-3, batch 64, at most 10
epochs with early stopping. Its three models differ only in the token embedding
(``title_vectors``):

- ``"trainable"``: learnt from scratch (the paper's "deep learning model");
- ``"frozen"``: pretrained word vectors, not updated (the "GloVe model");
- ``"finetuned"``: pretrained, then updated (the "fine-tuned GloVe model").

Pretrained vectors are never downloaded: ``vectors=PATH`` names a GloVe-format text
file; without it they are the token embeddings of the BERT-family encoder that the
``content`` extra installs (all-MiniLM-L6-v2, 384 d; a word is the mean of its
WordPiece pieces), see `cinerec.features.text`.

For MovieLens ratings the model adds what a rating needs and the paper's movie-level
task did not: a user embedding (``user_factors``) and optional item features
(``item_features``, e.g. genres). ``preset="paper"`` is the paper's network and
training exactly (no user input, title + movie id only), for its own task: predict
TMDB ``vote_average`` (benchmarks/content.py builds that one-user data set).
A movie without a training rating keeps its title: its id embedding is zeroed (the
network saw that for ``id_dropout`` of the training rows).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.errors import ConfigError
from cinerec.features.text import Vocabulary, glove_vectors, wordpiece_vectors
from cinerec.models.content.base import ContentConfig, ContentRecommender, grid_through_mlp, id_keep
from cinerec.models.search import Choice, FloatRange, Param

_PAPER = {
    "item_features": (), "user_factors": 0, "item_factors": 50, "title_dim": 50, "vocab_size": 5000, "max_len": 15,
    "layers": (128, 64), "dropout": 0.3, "epochs": 10, "batch_size": 64, "lr": 1e-3, "optimizer": "adam",
    "weight_decay": 0.0, "early_stopping_patience": 3, "schedule": "none", "title_pooling": "flatten",
}  # fmt: skip


class TextHybridConfig(ContentConfig):
    #: "paper" forces paper 003's network and training (no user input).
    preset: Literal["default", "paper"] = "default"
    title_vectors: Literal["trainable", "frozen", "finetuned"] = "trainable"
    #: A GloVe-format text file of pretrained word vectors; None = the encoder's tokens.
    vectors: str | None = None
    #: A sentence-transformers folder for the token vectors; None = the content extra's wheel.
    encoder: str | None = None
    title_dim: int = Field(50, ge=1)
    vocab_size: int = Field(5000, ge=1)
    max_len: int = Field(15, ge=1)
    title_pooling: Literal["flatten", "mean"] = "flatten"
    item_features: tuple[str, ...] = ("genres", "year")
    user_factors: int = Field(50, ge=0)
    item_factors: int = Field(50, ge=0)
    layers: tuple[int, ...] = (128, 64)
    dropout: float = Field(0.3, ge=0, lt=1)
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    early_stopping_patience: int | None = 3

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") == "paper":
            data = dict(data) | _PAPER
        return data


class TextHybridModule(nn.Module):
    def __init__(
        self, n_users: int, n_items: int, item_x: np.ndarray, tokens: np.ndarray, vocab_size: int, token_dim: int,
        cfg: TextHybridConfig, global_mean: float,
    ):  # fmt: skip
        super().__init__()
        self.register_buffer("item_x", torch.as_tensor(item_x, dtype=torch.float32))
        self.register_buffer("tokens", torch.as_tensor(tokens, dtype=torch.long))
        self.register_buffer("item_warm", torch.ones(n_items, dtype=torch.bool))
        self.user_emb = nn.Embedding(n_users, cfg.user_factors) if cfg.user_factors else None
        self.item_emb = nn.Embedding(n_items, cfg.item_factors) if cfg.item_factors else None
        self.token_emb = nn.Embedding(vocab_size, token_dim, padding_idx=0)
        self.pooling = cfg.title_pooling
        self.id_dropout = cfg.id_dropout
        title_width = token_dim * (cfg.max_len if cfg.title_pooling == "flatten" else 1)
        width = title_width + item_x.shape[1] + cfg.user_factors + cfg.item_factors
        blocks: list[nn.Module] = []
        for size in cfg.layers:
            blocks += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = size
        out = nn.Linear(width, 1)
        nn.init.constant_(out.bias, global_mean)
        self.mlp = nn.Sequential(*blocks, out)

    def title(self, tokens: Tensor) -> Tensor:
        e = self.token_emb(tokens)
        if self.pooling == "flatten":
            return e.flatten(1)
        mask = (tokens > 0).float()[..., None]
        return (e * mask).sum(1) / mask.sum(1).clamp(min=1)

    def user_inputs(self, users: Tensor) -> Tensor:
        if self.user_emb is None:
            return torch.zeros(users.shape[0], 0, device=users.device)
        return self.user_emb(users)

    def item_inputs(self, items: Tensor | None, x: Tensor, tokens: Tensor) -> Tensor:
        """Title, features and id embedding (zeroed for cold and new movies, and for
        ``id_dropout`` of training rows)."""
        parts = [self.title(tokens), x]
        if self.item_emb is not None:
            if items is None:
                parts.append(torch.zeros(x.shape[0], self.item_emb.embedding_dim, device=x.device))
            else:
                parts.append(self.item_emb(items) * id_keep(self.item_warm, items, self.training, self.id_dropout))
        return torch.cat(parts, -1)

    def halves(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """(user half, movie half) of the input of known pairs (for explanations)."""
        return self.user_inputs(users), self.item_inputs(items, self.item_x[items], self.tokens[items])

    def to_rating(self, out: Tensor) -> Tensor:
        return out

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        item_in = self.item_inputs(items, self.item_x[items], self.tokens[items])
        return self.mlp(torch.cat([self.user_inputs(users), item_in], -1)).squeeze(-1)

    def forward_features(self, users: Tensor, x: Tensor, tokens: Tensor) -> Tensor:
        return self.mlp(torch.cat([self.user_inputs(users), self.item_inputs(None, x, tokens)], -1)).squeeze(-1)

    def score_grid(self, users: Tensor) -> Tensor:
        items = torch.arange(self.item_x.shape[0], device=users.device)
        return grid_through_mlp(self.mlp, self.user_inputs(users), self.item_inputs(items, self.item_x, self.tokens))


class TextHybrid(ContentRecommender):
    """Paper 003's title-embedding hybrid (see the module docstring)."""

    name = "text-hybrid"
    Config: ClassVar[type[TextHybridConfig]] = TextHybridConfig
    scores_pairs = True
    search_space: ClassVar[dict[str, Param]] = {
        "lr": FloatRange(1e-4, 1e-2, log=True), "weight_decay": FloatRange(1e-7, 1e-3, log=True),
        "dropout": FloatRange(0.0, 0.5), "batch_size": Choice((64, 128, 256, 512)),
    }  # fmt: skip

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.vocab_: Vocabulary | None = None
        self.token_dim_: int = self.config.title_dim
        self.vector_report_: dict[str, Any] = {}

    @property
    def embedding_paths(self) -> tuple[str, ...]:  # type: ignore[override]
        c = self.config
        return tuple(p for p, n in (("user_emb", c.user_factors), ("item_emb", c.item_factors)) if n) + ("token_emb",)

    def _prepare_content(self, train: Dataset, items: pl.DataFrame) -> None:
        c = self.config
        titles = _titles(items)
        rated = train.item_counts > 0
        self.vocab_ = Vocabulary.fit([t for t, r in zip(titles, rated, strict=True) if r], c.vocab_size)
        self._tokens = self.vocab_.encode(titles, c.max_len)
        self._pretrained = None
        if c.title_vectors != "trainable":
            if c.vectors is not None:
                table, hit = glove_vectors(c.vectors, self.vocab_)
                source = f"GloVe file {c.vectors}"
            else:
                table, hit = wordpiece_vectors(self.vocab_, c.encoder)
                source = "encoder token embeddings"
            self._pretrained = table
            self.vector_report_ = {"source": source, "dim": int(table.shape[1]), "coverage": float(hit)}
            self.token_dim_ = int(table.shape[1])
        else:
            self.token_dim_ = c.title_dim
        self._item_warm = rated

    def build_module(self) -> nn.Module:
        if self.vocab_ is None:
            raise ConfigError(f"{self.name!r} has no vocabulary (fit it or load an artifact)")
        tokens = getattr(self, "_tokens", None)
        if tokens is None:
            tokens = np.zeros((self.n_items_, self.config.max_len), dtype=np.int64)
        m = TextHybridModule(
            self.n_users_, self.n_items_, self._item_x_or_zeros(), tokens, len(self.vocab_), self.token_dim_,
            self.config, self.global_mean_,
        )  # fmt: skip
        pretrained = getattr(self, "_pretrained", None)
        if pretrained is not None:
            with torch.no_grad():
                m.token_emb.weight.copy_(torch.from_numpy(pretrained))
                m.token_emb.weight[0].zero_()
            self._pretrained = None
        m.token_emb.weight.requires_grad_(self.config.title_vectors != "frozen")
        warm = getattr(self, "_item_warm", None)
        if warm is not None:
            m.item_warm.copy_(torch.from_numpy(warm))
        return m

    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        pred = module(batch["user"], batch["item"])
        return ((pred.float() - batch["rating"]) ** 2).mean()

    def _new_item_inputs(self, items: pl.DataFrame) -> dict[str, Any]:
        tokens = self.vocab_.encode(_titles(items), self.config.max_len)
        return {"tokens": torch.as_tensor(tokens, device=self.device)}

    @torch.no_grad()
    def _item_vectors(self) -> np.ndarray | None:
        module = self._module()
        return module.title(module.tokens).float().cpu().numpy()

    def artifact_extra(self) -> dict[str, Any]:
        extra = super().artifact_extra()
        extra["vocabulary"] = self.vocab_.tokens if self.vocab_ is not None else None
        extra["token_dim"] = self.token_dim_
        return extra

    def apply_artifact_extra(self, extra: dict[str, Any]) -> None:
        super().apply_artifact_extra(extra)
        tokens = extra.get("vocabulary")
        self.vocab_ = Vocabulary(tokens) if tokens is not None else None
        self.token_dim_ = int(extra.get("token_dim") or self.config.title_dim)
        self._tokens = None
        self._item_warm = None


def _titles(items: pl.DataFrame) -> list[str]:
    if "title" not in items.columns:
        raise ConfigError("text-hybrid needs a title column in the item table")
    return [t or "" for t in items.get_column("title").cast(pl.String).to_list()]
