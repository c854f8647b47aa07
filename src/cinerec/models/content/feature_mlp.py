"""`FeatureMLP` ("feature-mlp"): paper 004's feature networks, with its five models as presets.

Paper 004 predicts a rating (MinMax-normalised to [0, 1]) with a plain MLP over
per-row features: the movie's genres (one-hot), the six rating statistics of the
user and the movie (mean, sd, count; computed *after* the split, on train only)
and, in models 2-4, TMDB and IMDb metadata. Model 1 has 28 inputs: the raw
``userId`` and ``movieId`` numbers, 20 genres and the six statistics; it is
28 -> 256 -> 128 -> 64 -> 32 -> 1 with dropout 0.2 in two layers, 50 epochs,
batch 1024 (`PRESETS`).

What we keep and what we change, and why:

- ``preset="paper-1"`` .. ``"paper-4"`` set the paper's inputs and network (models 2-4
  use our TMDB / IMDb feature groups; model 3's 1092 -> 2048 -> 512 -> 256 -> 64 -> 16
  network is used for the IMDb presets). Model 5 is model 4 on ML-1M: the same
  preset on a larger release.
- The six statistics of a *training* row include that row's own rating, which the
  paper did not correct: a movie rated once has a mean equal to the target. With
  ``loo_stats=True`` (the default; off in the paper presets) training rows see the
  statistics without their own rating (leave-one-out), the same information a test
  row has; the network then also learns what a movie with no rating looks like,
  which is what a cold movie is.
- Optional user and movie id embeddings (``user_factors`` / ``item_factors``) turn it
  into a hybrid; the paper's model has none (0).
- The target is the normalised rating as in the paper; predictions are mapped back,
  so every metric we report is on the real star scale (the paper's RMSE is on the
  [0, 1] scale: multiply ours by 1 / (max - min) to compare).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.models.content.base import ContentConfig, ContentRecommender, grid_through_mlp, id_keep
from cinerec.models.search import Choice, FloatRange, IntRange, Param

#: Paper 004's five models (model 5 = model 4 on a larger release).
PRESETS: dict[str, dict[str, Any]] = {
    "paper-1": {"item_features": ("genres",), "raw_ids": True, "layers": (256, 128, 64, 32), "dropout": (0.2, 0.2, 0.0, 0.0)},
    "paper-2": {"item_features": ("genres", "tmdb"), "raw_ids": True, "layers": (256, 128, 64, 32), "dropout": (0.2, 0.2, 0.0, 0.0)},
    "paper-3": {"item_features": ("genres", "imdb"), "raw_ids": True, "layers": (2048, 512, 256, 64, 16), "dropout": (0.2, 0.2, 0.2, 0.0, 0.0)},
    "paper-4": {"item_features": ("genres", "tmdb", "imdb"), "raw_ids": True, "layers": (2048, 512, 256, 64, 16), "dropout": (0.2, 0.2, 0.2, 0.0, 0.0)},
}  # fmt: skip
_PAPER_TRAINING = {
    "epochs": 50, "batch_size": 1024, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
    "loo_stats": False, "user_factors": 0, "item_factors": 0, "id_dropout": 0.0,
    "early_stopping_patience": None, "schedule": "none", "scaler": "minmax",
}  # fmt: skip


class FeatureMLPConfig(ContentConfig):
    #: "paper-1" .. "paper-4" force paper 004's inputs, network and training (`PRESETS`).
    preset: Literal["default", "paper-1", "paper-2", "paper-3", "paper-4"] = "default"
    item_features: tuple[str, ...] = ("genres", "year", "tags")
    #: The six train-only rating statistics of user and movie (paper 004).
    rating_stats: bool = True
    #: Training rows see the statistics without their own rating (see the module doc).
    loo_stats: bool = True
    #: The raw user and movie index numbers, scaled to [0, 1], as inputs (paper 004).
    raw_ids: bool = False
    user_factors: int = Field(32, ge=0)
    item_factors: int = Field(32, ge=0)
    layers: tuple[int, ...] = (256, 128, 64, 32)
    dropout: tuple[float, ...] = (0.2, 0.2, 0.0, 0.0)
    epochs: int = 50
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    early_stopping_patience: int | None = 3

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            data = dict(data) | _PAPER_TRAINING | PRESETS[data["preset"]]
        return data

    @model_validator(mode="after")
    def _check_layers(self) -> FeatureMLPConfig:
        if len(self.layers) != len(self.dropout) or not self.layers:
            raise ValueError(f"layers {self.layers} and dropout {self.dropout} must be non-empty and the same length")
        if any(not 0 <= p < 1 for p in self.dropout):
            raise ValueError(f"dropout rates must be in [0, 1), got {self.dropout}")
        return self


class RatingStats(nn.Module):
    """The six statistics as buffers of per-user / per-movie sums, so a training row can
    leave its own rating out; scaled: mean to [0, 1] on the rating scale, sd / half the
    span, log1p(count) / log1p(max count)."""

    def __init__(self, n_users: int, n_items: int, rating_scale: tuple[float, float]):
        super().__init__()
        for side, n in (("user", n_users), ("item", n_items)):
            for what in ("sum", "sumsq", "count"):
                self.register_buffer(f"{side}_{what}", torch.zeros(n, dtype=torch.float32))
        self.register_buffer("glob", torch.zeros(2, dtype=torch.float32))  # mean, sd
        self.register_buffer("max_log_count", torch.ones(1, dtype=torch.float32))
        self.lo, self.span = float(rating_scale[0]), float(rating_scale[1] - rating_scale[0])

    @torch.no_grad()
    def fill(self, train: Dataset) -> None:
        r = torch.from_numpy(train.ratings.astype(np.float64))
        for side, idx in (("user", train.users), ("item", train.items)):
            i = torch.from_numpy(idx.astype(np.int64))
            n = getattr(self, f"{side}_sum").shape[0]
            for what, v in (("sum", r), ("sumsq", r * r), ("count", torch.ones_like(r))):
                acc = torch.zeros(n, dtype=torch.float64).index_add_(0, i, v)  # exact sums, stored fp32
                getattr(self, f"{side}_{what}").copy_(acc)
        self.glob.copy_(torch.tensor([float(r.mean()), float(r.std(unbiased=False))]))
        mx = max(float(self.user_count.max()), float(self.item_count.max()))
        self.max_log_count.fill_(float(np.log1p(mx)))

    def side(self, side: str, idx: Tensor | None, own: Tensor | None, n: int) -> Tensor:
        """(n, 3) scaled mean, sd, count of one side; ``idx=None``: a new movie; ``own``:
        the rows' own ratings, left out (training rows)."""
        if idx is None:  # a new movie: no ratings at all
            s = torch.zeros(n, device=self.glob.device)
            ss, c = s, s
        else:
            s, ss = getattr(self, f"{side}_sum")[idx], getattr(self, f"{side}_sumsq")[idx]
            c = getattr(self, f"{side}_count")[idx]
            if own is not None:  # leave the row's own rating out
                o = own.float()
                s, ss, c = s - o, ss - o * o, (c - 1).clamp(min=0)
        safe = c.clamp(min=1)
        mean = torch.where(c > 0, s / safe, self.glob[0])
        var = (ss / safe - mean * mean).clamp(min=0)
        sd = torch.where(c > 1, var.sqrt(), self.glob[1])
        return torch.stack(
            [(mean - self.lo) / self.span, sd / (self.span / 2), torch.log1p(c) / self.max_log_count], dim=-1
        ).float()



