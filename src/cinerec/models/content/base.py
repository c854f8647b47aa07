"""`ContentRecommender`: the base of the models that score a movie from what it is.

On top of `TorchRecommender` it owns the item-feature pipeline:

- at fit, `ItemEncoder` (`cinerec.features.items`) is fitted on the movies that have a
  training rating and encodes the whole catalogue; the matrix lives in the module as
  the buffer ``item_x``, so it is saved with the weights, and the encoder's JSON is
  saved in ``config.json`` (`artifact_extra`), so a loaded artifact encodes a movie it
  has never seen from its metadata alone (`predict_new_items`);
- every item in the catalogue is scored from its features (``handles_cold_items``):
  a movie without a training rating gets a real prediction, not the fallback. Models
  that also learn a per-movie id embedding drop it (zero it) for a share of training
  rows (``id_dropout``) and for every cold movie at prediction, so the network has
  learnt what to do without it.

Subclasses build the module; it must provide ``forward(users, items)`` and
``forward_features(users, x)`` for rows of encoded item features of new movies.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from pydantic import Field, field_validator
from torch import Tensor, nn

from cinerec.data.dataset import Dataset
from cinerec.errors import ConfigError
from cinerec.features.items import GROUPS, ItemEncoder, add_derived_columns
from cinerec.models.explain import Explanation, ScoreShares
from cinerec.models.torch.base import TorchModelConfig, TorchRecommender, _triples


class ContentConfig(TorchModelConfig):
    #: Item feature groups (`cinerec.features.items.GROUPS`): genres, year, tags, tmdb, imdb.
    item_features: tuple[str, ...] = ("genres", "year")
    scaler: str = "minmax"
    #: Share of training rows whose movie-id embedding is zeroed (so cold movies, which
    #: have none, are predicted from features by a network that has seen that case).
    id_dropout: float = Field(0.1, ge=0, lt=1)

    @field_validator("item_features")
    @classmethod
    def _known_groups(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [g for g in v if g not in GROUPS]
        if unknown:
            raise ValueError(f"unknown item feature group(s) {unknown}; known: {', '.join(GROUPS)}")
        return tuple(dict.fromkeys(v))

    @field_validator("scaler")
    @classmethod
    def _known_scaler(cls, v: str) -> str:
        if v not in ("minmax", "standard"):
            raise ValueError(f"scaler must be 'minmax' or 'standard', got {v!r}")
        return v


def item_table(train: Dataset) -> pl.DataFrame:
    """The item table content features read (with derived columns such as tags)."""
    if train.items_meta is None:
        raise ConfigError(
            f"data set {train.name!r} has no item table (movies file); content models need one"
        )
    return add_derived_columns(train.items_meta, train.tags)


class ContentRecommender(TorchRecommender):
    """Base of feature-based torch models (see the module docstring)."""

    Config: ClassVar[type[ContentConfig]] = ContentConfig
    handles_cold_items = True

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.encoder_: ItemEncoder | None = None
        self._item_x: np.ndarray | None = None

    # ---- metadata --------------------------------------------------------------------------
    def required_metadata(self) -> tuple[str, ...]:
        """Metadata sources (`cinerec.data.metadata.SOURCES`) the config's features need."""
        return tuple(s for s in ("tmdb", "imdb") if s in self.config.item_features)

    @property
    def n_item_features(self) -> int:
        return self.encoder_.n_features if self.encoder_ is not None else 0

    def _prepare_training(self, train: Dataset) -> None:
        items = item_table(train)
        fit_items = np.flatnonzero(train.item_counts > 0)
        self.encoder_ = ItemEncoder.fit(items, fit_items, self.config.item_features, self.config.scaler)
        self._item_x = self.encoder_.transform(items)
        self._prepare_content(train, items)

    def _prepare_content(self, train: Dataset, items: pl.DataFrame) -> None:
        """Hook for subclasses: more train-only item inputs (title tokens, text vectors)."""

    def item_feature_matrix(self) -> np.ndarray:
        """(n_items, n_item_features) encoded features of the catalogue."""
        self._check_fitted()
        return self._module().item_x.cpu().numpy()

    # ---- new movies ---------------------------------------------------------------------
    def encode_items(self, items: pl.DataFrame) -> np.ndarray:
        """Encoded features of movies given as rows in the item-table format (``title``,
        ``year``, ``genres`` as a list, ``tmdb_*`` / ``imdb_*`` columns where used)."""
        self._check_fitted()
        if self.encoder_ is None:
            raise ConfigError(f"{self.name!r} has no item-feature encoder")
        return self.encoder_.transform(add_derived_columns(items))

    def predict_new_items(self, users: np.ndarray, items: pl.DataFrame) -> np.ndarray:
        """(len(users), items.height) predicted ratings of movies that are not in the
        catalogue, from their metadata alone (cold users get the global mean)."""
        x = torch.as_tensor(self.encode_items(items), device=self.device)
        extra = self._new_item_inputs(items)
        users = np.asarray(users, dtype=np.int64)
        warm = self._warm_users(users)
        out = np.full((users.shape[0], items.height), self.global_mean_, dtype=np.float32)
        module = self._module()
        module.eval()
        with torch.no_grad():
            for r in np.flatnonzero(warm):
                u = torch.full((items.height,), int(users[r]), dtype=torch.long, device=self.device)
                out[r] = module.forward_features(u, x, **extra).float().cpu().numpy()
        return self._clip(out)

    def _new_item_inputs(self, items: pl.DataFrame) -> dict[str, Any]:
        """Extra per-movie inputs of new movies (e.g. title token ids) for forward_features."""
        return {}

    # ---- the TorchRecommender hooks every content model shares ---------------------------
    def train_tensors(self, train: Dataset) -> dict[str, Tensor]:
        return _triples(train)

    def _predict_module(self, users: Tensor, items: Tensor) -> Tensor:
        return self._module()(users, items)

    def _score_module(self, users: Tensor) -> Tensor:
        return self._module().score_grid(users)

    # ---- explanations ----------------------------------------------------------------------
    def explain(self, user: int, item: int) -> Explanation | None:
        """Share of the user half and of the movie half of the network's input in the
        prediction (gradient x input, normalised to sum 1), and the strength in [0, 1]."""
        self._check_fitted()
        if not (self._warm_users(np.array([user]))[0] and self._warm_items(np.array([item]))[0]):
            return None
        module = self._module()
        module.eval()
        u = torch.tensor([int(user)], device=self.device)
        i = torch.tensor([int(item)], device=self.device)
        with torch.enable_grad():
            u_in, i_in = (h.detach().requires_grad_(True) for h in module.halves(u, i))
            rating = module.to_rating(module.mlp(torch.cat([u_in, i_in], -1)).squeeze(-1))
            gu, gi = torch.autograd.grad(rating.sum(), (u_in, i_in))
        share = torch.stack([(gu * u_in).sum().abs(), (gi * i_in).sum().abs()]).detach()
        total = float(share.sum())
        us = float(share[0]) / total if total > 0 else 0.5
        lo, hi = self.rating_scale_
        strength = min(max((float(rating.detach()[0]) - lo) / (hi - lo), 0.0), 1.0)
        return ScoreShares(us, 1.0 - us, strength, "gradient_x_input")

    # ---- artifacts --------------------------------------------------------------------------
    def artifact_extra(self) -> dict[str, Any]:
        extra = super().artifact_extra()
        extra["item_encoder"] = self.encoder_.to_json() if self.encoder_ is not None else None
        return extra

    def apply_artifact_extra(self, extra: dict[str, Any]) -> None:
        super().apply_artifact_extra(extra)
        data = extra.get("item_encoder")
        self.encoder_ = ItemEncoder.from_json(data) if data is not None else None
        self._item_x = None  # the module's buffer is loaded with the weights

    def _item_x_or_zeros(self) -> np.ndarray:
        """The encoded catalogue at fit, zeros of the right shape when loading (the
        buffer is then filled from the weights)."""
        if self._item_x is not None:
            return self._item_x
        return np.zeros((self.n_items_, self.n_item_features), dtype=np.float32)

    def _check_state(self) -> None:
        x = self._module().item_x
        self._expect_shape("item features", tuple(x.shape), (self.n_items_, self.n_item_features))


