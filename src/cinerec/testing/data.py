"""Small generated rating sets with known structure, for tests of any model."""

from __future__ import annotations

import numpy as np
import polars as pl

from cinerec.data.dataset import Dataset, IdMap


def make_ratings_dataset(
    n_users: int = 60,
    n_items: int = 40,
    density: float = 0.3,
    rank: int = 3,
    seed: int = 0,
    noise: float = 0.3,
    name: str = "tiny",
    item_table: bool = False,
) -> Dataset:
    """A small low-rank + bias rating set on the 0.5..5 half-star scale.

    Every user and item gets at least one rating, timestamps increase with a random
    per-rating jitter, raw ids are offset so they differ from indices. With
    ``item_table`` the data set has an item table whose genres and titles carry the
    items' hidden factors and bias (see `_item_table`), for content models.
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
    item_ids = np.arange(n_items, dtype=np.int64) * 10 + 7
    return Dataset(
        name=name,
        users=u[order],
        items=i[order],
        ratings=r[order],
        timestamps=ts[order],
        user_ids=IdMap(np.arange(n_users, dtype=np.int64) + 1),
        item_ids=IdMap(item_ids),
        rating_scale=(0.5, 5.0),
        items_meta=_item_table(item_ids, q, bi) if item_table else None,
    )


def _item_table(item_ids: np.ndarray, q: np.ndarray, bi: np.ndarray) -> pl.DataFrame:
    """Genres "F<j>+" / "F<j>-" by the sign of each hidden factor, a title whose words
    name the factors and the bias ("bright" / "dark", "good" / "bad"), a year."""
    genres = [[f"F{j}{'+' if v > 0 else '-'}" for j, v in enumerate(row)] for row in q]
    words = {0: ("bright", "dark"), 1: ("fast", "slow"), 2: ("funny", "grim")}
    titles = [
        " ".join([*(words.get(j, (f"up{j}", f"down{j}"))[int(v <= 0)] for j, v in enumerate(row)), "good" if b > 0 else "bad", f"no{n}"])
        for n, (row, b) in enumerate(zip(q, bi, strict=True))
    ]  # fmt: skip
    return pl.DataFrame({
        "item": np.arange(item_ids.shape[0], dtype=np.int32),
        "movieId": item_ids,
        "title": titles,
        "year": (1980 + np.arange(item_ids.shape[0]) % 40).astype(np.int32),
        "genres": genres,
    })  # fmt: skip


#: User and item that only appear in the battery's test part (cold in train).
COLD_USER, COLD_ITEM = 0, 0


def battery_data() -> tuple[Dataset, Dataset]:
    """(train, test): 200 x 100 low-rank ratings, missing not at random (a user rates
    what they like more often, so who-rated-what carries signal for implicit models
    too). User `COLD_USER` and item `COLD_ITEM` only appear in test."""
    full = make_ratings_dataset(n_users=200, n_items=100, density=1.0, rank=3, seed=3, noise=0.2, item_table=True)
    rng = np.random.default_rng(0)
    keep = rng.random(full.n_ratings) < np.clip(0.1 * (full.ratings - 1.5), 0.02, 0.4)
    d = full.subset(keep)
    test = rng.random(d.n_ratings) < 0.2
    test |= (d.users == COLD_USER) | (d.items == COLD_ITEM)
    return d.subset(~test, name="battery[train]"), d.subset(test, name="battery[test]")
