"""Item features from the item table: genres, year, tags, TMDB and IMDb columns.

`ItemEncoder.fit(items_meta, fit_items, groups)` learns every statistic of the
encoding (medians, scaler ranges, vocabularies of categories, genres and tags) from
the items of ``fit_items`` only: the movies that have a training rating, so a movie
held out for testing never shapes a scaler. `transform(frame)` then encodes any
frame in the item-table format (the catalogue, or one new movie's metadata) to a
float32 matrix with named columns.

How missing values are handled (as the papers do, plus an explicit indicator):
numbers are filled with the train median and get a ``<name>:missing`` 0/1 column;
a category outside the learnt ones is "other", an absent one "unknown"; a zero
budget, revenue or runtime in TMDB means "not recorded" and counts as missing.
Numbers are scaled with a MinMax (paper 004) or standard scaler fitted on train,
after ``log1p`` for heavy-tailed counts and money.

The encoder is plain JSON (`to_json` / `from_json`), so an artifact carries its
feature pipeline and scores a new movie from its metadata alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from cinerec.errors import ConfigError

#: Feature groups `ItemEncoder` knows, and what each reads from the item table.
GROUPS: dict[str, str] = {
    "genres": "MovieLens genres, multi-hot (column genres)",
    "year": "release year from the title (column year)",
    "tags": "the most applied tags, multi-hot (tags.csv through the tags column)",
    "tmdb": "TMDB budget, revenue, runtime, popularity, vote average/count, release year, "
    "original language, origin country (tmdb_* columns)",
    "imdb": "IMDb average rating, votes, runtime, start year, genres (imdb_* columns)",
}

#: Groups left out without an error when the item table lacks them (releases without
#: a tags file, or without genres); metadata sources are explicit requests and raise.
OPTIONAL_GROUPS = ("genres", "year", "tags")

# (column, transform, zero means missing)
_NUMERIC: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "year": (("year", "none", False),),
    "tmdb": (
        ("tmdb_budget", "log1p", True),
        ("tmdb_revenue", "log1p", True),
        ("tmdb_runtime", "none", True),
        ("tmdb_popularity", "log1p", False),
        ("tmdb_vote_average", "none", False),
        ("tmdb_vote_count", "log1p", False),
        ("tmdb_release_year", "none", False),
    ),
    "imdb": (
        ("imdb_averageRating", "none", False),
        ("imdb_numVotes", "log1p", False),
        ("imdb_runtimeMinutes", "none", True),
        ("imdb_startYear", "none", False),
    ),
}
# (column, number of categories kept); list columns use their first element
_CATEGORICAL: dict[str, tuple[tuple[str, int], ...]] = {
    "tmdb": (("tmdb_original_language", 10), ("tmdb_production_countries", 10)),
}
# (column, vocabulary size; 0 = every value seen in train)
_MULTIHOT: dict[str, tuple[tuple[str, int], ...]] = {
    "genres": (("genres", 0),),
    "tags": (("tags", 50),),
    "imdb": (("imdb_genres", 0),),
}


@dataclass
class NumericColumn:
    column: str
    transform: str
    zero_missing: bool
    median: float = 0.0
    lo: float = 0.0
    scale: float = 1.0  # (x - lo) / scale


@dataclass
class CategoricalColumn:
    column: str
    categories: list[str] = field(default_factory=list)


@dataclass
class MultiHotColumn:
    column: str
    vocabulary: list[str] = field(default_factory=list)


def add_derived_columns(items: pl.DataFrame, tags: pl.DataFrame | None = None) -> pl.DataFrame:
    """The item table with the columns the encoder derives: ``tmdb_release_year`` from
    ``tmdb_release_date`` and ``tags`` (list of lower-cased tags per item) from a tag
    applications frame (``item``, ``tag``)."""
    out = items
    if "tmdb_release_date" in out.columns and "tmdb_release_year" not in out.columns:
        out = out.with_columns(pl.col("tmdb_release_date").dt.year().alias("tmdb_release_year"))
    if tags is not None and "tags" not in out.columns and tags.height:
        per_item = (
            tags.select(pl.col("item"), pl.col("tag").str.to_lowercase().str.strip_chars())
            .unique()
            .group_by("item")
            .agg(pl.col("tag").sort().alias("tags"))  # sorted: the same text on every run
        )
        # Row i must stay item i: a join does not promise the left order.
        out = out.join(per_item, on="item", how="left", maintain_order="left")
    return out


class ItemEncoder:
    """Train-fitted encoding of item-table columns into a feature matrix."""

    def __init__(
        self,
        groups: tuple[str, ...],
        scaler: Literal["minmax", "standard"] = "minmax",
        numeric: list[NumericColumn] | None = None,
        categorical: list[CategoricalColumn] | None = None,
        multihot: list[MultiHotColumn] | None = None,
    ):
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise ConfigError(f"unknown item feature group(s) {unknown}; known: {', '.join(GROUPS)}")
        if scaler not in ("minmax", "standard"):
            raise ConfigError(f"scaler must be 'minmax' or 'standard', got {scaler!r}")
        self.groups = tuple(groups)
        self.scaler = scaler
        self.numeric = numeric or []
        self.categorical = categorical or []
        self.multihot = multihot or []

    # ---- fitting ------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        items: pl.DataFrame,
        fit_items: np.ndarray,
        groups: tuple[str, ...],
        scaler: Literal["minmax", "standard"] = "minmax",
    ) -> ItemEncoder:
        """Learn the encoding from the rows of ``items`` whose ``item`` index is in
        ``fit_items`` (the movies with a training rating). Raises `ConfigError` naming
        the group when the table lacks its columns (e.g. "tmdb" without a TMDB join)."""
        enc = cls(groups, scaler)
        for g in groups:
            needed = [c for c, *_ in _NUMERIC.get(g, ())] + [c for c, _ in _CATEGORICAL.get(g, ())]
            needed += [c for c, _ in _MULTIHOT.get(g, ())]
            if not any(c in items.columns for c in needed):
                if g in OPTIONAL_GROUPS:
                    continue  # e.g. no tags file in this release: the group adds nothing
                raise ConfigError(
                    f"item feature group {g!r} needs the column(s) {needed} in the item table; "
                    + ("join TMDB first (cinerec.data.metadata.with_metadata)" if g in ("tmdb", "imdb")
                       else "this data set does not have them")
                )  # fmt: skip
        part = items.filter(pl.col("item").is_in(np.asarray(fit_items, dtype=np.int64).tolist()))
        if part.height == 0:
            raise ConfigError("no item to fit the item features on (no movie has a training rating)")
        for g in groups:
            for column, transform, zero_missing in _NUMERIC.get(g, ()):
                if column not in items.columns:
                    continue
                x = _numeric(part, column, transform, zero_missing)
                ok = ~np.isnan(x)
                med = float(np.median(x[ok])) if ok.any() else 0.0
                x = np.where(ok, x, med)
                if scaler == "minmax":
                    lo, span = float(x.min()), float(x.max() - x.min())
                else:
                    lo, span = float(x.mean()), float(x.std())
                enc.numeric.append(NumericColumn(column, transform, zero_missing, med, lo, span if span > 0 else 1.0))
            for column, keep in _CATEGORICAL.get(g, ()):
                if column not in items.columns:
                    continue
                values = _first(part, column).drop_nulls()
                top = values.value_counts(sort=True).head(keep).get_column(column).to_list()
                enc.categorical.append(CategoricalColumn(column, [str(v) for v in top]))
            for column, size in _MULTIHOT.get(g, ()):
                if column not in items.columns:
                    continue
                counts = _as_lists(part.get_column(column)).explode().drop_nulls().value_counts(sort=True)
                vocab = counts.get_column(column).to_list()
                enc.multihot.append(MultiHotColumn(column, [str(v) for v in (vocab[:size] if size else sorted(vocab))]))
        return enc

    # ---- encoding -----------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Column names of `transform`'s output, in order."""
        out: list[str] = []
        for n in self.numeric:
            out += [n.column, f"{n.column}:missing"]
        for c in self.categorical:
            out += [f"{c.column}={v}" for v in c.categories] + [f"{c.column}=other", f"{c.column}=unknown"]
        for m in self.multihot:
            out += [f"{m.column}={v}" for v in m.vocabulary] + [f"{m.column}:missing"]
        return out

    @property
    def n_features(self) -> int:
        return len(self.names)

    def transform(self, items: pl.DataFrame) -> np.ndarray:
        """(items.height, n_features) float32 features of the rows of ``items``; a
        column the frame lacks counts as missing for every row."""
        blocks: list[np.ndarray] = []
        n = items.height
        for c in self.numeric:
            x = _numeric(items, c.column, c.transform, c.zero_missing) if c.column in items.columns else np.full(n, np.nan)
            miss = np.isnan(x)
            x = (np.where(miss, c.median, x) - c.lo) / c.scale
            blocks.append(np.column_stack([x, miss.astype(np.float64)]))
        for c in self.categorical:
            k = len(c.categories)
            block = np.zeros((n, k + 2))
            if c.column in items.columns:
                values = _first(items, c.column).to_list()
            else:
                values = [None] * n
            index = {v: j for j, v in enumerate(c.categories)}
            cols = np.array([k + 1 if v is None else index.get(str(v), k) for v in values], dtype=np.int64)
            block[np.arange(n), cols] = 1.0
            blocks.append(block)
        for m in self.multihot:
            blocks.append(_multi_hot(items, m))
        if not blocks:
            return np.zeros((n, 0), dtype=np.float32)
        return np.hstack(blocks).astype(np.float32)

    # ---- persistence --------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "groups": list(self.groups),
            "scaler": self.scaler,
            "numeric": [asdict(c) for c in self.numeric],
            "categorical": [asdict(c) for c in self.categorical],
            "multihot": [asdict(c) for c in self.multihot],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemEncoder:
        try:
            return cls(
                tuple(data["groups"]),
                data["scaler"],
                [NumericColumn(**c) for c in data["numeric"]],
                [CategoricalColumn(**c) for c in data["categorical"]],
                [MultiHotColumn(**c) for c in data["multihot"]],
            )
        except (KeyError, TypeError) as e:
            raise ConfigError(f"malformed item-feature encoder description ({e})") from None


