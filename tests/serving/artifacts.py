"""Small saved models with titles, for the serving tests (trained in seconds)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import polars as pl

from cinerec import artifacts
from cinerec.data.dataset import Dataset
from cinerec.models.registry import create_model
from cinerec.testing.data import make_ratings_dataset

GENRES = ("Action", "Comedy", "Drama", "Romance", "Sci-Fi")


def titled_dataset(n_users: int = 80, n_items: int = 60, seed: int = 0) -> Dataset:
    """`make_ratings_dataset` with an item table: titles "Movie 7", years, genres."""
    ds = make_ratings_dataset(n_users=n_users, n_items=n_items, density=0.3, seed=seed)
    raw = ds.item_ids.ids
    rng = np.random.default_rng(seed)
    items = pl.DataFrame({
        "item": np.arange(n_items, dtype=np.int64),
        "movieId": raw,
        "title": [f"Movie {int(r)}" for r in raw],
        "year": (1970 + rng.integers(0, 50, n_items)).astype(np.int64),
        "genres": ["|".join(rng.choice(GENRES, 2, replace=False)) for _ in range(n_items)],
    })
    return dataclasses.replace(ds, items_meta=items)


def save_models(folder: Path, names: tuple[str, ...] = ("svd", "ease")) -> dict[str, Path]:
    """Train each model on `titled_dataset` and save it under folder/NAME."""
    ds = titled_dataset()
    params = {"svd": {"epochs": 10}, "mf-torch": {"epochs": 3}, "ncf": {"epochs": 2}}
    out = {}
    for name in names:
        model = create_model(name, **params.get(name, {})).fit(ds)
        out[name] = artifacts.save_model(model, folder / name)
    return out
