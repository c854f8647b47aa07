"""Baselines every other model must beat: global mean, most popular, user + item biases."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import AliasChoices, Field

from cinerec.data.dataset import Dataset
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.explain import Explanation, Popularity, ScoreBreakdown
from cinerec.models.query import History
from cinerec.models.search import FloatRange, Param


def fit_biases(
    train: Dataset, reg_u: float = 15.0, reg_i: float = 10.0, epochs: int = 10
) -> tuple[float, np.ndarray, np.ndarray]:
    """Regularised user and item biases by alternating closed-form least squares.

    Minimises ``sum (r - mu - b_u - b_i)^2 + reg_u sum b_u^2 + reg_i sum b_i^2`` the
    way Surprise's ``BaselineOnly(method="als")`` does: each half-step is exact given
    the other. Returns ``(mu, b_u, b_i)`` (float64, whole index spaces; cold = 0).
    """
    mu = train.global_mean
    u = train.users
    i = train.items
    r = train.ratings.astype(np.float64)
    n_u = np.bincount(u, minlength=train.n_users).astype(np.float64)
    n_i = np.bincount(i, minlength=train.n_items).astype(np.float64)
    bu = np.zeros(train.n_users)
    bi = np.zeros(train.n_items)
    for _ in range(epochs):
        bi = np.bincount(i, weights=r - mu - bu[u], minlength=train.n_items) / (reg_i + n_i)
        bu = np.bincount(u, weights=r - mu - bi[i], minlength=train.n_users) / (reg_u + n_u)
    return mu, bu, bi


def fold_in_biases(histories: list[History], mu: float, bi: np.ndarray, reg_u: float) -> np.ndarray:
    """User biases of new users given the item biases: the exact half-step of
    `fit_biases`, ``b_u = sum (r - mu - b_i) / (reg_u + n)``."""
    return np.array(
        [float((h.ratings - mu - bi[h.items]).sum() / (reg_u + len(h))) for h in histories]
    )


class _NonPersonal(Recommender):
    """A model whose scores do not depend on the user: a history changes nothing, so
    folding one in is free (every folded row scores like any user)."""

    folds_in = True

    def _fold_in(self, histories: list[History]) -> int:
        return len(histories)

    def _score_folded(self, folded: int) -> np.ndarray:
        return self._score(np.zeros(folded, dtype=np.int64))

    def _predict_folded(self, folded: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._predict(rows, items)


class GlobalMean(_NonPersonal):
    """Predicts the train mean for every pair: the floor of every rating table."""

    name = "mean"

    class Config(ModelConfig):
        pass

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.mu_ = float(train.global_mean)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(users.shape[0], self.mu_, dtype=np.float64)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.full((users.shape[0], self.n_items_), self.mu_, dtype=np.float32)

    def explain(self, user: int, item: int) -> Explanation | None:
        return ScoreBreakdown((("global mean", self.mu_),), self.mu_)

    def _state(self) -> dict[str, np.ndarray]:
        return {"mu": np.array([self.mu_])}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])


class Popular(_NonPersonal):
    """Ranks by train popularity (number of ratings); the same list for everyone.

    A ranking model: `predict` returns the damped item mean so that calling it is
    still meaningful, but it is not a rating model.
    """

    name = "popular"
    predicts_ratings = False

    class Config(ModelConfig):
        pass

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.popularity_ = train.item_counts.astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (users.shape[0], self.n_items_)).copy()

    def explain(self, user: int, item: int) -> Explanation | None:
        return Popularity(int(self.item_counts_[item]), float(self.item_baseline_[item]))

    def _explain_folded(self, folded: Any, row: int, items: np.ndarray) -> list[Explanation | None]:
        return [self.explain(-1, int(i)) for i in items]

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity_}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.popularity_ = arrays["popularity"].astype(np.float32)


class Bias(Recommender):
    """``r_hat = mu + b_u + b_i`` with regularised biases (Surprise BaselineOnly, ALS).

    Hyper-parameters: ``reg_u`` and ``reg_i`` (ridge penalties, Surprise defaults 15
    and 10) and ``epochs`` alternating sweeps (alias ``n_iter``). A new user's bias is
    folded in by the same closed-form half-step.
    """

    name = "bias"
    #: What `cinerec tune` searches (`cinerec.models.search`).
    search_space: ClassVar[dict[str, Param]] = {"reg_u": FloatRange(1.0, 50.0, log=True), "reg_i": FloatRange(1.0, 50.0, log=True)}
    scores_pairs = True
    folds_in = True

    class Config(ModelConfig):
        reg_u: float = Field(15.0, ge=0)
        reg_i: float = Field(10.0, ge=0)
        epochs: int = Field(10, ge=1, validation_alias=AliasChoices("epochs", "n_iter"))

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        mu, bu, bi = fit_biases(train, c.reg_u, c.reg_i, c.epochs)
        self.mu_ = float(mu)
        self.bu_ = bu.astype(np.float32)
        self.bi_ = bi.astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu_ + self.bu_[users].astype(np.float64) + self.bi_[items]

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.mu_ + self.bu_[users][:, None] + self.bi_[None, :]).astype(np.float32)

    def _fold_in(self, histories: list[History]) -> np.ndarray:
        return fold_in_biases(histories, self.mu_, self.bi_.astype(np.float64), self.config.reg_u)

    def _score_folded(self, folded: np.ndarray) -> np.ndarray:
        return (self.mu_ + folded[:, None] + self.bi_[None, :]).astype(np.float32)

    def _predict_folded(self, folded: np.ndarray, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu_ + folded[rows] + self.bi_[items]

    def _breakdown(self, bu: float, item: int) -> ScoreBreakdown:
        parts = (("global mean", self.mu_), ("movie bias", float(self.bi_[item])), ("your bias", bu))
        return ScoreBreakdown(parts, sum(v for _, v in parts))

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._breakdown(float(self.bu_[user]), item)

    def _explain_folded(self, folded: np.ndarray, row: int, items: np.ndarray) -> list[Explanation | None]:
        return [self._breakdown(float(folded[row]), int(i)) for i in items]

    def _state(self) -> dict[str, np.ndarray]:
        return {"mu": np.array([self.mu_]), "bu": self.bu_, "bi": self.bi_}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])
        self.bu_ = arrays["bu"].astype(np.float32)
        self.bi_ = arrays["bi"].astype(np.float32)
