"""The `Dataset` and `IdMap` types: contiguous integer indices, typed arrays, metadata.

A `Dataset` is built once by a loader (``cinerec.data.movielens``, ``synthetic``) and is
immutable. Everything downstream works on indices; raw ids only appear at the edges
(loading, CLI output, serving) through the two `IdMap`s.

Subsets made by splits (`Dataset.subset`) keep the parent's id maps and metadata, so
train, valid and test share one index space and a user or item with no rating in
train is simply one with a zero train count ("cold"), never a silently dropped row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from cinerec.errors import UnknownId


@dataclass(frozen=True, eq=False)
class IdMap:
    """Bijection between raw ids (as in the source files) and contiguous indices.

    ``ids[i]`` is the raw id of index ``i``. Raw ids are sorted ascending, so the
    mapping is deterministic for a given set of ids.
    """

    ids: np.ndarray

    @classmethod
    def from_raw(cls, raw: np.ndarray) -> tuple[IdMap, np.ndarray]:
        """Build a map from raw ids (with repeats); return it and the int32 index of each."""
        uniq, inverse = np.unique(np.asarray(raw), return_inverse=True)
        return cls(uniq), inverse.astype(np.int32)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self.ids, other.ids)

    __hash__ = None  # type: ignore[assignment]

    def index(self, raw: Any) -> int:
        """Index of one raw id; `UnknownId` if absent."""
        idx = self.lookup(np.asarray([raw], dtype=self.ids.dtype))[0]
        if idx < 0:
            raise UnknownId(f"id {raw!r} is not in this data set")
        return int(idx)

    def lookup(self, raw: np.ndarray) -> np.ndarray:
        """Vectorised index of raw ids; -1 where an id is unknown."""
        raw = np.asarray(raw)
        if len(self) == 0:
            return np.full(raw.shape, -1, dtype=np.int32)
        pos = np.searchsorted(self.ids, raw)
        pos = np.clip(pos, 0, len(self) - 1)
        found = self.ids[pos] == raw
        return np.where(found, pos, -1).astype(np.int32)

    def raw(self, index: np.ndarray | int) -> Any:
        """Raw id(s) of index/indices."""
        return self.ids[index]

    def position(self, raw: Any) -> int:
        """Index of one raw id (already of the ids' type), -1 when unknown: a dict
        lookup, for a server answering one id at a time."""
        return self._positions.get(raw, -1)

    @cached_property
    def _positions(self) -> dict[Any, int]:
        return {v: i for i, v in enumerate(self.ids.tolist())}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Ratings as parallel arrays plus id maps and optional metadata.

    Attributes
    ----------
    users, items : int32 indices into `user_ids` / `item_ids`.
    ratings : float32.
    timestamps : int64 seconds since the epoch (0 when the source has none).
    item_ids : covers the whole catalogue (every movie in the movies file), so it may
        hold items without any rating.
    items : optional polars frame, one row per item index in order, with at least
        ``item`` (index) and the raw id column; MovieLens loaders add ``title``,
        ``year``, ``genres`` (list[str]) and, when links exist, ``imdbId``/``tmdbId``.
    item_genres : optional bool matrix (n_items, len(genre_names)), multi-hot.
    users : optional per-user frame (demographics), one row per user index.
    tags : optional frame of tag applications (user, item indices, tag, timestamp).
    rating_scale : (min, max) of the rating scale, e.g. (0.5, 5.0).
    """

    name: str
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    user_ids: IdMap
    item_ids: IdMap
    rating_scale: tuple[float, float] = (0.5, 5.0)
    items_meta: pl.DataFrame | None = None
    users_meta: pl.DataFrame | None = None
    item_genres: np.ndarray | None = None
    genre_names: tuple[str, ...] = ()
    tags: pl.DataFrame | None = None
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.users.shape[0]
        for name in ("items", "ratings", "timestamps"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"Dataset.{name} has {getattr(self, name).shape[0]} rows, users has {n}")
        # Normalise dtypes once so every consumer can rely on them.
        object.__setattr__(self, "users", np.ascontiguousarray(self.users, dtype=np.int32))
        object.__setattr__(self, "items", np.ascontiguousarray(self.items, dtype=np.int32))
        object.__setattr__(self, "ratings", np.ascontiguousarray(self.ratings, dtype=np.float32))
        object.__setattr__(self, "timestamps", np.ascontiguousarray(self.timestamps, dtype=np.int64))
        for arr in (self.users, self.items, self.ratings, self.timestamps):
            arr.setflags(write=False)

    # ---- sizes -------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Size of the user index space (not only users with ratings here)."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Size of the item index space: the whole catalogue."""
        return len(self.item_ids)

    @property
    def n_ratings(self) -> int:
        return int(self.ratings.shape[0])

    def __len__(self) -> int:
        return self.n_ratings

    @cached_property
    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users).astype(np.int64)

    @cached_property
    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items).astype(np.int64)

    @property
    def n_active_users(self) -> int:
        """Users with at least one rating in this (sub)set."""
        return int(np.count_nonzero(self.user_counts))

    @property
    def n_rated_items(self) -> int:
        """Items with at least one rating in this (sub)set."""
        return int(np.count_nonzero(self.item_counts))

    @property
    def density(self) -> float:
        cells = self.n_active_users * self.n_rated_items
        return self.n_ratings / cells if cells else 0.0

    @cached_property
    def global_mean(self) -> float:
        return float(self.ratings.mean()) if self.n_ratings else 0.0

    # ---- derived structures ----------------------------------------------------
    def to_csr(self, values: str | None = "ratings") -> sp.csr_matrix:
        """User x item CSR matrix of ratings (or ones when ``values=None``).

        Duplicate (user, item) pairs, if a source has them, are summed by scipy; the
        loaders guarantee none for MovieLens.
        """
        data = (
            np.ones(self.n_ratings, dtype=np.float32)
            if values is None
            else np.asarray(getattr(self, values), dtype=np.float32)
        )
        m = sp.csr_matrix(
            (data, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32
        )
        m.sort_indices()
        return m

    def subset(self, rows: np.ndarray, name: str | None = None) -> Dataset:
        """Rows selected by a boolean mask or index array, in the same id space."""
        rows = np.asarray(rows)
        return replace(
            self,
            name=name or self.name,
            users=self.users[rows],
            items=self.items[rows],
            ratings=self.ratings[rows],
            timestamps=self.timestamps[rows],
        )

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of the rating arrays and id maps (stable across runs)."""
        h = hashlib.blake2b(digest_size=16)
        for arr in (
            self.users,
            self.items,
            self.ratings,
            self.timestamps,
            self.user_ids.ids,
            self.item_ids.ids,
        ):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def item_titles(self, items: np.ndarray | list[int]) -> list[str]:
        """Display titles for item indices (raw id when there is no title metadata)."""
        items = np.asarray(items, dtype=np.int64)
        if self.items_meta is not None and "title" in self.items_meta.columns:
            titles = self.items_meta.get_column("title").to_numpy()
            years = (
                self.items_meta.get_column("year").to_numpy()
                if "year" in self.items_meta.columns
                else None
            )
            out = []
            for i in items:
                t = str(titles[i])
                if years is not None and years[i] is not None and not _isnan(years[i]):
                    t = f"{t} ({int(years[i])})"
                out.append(t)
            return out
        return [str(x) for x in self.item_ids.raw(items)]

    def describe(self) -> dict[str, Any]:
        """Counts for `cinerec data info` and reports."""
        ts = self.timestamps
        return {
            "name": self.name,
            "ratings": self.n_ratings,
            "users": self.n_active_users,
            "rated_items": self.n_rated_items,
            "items": self.n_items,
            "density": self.density,
            "rating_min": float(self.ratings.min()) if self.n_ratings else None,
            "rating_max": float(self.ratings.max()) if self.n_ratings else None,
            "rating_mean": self.global_mean,
            "time_min": int(ts.min()) if self.n_ratings else None,
            "time_max": int(ts.max()) if self.n_ratings else None,
        }


def _isnan(x: Any) -> bool:
    try:
        return bool(np.isnan(x))
    except TypeError:
        return False
