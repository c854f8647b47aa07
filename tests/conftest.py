"""Shared fixtures: small generated data sets (no files) and the real-data home."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cinerec.data.dataset import Dataset, IdMap


def make_ratings_dataset(
    n_users: int = 60,
    n_items: int = 40,
    density: float = 0.3,
    rank: int = 3,
    seed: int = 0,
    noise: float = 0.3,
    name: str = "tiny",
) -> Dataset:
    """A small low-rank + bias rating set on the 0.5..5 half-star scale.

    Every user and item gets at least one rating, timestamps increase with a random
    per-rating jitter, raw ids are offset so they differ from indices.
    """
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    p = rng.normal(0, 0.6, (n_users, rank))
    q = rng.normal(0, 0.6, (n_items, rank))
    bu = rng.normal(0, 0.4, n_users)
    bi = rng.normal(0, 0.5, n_items)
    r = 3.5 + bu[u] + bi[i] + (p[u] * q[i]).sum(1) + rng.normal(0, noise, u.shape[0])
    r = np.clip(np.round(r * 2) / 2, 0.5, 5.0)
    ts = 1_000_000_000 + np.sort(rng.integers(0, 10**8, u.shape[0]))
    order = rng.permutation(u.shape[0])
    return Dataset(
        name=name,
        users=u[order],
        items=i[order],
        ratings=r[order],
        timestamps=ts[order],
        user_ids=IdMap(np.arange(n_users, dtype=np.int64) + 1),
        item_ids=IdMap(np.arange(n_items, dtype=np.int64) * 10 + 7),
        rating_scale=(0.5, 5.0),
    )


@pytest.fixture
def tiny() -> Dataset:
    return make_ratings_dataset()


@pytest.fixture(scope="session")
def data_home() -> Path:
    """The real-data home ($CINEREC_DATA); tests needing it skip when it is unset."""
    home = os.environ.get("CINEREC_DATA")
    if not home:
        pytest.skip("CINEREC_DATA is not set (CI sets it to ../shared/data)")
    return Path(home)