def _numeric(frame: pl.DataFrame, column: str, transform: str, zero_missing: bool) -> np.ndarray:
    x = frame.get_column(column).cast(pl.Float64, strict=False).to_numpy().astype(np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    if zero_missing:
        x = np.where(x == 0, np.nan, x)
    if transform == "log1p":
        x = np.log1p(np.clip(x, 0, None))
    return x


def _first(frame: pl.DataFrame, column: str) -> pl.Series:
    s = frame.get_column(column)
    if isinstance(s.dtype, pl.List):
        s = s.list.first()
    return s.cast(pl.String).alias(column)


def _as_lists(col: pl.Series) -> pl.Series:
    """A multi-hot column as lists of strings (MovieLens-style "A|B" text is split on "|")."""
    if isinstance(col.dtype, pl.List):
        return col.cast(pl.List(pl.String))
    return col.cast(pl.String).str.split("|")


def _multi_hot(frame: pl.DataFrame, m: MultiHotColumn) -> np.ndarray:
    n, k = frame.height, len(m.vocabulary)
    block = np.zeros((n, k + 1))
    if m.column not in frame.columns:
        block[:, k] = 1.0
        return block
    col = _as_lists(frame.get_column(m.column))
    lens = col.list.len().fill_null(0).to_numpy()
    block[:, k] = (lens == 0).astype(np.float64)
    has = lens > 0
    flat = col.filter(pl.Series(has)).explode().cast(pl.String).to_list()
    rows = np.repeat(np.arange(n)[has], lens[has])
    index = {v: j for j, v in enumerate(m.vocabulary)}
    cols = np.array([index.get(v, -1) if v is not None else -1 for v in flat], dtype=np.int64)
    hit = cols >= 0
    block[rows[hit], cols[hit]] = 1.0
    return block