class FeatureMLPModule(nn.Module):
    def __init__(self, n_users: int, n_items: int, item_x: np.ndarray, cfg: FeatureMLPConfig, rating_scale: tuple[float, float]):
        super().__init__()
        self.register_buffer("item_x", torch.as_tensor(item_x, dtype=torch.float32))
        self.stats = RatingStats(n_users, n_items, rating_scale) if cfg.rating_stats else None
        self.raw_ids = cfg.raw_ids
        self.n_users, self.n_items = n_users, n_items
        self.user_emb = nn.Embedding(n_users, cfg.user_factors) if cfg.user_factors else None
        self.item_emb = nn.Embedding(n_items, cfg.item_factors) if cfg.item_factors else None
        for e in (self.user_emb, self.item_emb):
            if e is not None:
                nn.init.normal_(e.weight, std=0.05)
        self.id_dropout = cfg.id_dropout
        self.register_buffer("item_warm", torch.ones(n_items, dtype=torch.bool))
        width = item_x.shape[1] + (6 if cfg.rating_stats else 0) + (2 if cfg.raw_ids else 0)
        width += cfg.user_factors + cfg.item_factors
        blocks: list[nn.Module] = []
        for size, p in zip(cfg.layers, cfg.dropout, strict=True):
            blocks += [nn.Linear(width, size), nn.ReLU()]
            if p:
                blocks.append(nn.Dropout(p))
            width = size
        self.mlp = nn.Sequential(*blocks, nn.Linear(width, 1))
        self.register_buffer("rating_min", torch.tensor(float(rating_scale[0])))
        self.register_buffer("rating_span", torch.tensor(float(rating_scale[1] - rating_scale[0])))

    def user_inputs(self, users: Tensor, own: Tensor | None = None) -> Tensor:
        """The user half of the network's input (statistics, raw id, embedding)."""
        parts = []
        if self.stats is not None:
            parts.append(self.stats.side("user", users, own, users.shape[0]))
        if self.raw_ids:
            parts.append((users.float() / max(self.n_users - 1, 1))[:, None])
        if self.user_emb is not None:
            parts.append(self.user_emb(users))
        return torch.cat(parts, -1) if parts else torch.zeros(users.shape[0], 0, device=users.device)

    def item_inputs(self, items: Tensor | None, x: Tensor, own: Tensor | None = None) -> Tensor:
        """The movie half: features, statistics, raw id, id embedding (``items=None``:
        new movies, which have no statistics, id or embedding)."""
        n = x.shape[0]
        parts = [x]
        if self.stats is not None:
            parts.append(self.stats.side("item", items, own, n))
        if self.raw_ids:
            i = items.float() / max(self.n_items - 1, 1) if items is not None else torch.zeros(n, device=x.device)
            parts.append(i[:, None])
        if self.item_emb is not None:
            if items is None:
                parts.append(torch.zeros(n, self.item_emb.embedding_dim, device=x.device))
            else:
                parts.append(self.item_emb(items) * id_keep(self.item_warm, items, self.training, self.id_dropout))
        return torch.cat(parts, -1)

    def halves(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """(user half, movie half) of the input of known pairs (for explanations)."""
        return self.user_inputs(users), self.item_inputs(items, self.item_x[items])

    def to_rating(self, out: Tensor) -> Tensor:
        return self.rating_min + self.rating_span * out

    def normalised(self, users: Tensor, items: Tensor | None, x: Tensor, own: Tensor | None = None) -> Tensor:
        return self.mlp(torch.cat([self.user_inputs(users, own), self.item_inputs(items, x, own)], -1)).squeeze(-1)

    def forward(self, users: Tensor, items: Tensor, own: Tensor | None = None) -> Tensor:
        return self.rating_min + self.rating_span * self.normalised(users, items, self.item_x[items], own)

    def forward_features(self, users: Tensor, x: Tensor) -> Tensor:
        return self.rating_min + self.rating_span * self.normalised(users, None, x)

    def score_grid(self, users: Tensor) -> Tensor:
        items = torch.arange(self.item_x.shape[0], device=users.device)
        out = grid_through_mlp(self.mlp, self.user_inputs(users), self.item_inputs(items, self.item_x))
        return self.rating_min + self.rating_span * out


class FeatureMLP(ContentRecommender):
    """Paper 004's feature MLP (see the module docstring for fidelity notes)."""

    name = "feature-mlp"
    Config: ClassVar[type[FeatureMLPConfig]] = FeatureMLPConfig
    scores_pairs = True
    search_space: ClassVar[dict[str, Param]] = {
        "lr": FloatRange(1e-4, 1e-2, log=True), "weight_decay": FloatRange(1e-7, 1e-3, log=True),
        "user_factors": IntRange(0, 64), "item_factors": IntRange(0, 64), "batch_size": Choice((256, 512, 1024)),
    }  # fmt: skip

    @property
    def embedding_paths(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(p for p, n in (("user_emb", self.config.user_factors), ("item_emb", self.config.item_factors)) if n)

    def _prepare_content(self, train: Dataset, items: Any) -> None:
        self._fit_train = train

    def build_module(self) -> nn.Module:
        m = FeatureMLPModule(self.n_users_, self.n_items_, self._item_x_or_zeros(), self.config, self.rating_scale_)
        train = getattr(self, "_fit_train", None)
        if train is not None:
            if m.stats is not None:
                m.stats.fill(train)
            m.item_warm.copy_(torch.from_numpy(train.item_counts > 0))
            self._fit_train = None
        return m

    def batch_loss(self, module: nn.Module, batch: dict[str, Tensor]) -> Any:
        own = batch["rating"] if module.training and self.config.loo_stats else None
        pred = module.normalised(batch["user"], batch["item"], module.item_x[batch["item"]], own)
        target = (batch["rating"] - module.rating_min) / module.rating_span
        return ((pred.float() - target) ** 2).mean()

    @torch.no_grad()
    def _item_vectors(self) -> np.ndarray | None:
        return self.item_feature_matrix()
