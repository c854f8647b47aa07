"""The `Recommender` contract, the model registry and the shared cold-start fallback.

A model implements four hooks on contiguous indices of *warm* users and items:

- ``_fit(train, valid)``: learn from a train `Dataset` (valid may be None);
- ``_predict(users, items)``: ratings for warm (user, item) pairs, 1-d float arrays;
- ``_score(users)``: a (len(users), n_items) float32 matrix for ranking;
- ``_state()`` / ``_load_state(arrays)``: named numpy arrays for safetensors.

The base class does the rest once for every model: validating the typed config,
computing train-only statistics (counts, baselines, seen items, item risk), the
declared fallback for cold or unknown users/items (Surprise's idea: an unknown id is a
normal, explained path), clipping to the rating scale, `recommend` with exclusion of
seen items, confidence and risk-averse re-ranking, and saving/loading artifacts.

"Warm" means the index is in range and has at least one rating in train. A model that
can score cold users or items itself (feature-based models) sets
``handles_cold_users`` / ``handles_cold_items``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from cinerec.data.dataset import Dataset
from cinerec.errors import ConfigError, NotFittedError, UnknownModel

#: Damping (pseudo-count) of the fallback baselines: an item rated by few users is
#: pulled toward the global mean.
FALLBACK_DAMPING = 10.0


class ModelConfig(BaseModel):
    """Base of every model's hyper-parameters: validated, JSON round-trippable."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    seed: int = 42


# ---------------------------------------------------------------------------------
# Registry: short name -> "module:Class", imported lazily so `cinerec --help` and
# the classic models never pay for importing torch.
# ---------------------------------------------------------------------------------
_REGISTRY: dict[str, str] = {
    "mean": "cinerec.models.baseline:GlobalMean",
    "popular": "cinerec.models.baseline:Popular",
    "bias": "cinerec.models.baseline:Bias",
    "user-knn": "cinerec.models.knn:UserKNN",
    "item-knn": "cinerec.models.knn:ItemKNN",
    "svd": "cinerec.models.mf:SVD",
    "svdpp": "cinerec.models.mf:SVDpp",
    "als": "cinerec.models.mf:ALS",
    "ials": "cinerec.models.implicit_feedback:IALS",
    "ease": "cinerec.models.implicit_feedback:EASE",
    "mf-torch": "cinerec.models.torch_mf:TorchMF",
    "autorec": "cinerec.models.autorec:AutoRec",
    "ncf": "cinerec.models.ncf:NCF",
}


def register(name: str, target: str) -> None:
    """Register a model class under a short name (``target`` = "module:Class")."""
    _REGISTRY[name] = target


def available_models() -> list[str]:
    return list(_REGISTRY)


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``; `UnknownModel` lists the valid names."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise UnknownModel(
            f"no model named {name!r}; available: {', '.join(available_models())}"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def create_model(name: str, config: dict[str, Any] | None = None, **overrides: Any) -> Recommender:
    return model_class(name)(config, **overrides)


# ---------------------------------------------------------------------------------
@dataclass
class Recommendations:
    """Top-K for one user, best first, with everything a person needs to trust it."""

    user: int
    items: np.ndarray
    scores: np.ndarray
    predicted_ratings: np.ndarray | None
    confidence: np.ndarray
    sigma: np.ndarray
    explanations: list[dict[str, Any] | None] = field(default_factory=list)
    fallback: str | None = None

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def to_records(self, dataset: Dataset | None = None) -> list[dict[str, Any]]:
        titles = dataset.item_titles(self.items) if dataset is not None else None
        raw = dataset.item_ids.raw(self.items) if dataset is not None else self.items
        out = []
        for j, item in enumerate(self.items):
            rec: dict[str, Any] = {
                "rank": j + 1,
                "item": int(item),
                "item_id": raw[j].item() if hasattr(raw[j], "item") else raw[j],
                "score": float(self.scores[j]),
                "confidence": float(self.confidence[j]),
                "sigma": float(self.sigma[j]),
            }
            if titles is not None:
                rec["title"] = titles[j]
            if self.predicted_ratings is not None:
                rec["predicted_rating"] = float(self.predicted_ratings[j])
            if self.explanations and self.explanations[j] is not None:
                why = dict(self.explanations[j])
                if dataset is not None and why.get("because_you_rated"):
                    why["because_you_rated_titles"] = list(
                        dataset.item_titles(np.asarray(why["because_you_rated"], dtype=np.int64))
                    )
                rec["explanation"] = why
            if self.fallback:
                rec["fallback"] = self.fallback
            out.append(rec)
        return out


