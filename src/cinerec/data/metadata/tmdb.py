"""TMDB metadata (the Kaggle ``tmdb_5000_movies.csv`` format) and its join to MovieLens.

The file has one row per movie; ``id`` is the TMDB id, which MovieLens' ``links.csv``
maps to ``movieId`` (``tmdbId``). Several columns hold JSON lists of objects
(``[{"id": 28, "name": "Action"}, ...]``); they are parsed to lists of names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from cinerec.data.dataset import Dataset
from cinerec.errors import DataFormatError

#: Columns holding JSON lists of {"...", "name": ...} objects.
JSON_LIST_COLUMNS: tuple[str, ...] = (
    "genres",
    "keywords",
    "production_companies",
    "production_countries",
    "spoken_languages",
)

_NUMERIC = {
    "budget": pl.Int64,
    "id": pl.Int64,
    "popularity": pl.Float64,
    "revenue": pl.Int64,
    "runtime": pl.Float64,
    "vote_average": pl.Float64,
    "vote_count": pl.Int64,
}


@dataclass(frozen=True)
class JoinReport:
    """How well a metadata source joined to a data set's catalogue."""

    source: str
    matched: int  # items that got a metadata row
    total: int  # items in the catalogue
    with_key: int  # items that have a join key at all (e.g. a tmdbId in links.csv)

    @property
    def match_rate(self) -> float:
        """Matched share of the whole catalogue."""
        return self.matched / self.total if self.total else 0.0

    def __str__(self) -> str:
        return (
            f"{self.source}: matched {self.matched:,} of {self.total:,} movies "
            f"({self.match_rate:.1%}; {self.with_key:,} have a key)"
        )


def read_tmdb(path: str | Path) -> pl.DataFrame:
    """Load a ``tmdb_5000_movies.csv``-format file with typed columns.

    JSON-list columns become ``list[str]`` of names, numbers are typed, ``release_date``
    is a date. Raises `DataFormatError` naming the file when a column is missing or a
    JSON cell does not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"TMDB file {path} does not exist")
    try:
        df = pl.read_csv(path, infer_schema=False)  # all strings; we type columns below
    except pl.exceptions.PolarsError as e:
        raise DataFormatError(f"{path} is not a readable CSV file: {e}") from e
    missing = [c for c in ("id", "title") if c not in df.columns]
    if missing:
        raise DataFormatError(f"{path} lacks column(s) {missing}; is it tmdb_5000_movies.csv?")
    exprs = []
    for col, dtype in _NUMERIC.items():
        if col in df.columns:
            exprs.append(pl.col(col).str.strip_chars().cast(dtype, strict=False))
    if "release_date" in df.columns:
        exprs.append(pl.col("release_date").str.to_date("%Y-%m-%d", strict=False))
    for col in JSON_LIST_COLUMNS:
        if col in df.columns:
            try:
                names = (
                    pl.col(col)
                    .str.json_decode(dtype=pl.List(pl.Struct({"name": pl.String})))
                    .list.eval(pl.element().struct.field("name"))
                )
                df.select(names)  # surface a parse error on this column now
            except pl.exceptions.PolarsError as e:
                raise DataFormatError(f"{path}: column {col!r} holds invalid JSON ({e})") from e
            exprs.append(names.fill_null(pl.lit([], dtype=pl.List(pl.String))))
    out = df.with_columns(exprs)
    bad = out.filter(pl.col("id").is_null()).height
    if bad:
        raise DataFormatError(f"{path}: {bad} row(s) have no numeric TMDB id in column 'id'")
    return out


def join_tmdb(dataset: Dataset, tmdb: pl.DataFrame) -> tuple[pl.DataFrame, JoinReport]:
    """Left-join TMDB rows onto ``dataset.items_meta`` through ``tmdbId``.

    Returns the items frame (one row per item index, in order) with TMDB columns
    prefixed ``tmdb_``, and a `JoinReport`. Needs links (``tmdbId``) in the data set.
    """
    items = dataset.items_meta
    if items is None or "tmdbId" not in items.columns:
        raise DataFormatError(
            f"{dataset.name} has no tmdbId links (links.csv); TMDB can only join to the CSV "
            "releases (ml-20m and later, ml-latest, ml-latest-small)"
        )
    # A TMDB id may appear twice in the Kaggle file; keep one row so items stay unique.
    right = tmdb.unique("id", keep="first", maintain_order=True)
    right = right.rename({c: f"tmdb_{c}" for c in right.columns if c != "id"})
    right = right.with_columns(pl.lit(True).alias("_tmdb_hit"))
    joined = (
        items.join(right, left_on="tmdbId", right_on="id", how="left")
        .sort("item")
    )
    matched = int(joined.get_column("_tmdb_hit").fill_null(False).sum())
    report = JoinReport(
        source="tmdb",
        matched=matched,
        total=items.height,
        with_key=int(items.get_column("tmdbId").is_not_null().sum()),
    )
    return joined.drop("_tmdb_hit"), report


def tmdb_vote_dataset(tmdb: pl.DataFrame, min_votes: int = 1) -> Dataset:
    """Paper 003's own task as a `Dataset`: one pseudo-user ("tmdb") whose rating of
    each movie is its TMDB ``vote_average`` (scale 0-10), so any rating model predicts
    a movie's average vote from what it is. Movies with fewer than ``min_votes`` votes
    are left out (their average of 0 is "no votes", not a vote of 0). The item table
    has ``title``, ``year`` (release year), ``genres`` (TMDB's) and every column
    ``tmdb_``-prefixed, as `join_tmdb` gives them; raw item ids are TMDB ids.
    """
    from cinerec.data.dataset import IdMap

    if "vote_average" not in tmdb.columns or "vote_count" not in tmdb.columns:
        raise DataFormatError("the TMDB table needs vote_average and vote_count columns")
    rows = tmdb.filter(pl.col("vote_count").fill_null(0) >= min_votes).unique(
        "id", keep="first", maintain_order=True
    )
    rows = rows.filter(pl.col("vote_average").is_not_null()).sort("id")
    if rows.height == 0:
        raise DataFormatError(f"no TMDB movie has at least {min_votes} vote(s)")
    ids = rows.get_column("id").to_numpy().astype(np.int64)
    n = ids.shape[0]
    meta = rows.rename({c: f"tmdb_{c}" for c in rows.columns if c != "id"})
    year = (
        meta.get_column("tmdb_release_date").dt.year()
        if "tmdb_release_date" in meta.columns
        else pl.Series([None] * n)
    )
    items_meta = pl.DataFrame({
        "item": np.arange(n, dtype=np.int32),
        "movieId": ids,
        "title": meta.get_column("tmdb_title"),
        "year": year.cast(pl.Int32),
        "genres": meta.get_column("tmdb_genres") if "tmdb_genres" in meta.columns else pl.Series([[]] * n),
    }).hstack(meta.drop("id"))  # fmt: skip
    return Dataset(
        name="tmdb-votes",
        users=np.zeros(n, dtype=np.int32),
        items=np.arange(n, dtype=np.int32),
        ratings=rows.get_column("vote_average").to_numpy().astype(np.float32),
        timestamps=np.zeros(n, dtype=np.int64),
        user_ids=IdMap(np.array([0], dtype=np.int64)),
        item_ids=IdMap(ids),
        rating_scale=(0.0, 10.0),
        items_meta=items_meta,
    )
