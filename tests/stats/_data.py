"""Hand-built data sets for the stats tests."""

from __future__ import annotations

import numpy as np

from cinerec.data.dataset import Dataset, IdMap


def hand_dataset(
    users: list[int],
    items: list[int],
    ratings: list[float],
    timestamps: list[int] | None = None,
    n_users: int | None = None,
    n_items: int | None = None,
    genres: np.ndarray | None = None,
    genre_names: tuple[str, ...] = (),
    scale: tuple[float, float] = (0.5, 5.0),
) -> Dataset:
    """A Dataset from explicit lists; raw ids are offset so they differ from indices."""
    nu = n_users if n_users is not None else max(users) + 1
    ni = n_items if n_items is not None else max(items) + 1
    ts = timestamps if timestamps is not None else [1_500_000_000 + k for k in range(len(users))]
    return Dataset(
        name="hand",
        users=np.asarray(users),
        items=np.asarray(items),
        ratings=np.asarray(ratings, dtype=np.float32),
        timestamps=np.asarray(ts, dtype=np.int64),
        user_ids=IdMap(np.arange(nu, dtype=np.int64) + 100),
        item_ids=IdMap(np.arange(ni, dtype=np.int64) + 1000),
        rating_scale=scale,
        item_genres=genres,
        genre_names=genre_names,
    )