class Recommender(ABC):
    """Base of every model. Subclasses set `name`, `Config` and the hooks."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    #: True when `_predict`/`_score` give ratings on the rating scale (clipped, used
    #: for RMSE); False for pure ranking models (popular, ials, ease).
    predicts_ratings: ClassVar[bool] = True
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any):
        if isinstance(config, ModelConfig):
            data = config.model_dump()
        else:
            data = dict(config or {})
        data.update(overrides)
        try:
            self.config = self.Config.model_validate(data)
        except ValidationError as e:
            raise ConfigError(f"invalid configuration for model {self.name!r}:\n{e}") from None
        self.fitted_ = False
        #: Where the model came from (data set, fingerprint, split, seed): set by the
        #: caller before `save`, written to the manifest.
        self.provenance: dict[str, Any] = {}

    # ---- hooks -----------------------------------------------------------------
    @abstractmethod
    def _fit(self, train: Dataset, valid: Dataset | None) -> None: ...

    @abstractmethod
    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _load_state(self, arrays: dict[str, np.ndarray]) -> None: ...

    def explain(self, user: int, item: int) -> dict[str, Any] | None:
        """Model-specific explanation of one recommendation (None when it has none)."""
        return None

    # ---- public API --------------------------------------------------------------
    def fit(self, train: Dataset, valid: Dataset | None = None) -> Self:
        """Learn from ``train`` (``valid`` for early stopping where a model uses it)."""
        if train.n_ratings == 0:
            raise ConfigError(f"cannot fit {self.name!r} on an empty training set")
        self._fit_common(train)
        self._fit(train, valid)
        self.fitted_ = True
        return self

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for index pairs; -1 / out-of-range / cold use the fallback."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        warm_u, warm_i = self._warm_users(users), self._warm_items(items)
        out = self._fallback_predict(users, items, warm_u, warm_i)
        both = warm_u & warm_i
        if both.any():
            out[both] = self._predict(users[both], items[both])
        if self.predicts_ratings:
            np.clip(out, self.rating_scale_[0], self.rating_scale_[1], out=out)
        return out.astype(np.float32, copy=False)

    def fallback_kind(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per pair: 0 model, 1 cold user (item baseline), 2 cold item (user baseline),
        3 both cold (global mean)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        return (~self._warm_users(users)).astype(np.int8) + 2 * (~self._warm_items(items)).astype(np.int8)

    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) ranking scores over the whole catalogue.

        Cold users get the item baseline. Items without a training rating get -inf
        unless the model handles cold items: a collaborative model has nothing to rank
        them by.
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        out = np.empty((users.shape[0], self.n_items_), dtype=np.float32)
        warm = self._warm_users(users)
        if warm.any():
            out[warm] = self._score(users[warm])
        if (~warm).any():
            out[~warm] = self.item_baseline_[None, :]
        if not self.handles_cold_items:
            out[:, self.item_counts_ == 0] = -np.inf
        return out

    def seen_items(self, user: int) -> np.ndarray:
        """Item indices the user rated in train."""
        if not 0 <= user < self.n_users_:
            return np.empty(0, dtype=np.int32)
        return self.seen_indices_[self.seen_indptr_[user] : self.seen_indptr_[user + 1]]

    def recommend(
        self,
        user: int,
        k: int = 10,
        exclude_seen: bool = True,
        risk_aversion: float = 0.0,
    ) -> Recommendations:
        """Top-``k`` items for a user index (-1 or out of range: unknown user).

        ``risk_aversion`` (lambda >= 0) re-ranks by ``score - lambda * sigma_item``,
        sigma being the item's train-only rating standard deviation (paper 000, 5.3).
        Unknown and cold users get the damped item-mean ranking, flagged in
        ``fallback``.
        """
        self._check_fitted()
        if k <= 0:
            raise ConfigError(f"k must be positive, got {k}")
        if risk_aversion < 0:
            raise ConfigError(f"risk_aversion must be >= 0, got {risk_aversion}")
        user = int(user)
        warm = bool(self._warm_users(np.array([user]))[0])
        fallback = None
        if warm:
            scores = self._score(np.array([user]))[0].astype(np.float64)
            if not self.handles_cold_items:
                scores[self.item_counts_ == 0] = -np.inf
        else:
            scores = self.item_baseline_.astype(np.float64).copy()
            scores[self.item_counts_ == 0] = -np.inf
            fallback = (
                "unknown user: ranked by damped item mean (bias baseline)"
                if not 0 <= user < self.n_users_
                else "user has no training ratings: ranked by damped item mean (bias baseline)"
            )
        ranking = scores - risk_aversion * self.item_sigma_ if risk_aversion else scores
        if exclude_seen and warm:
            ranking[self.seen_items(user)] = -np.inf
        k = min(k, int(np.isfinite(ranking).sum()))
        top = np.argpartition(-ranking, k - 1)[:k] if k else np.empty(0, dtype=np.int64)
        top = top[np.argsort(-ranking[top], kind="stable")]
        predicted = None
        if self.predicts_ratings:
            predicted = self.predict(np.full(top.shape[0], user), top)
        explanations = [self.explain(user, int(i)) for i in top] if warm else []
        return Recommendations(
            user=user,
            items=top.astype(np.int32),
            scores=scores[top].astype(np.float32),
            predicted_ratings=predicted,
            confidence=self.item_confidence_[top],
            sigma=self.item_sigma_[top],
            explanations=explanations,
            fallback=fallback,
        )

    # ---- persistence --------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Every array needed to rebuild the fitted model (base + model state)."""
        self._check_fitted()
        base = {f"_base.{k}": np.asarray(getattr(self, k + "_")) for k in _BASE_STATE}
        model = {f"model.{k}": v for k, v in self._state().items()}
        return base | model

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        for k in _BASE_STATE:
            setattr(self, k + "_", arrays[f"_base.{k}"])
        self.rating_scale_ = tuple(float(x) for x in np.ravel(self.rating_scale_))
        self.n_users_ = int(np.ravel(self.n_users_)[0])
        self.n_items_ = int(np.ravel(self.n_items_)[0])
        self.global_mean_ = float(np.ravel(self.global_mean_)[0])
        self._load_state({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        self.fitted_ = True

    def save(self, path: str | Path, metrics: dict[str, Any] | None = None) -> Path:
        """Write an artifact folder (config.json, model.safetensors, manifest.json)."""
        from cinerec.models.artifact import save_model

        return save_model(self, Path(path), metrics=metrics)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load an artifact folder written by `save` (any registered model)."""
        from cinerec.models.artifact import load_model

        return load_model(Path(path))

    def artifact_extra(self) -> dict[str, Any]:
        """Extra JSON a model needs to rebuild its structure before `_load_state`
        (e.g. a compression spec). Stored in config.json."""
        return {}

    def apply_artifact_extra(self, extra: dict[str, Any]) -> None:
        """Counterpart of `artifact_extra`, called by the loader before `load_state`."""
        return None

    # ---- internals ----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise NotFittedError(f"model {self.name!r} is not fitted: call fit() or load()")

    def _warm_users(self, users: np.ndarray) -> np.ndarray:
        inside = (users >= 0) & (users < self.n_users_)
        if self.handles_cold_users:
            return inside
        ok = inside.copy()
        ok[inside] = self.user_counts_[users[inside]] > 0
        return ok

    def _warm_items(self, items: np.ndarray) -> np.ndarray:
        inside = (items >= 0) & (items < self.n_items_)
        if self.handles_cold_items:
            return inside
        ok = inside.copy()
        ok[inside] = self.item_counts_[items[inside]] > 0
        return ok

    def _fallback_predict(
        self, users: np.ndarray, items: np.ndarray, warm_u: np.ndarray, warm_i: np.ndarray
    ) -> np.ndarray:
        out = np.full(users.shape[0], self.global_mean_, dtype=np.float64)
        only_item = ~warm_u & warm_i
        out[only_item] = self.item_baseline_[items[only_item]]
        only_user = warm_u & ~warm_i
        out[only_user] = self.user_baseline_[users[only_user]]
        return out

    def _fit_common(self, train: Dataset) -> None:
        from cinerec.stats.signals import item_risk

        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.rating_scale_ = tuple(float(x) for x in train.rating_scale)
        self.global_mean_ = train.global_mean
        self.user_counts_ = train.user_counts.astype(np.int64)
        self.item_counts_ = train.item_counts.astype(np.int64)
        mu = self.global_mean_
        resid = train.ratings.astype(np.float64) - mu
        item_sum = np.bincount(train.items, weights=resid, minlength=self.n_items_)
        self.item_baseline_ = (mu + item_sum / (self.item_counts_ + FALLBACK_DAMPING)).astype(np.float32)
        user_sum = np.bincount(train.users, weights=resid, minlength=self.n_users_)
        self.user_baseline_ = (mu + user_sum / (self.user_counts_ + FALLBACK_DAMPING)).astype(np.float32)
        csr = train.to_csr(values=None)
        self.seen_indptr_ = csr.indptr.astype(np.int64)
        self.seen_indices_ = csr.indices.astype(np.int32)
        risk = item_risk(train)
        self.item_sigma_ = risk["sigma"].astype(np.float32)
        self.item_confidence_ = risk["confidence"].astype(np.float32)


_BASE_STATE = (
    "n_users",
    "n_items",
    "rating_scale",
    "global_mean",
    "user_counts",
    "item_counts",
    "item_baseline",
    "user_baseline",
    "seen_indptr",
    "seen_indices",
    "item_sigma",
    "item_confidence",
)
