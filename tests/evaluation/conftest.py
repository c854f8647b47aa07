"""Tiny Recommender subclasses and splits for evaluation tests (no real models)."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.data.dataset import Dataset
from cinerec.data.splits import Split
from cinerec.models.base import Recommender
from tests.conftest import make_ratings_dataset


class Oracle(Recommender):
    """Knows the test ratings: predicts them exactly and ranks by them."""

    name = "oracle"

    def __init__(self, truth: Dataset):
        super().__init__()
        self.truth = truth.to_csr().toarray()

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.train_mean_ = np.float32(train.global_mean)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        t = self.truth[users, items]
        return np.where(t > 0, t, self.train_mean_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.truth[users].astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"truth": self.truth}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict) -> None:
        self.truth = arrays["truth"]


class RandomModel(Recommender):
    """Uniform random ratings and scores from a fixed seed."""

    name = "random"

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self.rng_ = np.random.default_rng(self.config.seed)
        self.n_items_fit_ = train.n_items

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.rng_.uniform(0.5, 5.0, users.shape[0])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.rng_.random((users.shape[0], self.n_items_fit_)).astype(np.float32)

    def _state(self) -> dict[str, np.ndarray]:
        return {"seed": np.array([self.config.seed])}

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict) -> None:
        self.rng_ = np.random.default_rng(int(arrays["seed"][0]))


class Memorizer(Oracle):
    """Oracle that also scores every train item above everything else: the protocol
    must mask those, so it ranks exactly like the oracle."""

    name = "memorizer"

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        super()._fit(train, valid)
        self.seen_ = train.to_csr(values=None).toarray() > 0

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = super()._score(users)
        s[self.seen_[users]] = 100.0
        return s


class RankOnly(RandomModel):
    """A pure ranking model (no rating scale)."""

    name = "rank-only"
    predicts_ratings = False


@pytest.fixture
def split() -> Split:
    """Random 80/20 split of the tiny set; users 0-3 have all their ratings in test
    (cold users) so the cold-row accounting is exercised."""
    ds = make_ratings_dataset(n_users=60, n_items=40, density=0.3, seed=0)
    rng = np.random.default_rng(0)
    in_test = (rng.random(ds.n_ratings) < 0.2) | (ds.users < 4)
    return Split(train=ds.subset(~in_test), test=ds.subset(in_test), spec="random:0.2", seed=3)