def grid_through_mlp(mlp: nn.Sequential, user_in: Tensor, item_in: Tensor, max_cells: int = 1 << 23) -> Tensor:
    """``mlp(cat(user_in[u], item_in[i]))[..., 0]`` for every (user, item) pair, with the
    first Linear layer split into its user and item halves: the item half is computed
    once per movie instead of once per pair (the whole cost of a wide title input)."""
    first = mlp[0]
    du = user_in.shape[1]
    hu = user_in @ first.weight[:, :du].T
    hi = item_in @ first.weight[:, du:].T + first.bias
    n_items, width = hi.shape
    out = torch.empty(user_in.shape[0], n_items, device=hi.device)
    rest = mlp[1:]
    step = max(1, max_cells // max(n_items * width, 1))
    for s in range(0, user_in.shape[0], step):
        h = (hu[s : s + step, None, :] + hi[None, :, :]).reshape(-1, width)
        out[s : s + step] = rest(h).view(-1, n_items)
    return out


def id_keep(item_warm: Tensor, items: Tensor, training: bool, dropout: float) -> Tensor:
    """(B, 1) float mask of the movie-id parts to keep: 0 for movies without training
    ratings and, while training, for a random ``dropout`` share of rows."""
    keep = item_warm[items]
    if training and dropout:
        keep = keep & (torch.rand(items.shape[0], device=items.device) >= dropout)
    return keep[:, None].float()
