"""The six rating-statistics features of paper 004, computed on TRAIN only.

Paper 004 adds ``avg/std/count`` of the user's and of the movie's ratings to every row
and stresses that they must be computed after the split, from the training set only.
`FeatureStats.fit(train)` freezes those statistics; `.transform(users, items)` looks
them up for any rows (train, valid or test), so a test rating can never leak into a
feature. Users/items with no train rating (cold, or index -1 from `IdMap.lookup`) get
the global train mean and sigma and count 0.

sigma is the population sd (ddof=0, paper 000) by default; paper 004 used pandas'
``std`` (ddof=1), available with ``ddof=1`` (a group of one rating then gets the
global sigma instead of NaN, rather than dropping the row as the paper did).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.errors import StatsError
from cinerec.features.moments import group_stats

#: Column order of `FeatureStats.transform` / `rating_features`.
FEATURE_NAMES: tuple[str, ...] = (
    "user_mean",
    "user_sigma",
    "user_count",
    "movie_mean",
    "movie_sigma",
    "movie_count",
)


@dataclass(frozen=True)
class FeatureStats:
    """Train-only per-user and per-movie mean / sigma / count lookup tables."""

    user_mean: np.ndarray
    user_sigma: np.ndarray
    user_count: np.ndarray
    item_mean: np.ndarray
    item_sigma: np.ndarray
    item_count: np.ndarray
    global_mean: float
    global_sigma: float

    @classmethod
    def fit(cls, train: Dataset, ddof: int = 0) -> FeatureStats:
        """Compute the lookup tables from ``train`` (the only data they ever see)."""
        if train.n_ratings == 0:
            raise StatsError(f"train set {train.name!r} has no ratings; features need some")
        u = group_stats(train.users, train.ratings, train.n_users, train.rating_scale, ddof)
        i = group_stats(train.items, train.ratings, train.n_items, train.rating_scale, ddof)
        r = train.ratings.astype(np.float64)
        gm = float(r.mean())
        gs = float(r.std(ddof=ddof)) if r.size > ddof else 0.0
        return cls(
            user_mean=np.where(u.count > 0, u.mean, gm),
            user_sigma=np.where(np.isnan(u.sigma), gs, u.sigma),
            user_count=u.count.astype(np.float64),
            item_mean=np.where(i.count > 0, i.mean, gm),
            item_sigma=np.where(np.isnan(i.sigma), gs, i.sigma),
            item_count=i.count.astype(np.float64),
            global_mean=gm,
            global_sigma=gs,
        )

    @staticmethod
    def _lookup(table: np.ndarray, idx: np.ndarray, default: float) -> np.ndarray:
        ok = (idx >= 0) & (idx < table.shape[0])
        out = np.full(idx.shape[0], default, dtype=np.float64)
        out[ok] = table[idx[ok]]
        return out

    def transform(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n, 6) float64 array in `FEATURE_NAMES` order for the (user, item) rows."""
        users = np.asarray(users, dtype=np.int64).ravel()
        items = np.asarray(items, dtype=np.int64).ravel()
        if users.shape != items.shape:
            raise StatsError(
                f"users ({users.shape[0]}) and items ({items.shape[0]}) must have the same length"
            )
        return np.column_stack(
            [
                self._lookup(self.user_mean, users, self.global_mean),
                self._lookup(self.user_sigma, users, self.global_sigma),
                self._lookup(self.user_count, users, 0.0),
                self._lookup(self.item_mean, items, self.global_mean),
                self._lookup(self.item_sigma, items, self.global_sigma),
                self._lookup(self.item_count, items, 0.0),
            ]
        )


def rating_features(
    train: Dataset, users: np.ndarray, items: np.ndarray, ddof: int = 0
) -> np.ndarray:
    """Paper 004's six columns for (user, item) rows, from ``train`` statistics only."""
    return FeatureStats.fit(train, ddof=ddof).transform(users, items)
