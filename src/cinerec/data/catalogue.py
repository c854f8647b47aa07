"""`Catalogue`: what a served model needs to know about the data it was trained on.

The two id maps (raw user and item ids <-> indices) and the item table (title, year,
genres, IMDb/TMDB ids). A `Dataset` gives one (`Catalogue.from_dataset`); an artifact
stores one, so a saved model can answer in raw ids and titles with no data home.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from cinerec.data.dataset import Dataset, IdMap

#: Item-table columns kept in an artifact (those the data set has).
ITEM_COLUMNS = ("item", "movieId", "title", "year", "genres", "imdbId", "tmdbId")


@dataclass(frozen=True, eq=False)
class Catalogue:
    """Id maps and the item table (one row per item index, in order, or None)."""

    user_ids: IdMap
    item_ids: IdMap
    items: pl.DataFrame | None = None

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Catalogue:
        items = None
        if ds.items_meta is not None:
            keep = [c for c in ITEM_COLUMNS if c in ds.items_meta.columns]
            items = ds.items_meta.select(keep)
        return cls(user_ids=ds.user_ids, item_ids=ds.item_ids, items=items)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def user_index(self, raw: Any) -> int:
        """Index of a raw user id, -1 when unknown (or not representable as an id)."""
        return _index(self.user_ids, raw)

    def item_index(self, raw: Any) -> int:
        """Index of a raw item id, -1 when unknown."""
        return _index(self.item_ids, raw)

    def item_indices(self, raw: np.ndarray | list[Any]) -> np.ndarray:
        """Vectorised `item_index` (-1 where unknown)."""
        values = [_coerce(self.item_ids, r) for r in raw]
        known = np.array([v is not None for v in values], dtype=bool)
        out = np.full(len(values), -1, dtype=np.int64)
        if known.any():
            ids = np.array([v for v in values if v is not None], dtype=self.item_ids.ids.dtype)
            out[known] = self.item_ids.lookup(ids)
        return out

    def titles(self, items: np.ndarray | list[int]) -> list[str]:
        """Display titles "Title (Year)" for item indices (the raw id when untitled)."""
        items = np.asarray(items, dtype=np.int64)
        if self.items is None or "title" not in self.items.columns:
            return [str(x) for x in self.item_ids.raw(items)]
        display = self._display_titles
        return [display[i] for i in items.tolist()]

    @functools.cached_property
    def _display_titles(self) -> list[str]:
        """Every item's display title, built once (a server asks for them per request)."""
        titles = self.items.get_column("title").to_list()  # type: ignore[union-attr]
        years = self.items.get_column("year").to_list() if "year" in self.items.columns else None  # type: ignore[union-attr]
        raw = self.item_ids.ids
        out = []
        for i, t in enumerate(titles):
            t = str(raw[i]) if t is None else str(t)
            y = years[i] if years is not None else None
            if y is not None and not (isinstance(y, float) and np.isnan(y)):
                t = f"{t} ({int(y)})"
            out.append(t)
        return out

    def item_record(self, item: int) -> dict[str, Any]:
        """Raw id, title and the other item-table fields of one item index."""
        rec: dict[str, Any] = {"item_id": _plain(self.item_ids.raw(int(item)))}
        if self.items is not None:
            row = self.items.row(int(item), named=True)
            rec |= {k: _plain(v) for k, v in row.items() if k not in ("item", "movieId")}
        rec["title_year"] = self.titles([item])[0]
        return rec

    def search(self, text: str, limit: int = 20) -> np.ndarray:
        """Item indices whose title contains ``text`` (case-insensitive), best first:
        exact title, then prefix, then substring; ties by index."""
        if self.items is None or "title" not in self.items.columns or not text.strip():
            return np.empty(0, dtype=np.int64)
        needle = text.strip().lower()
        t = self.items.select(pl.col("item"), pl.col("title").fill_null("").str.to_lowercase().alias("t"))
        hits = t.filter(pl.col("t").str.contains(needle, literal=True)).with_columns(
            rank=pl.when(pl.col("t") == needle).then(0)
            .when(pl.col("t").str.starts_with(needle)).then(1).otherwise(2)
        )
        hits = hits.sort(["rank", "item"]).head(limit)
        return hits.get_column("item").to_numpy().astype(np.int64)


def _coerce(ids: IdMap, raw: Any) -> Any | None:
    try:
        value = ids.ids.dtype.type(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(raw, str):
        if str(value) != raw.strip():
            return None
    elif isinstance(raw, int | np.integer) and int(value) != int(raw):
        return None  # wrapped around (2**70 -> int64)
    return value


def _index(ids: IdMap, raw: Any) -> int:
    value = _coerce(ids, raw)
    if value is None:
        return -1
    return ids.position(value.item() if isinstance(value, np.generic) else value)


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pl.Series):
        return v.to_list()
    return v
