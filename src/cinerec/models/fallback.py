"""Train-only statistics every model keeps, and the declared cold-start fallback.

`train_statistics(train)` computes, from the training part only: the sizes, rating
scale and global mean, per-user and per-item counts, damped baselines (the fallback
predictions), each user's seen items and ratings (CSR, for excluding seen items and
for folding a known user's new feedback in), and the per-item sigma and confidence
(`cinerec.features.risk`). `Recommender` stores them as ``<name>_`` attributes and in
every artifact under ``_base.<name>``.

Fallback (Surprise's idea: an unknown id is a normal, explained path): a pair whose
user and item are both warm goes to the model; a cold user gets the item's damped
mean, a cold item the user's damped mean, both cold the global mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.features.risk import item_risk

#: Damping (pseudo-count) of the fallback baselines: an item rated by few users is
#: pulled toward the global mean.
FALLBACK_DAMPING = 10.0

#: Every base statistic, in artifact order. ``seen_ratings`` is absent from format-1
#: artifacts (then None: a known user's new feedback replaces, not extends, history).
BASE_STATE = (
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
    "seen_ratings",
    "item_sigma",
    "item_confidence",
)
OPTIONAL_BASE_STATE = frozenset({"seen_ratings"})

#: Codes of `Recommender.fallback_kind`.
FALLBACK_NAMES = {
    0: "model",
    1: "cold user: item baseline",
    2: "cold item: user baseline",
    3: "both cold: global mean",
}


def train_statistics(train: Dataset) -> dict[str, Any]:
    """Every base statistic of `BASE_STATE` from ``train`` (module docstring)."""
    n_users, n_items = train.n_users, train.n_items
    mu = train.global_mean
    user_counts = train.user_counts.astype(np.int64)
    item_counts = train.item_counts.astype(np.int64)
    resid = train.ratings.astype(np.float64) - mu
    item_sum = np.bincount(train.items, weights=resid, minlength=n_items)
    user_sum = np.bincount(train.users, weights=resid, minlength=n_users)
    csr = train.to_csr()
    risk = item_risk(train)
    return {
        "n_users": n_users,
        "n_items": n_items,
        "rating_scale": tuple(float(x) for x in train.rating_scale),
        "global_mean": mu,
        "user_counts": user_counts,
        "item_counts": item_counts,
        "item_baseline": (mu + item_sum / (item_counts + FALLBACK_DAMPING)).astype(np.float32),
        "user_baseline": (mu + user_sum / (user_counts + FALLBACK_DAMPING)).astype(np.float32),
        "seen_indptr": csr.indptr.astype(np.int64),
        "seen_indices": csr.indices.astype(np.int32),
        "seen_ratings": csr.data.astype(np.float32),
        "item_sigma": risk["sigma"].astype(np.float32),
        "item_confidence": risk["confidence"].astype(np.float32),
    }


def fallback_predict(
    stats: Any, users: np.ndarray, items: np.ndarray, warm_u: np.ndarray, warm_i: np.ndarray
) -> np.ndarray:
    """Baseline predictions for every pair (the model overwrites the warm-warm ones)."""
    out = np.full(users.shape[0], stats.global_mean_, dtype=np.float64)
    only_item = ~warm_u & warm_i
    out[only_item] = stats.item_baseline_[items[only_item]]
    only_user = warm_u & ~warm_i
    out[only_user] = stats.user_baseline_[users[only_user]]
    return out
