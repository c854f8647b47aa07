"""Assembling one `Dataset` from the parsed frames of a release.

Raw ids become contiguous indices (`IdMap`), duplicate (user, movie) ratings are
merged by policy (a sparse matrix would otherwise sum them), the metadata frames are
aligned to the item / user index, and the result is checked by `check_invariants`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from cinerec._util import console
from cinerec.data.dataset import Dataset, IdMap
from cinerec.data.invariants import check_invariants, pair_keys
from cinerec.data.movielens import members
from cinerec.data.movielens.archive import ArchiveLimits, Source
from cinerec.data.movielens.formats import Duplicates, OnBadLines
from cinerec.data.movielens.readers import LoadReport
from cinerec.errors import DataFormatError

DUPLICATE_POLICIES = ("latest", "error", "mean")


def check_options(on_bad_lines: str, duplicates: str) -> None:
    """`DataFormatError` for an unknown ``on_bad_lines`` / ``duplicates`` value."""
    if on_bad_lines not in ("error", "skip"):
        raise DataFormatError(f'on_bad_lines must be "error" or "skip", got {on_bad_lines!r}')
    if duplicates not in DUPLICATE_POLICIES:
        raise DataFormatError(f'duplicates must be "latest", "error" or "mean", got {duplicates!r}')


def _index(raw: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids of ``raw`` ∪ ``extra`` and the int32 index of each ``raw`` value.

    Ids are small non-negative integers in every MovieLens release, so a presence table
    (O(n)) replaces the O(n log n) sort of ``np.unique`` when it is cheap enough.
    """
    raw = np.asarray(raw, dtype=np.int64)
    extra = np.asarray(extra if extra is not None else [], dtype=np.int64)
    both_min = min(raw.min(initial=0), extra.min(initial=0))
    hi = int(max(raw.max(initial=0), extra.max(initial=0)))
    if both_min >= 0 and hi < 4 * (raw.size + extra.size) + 50_000_000:
        present = np.zeros(hi + 1, dtype=bool)
        present[raw] = True
        present[extra] = True
        ids = np.flatnonzero(present).astype(np.int64)
        lut = np.full(hi + 1, -1, dtype=np.int32)
        lut[ids] = np.arange(ids.size, dtype=np.int32)
        return ids, lut[raw]
    ids = np.unique(np.concatenate([raw, extra]))
    return ids, np.searchsorted(ids, raw).astype(np.int32)


def _index_column(ids: np.ndarray, col: str, out: str) -> pl.Expr:
    """Polars expression mapping raw ids in ``col`` to indices (null when unknown)."""
    lookup = IdMap(ids).lookup
    return pl.col(col).map_batches(
        lambda s: pl.Series(lookup(s.to_numpy())).cast(pl.Int32).replace(-1, None),
        return_dtype=pl.Int32,
    ).alias(out)


def merge_duplicates(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
    n_items: int,
    policy: Duplicates,
    describe: Callable[[int, int], str] = lambda u, i: f"user {u}, item {i}",
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Rows to keep (in file order), their ratings, and how many rows were merged; None
    when every (user, item) pair is distinct.

    ``"latest"`` keeps the row with the largest timestamp (ties: the last in the file);
    ``"mean"`` keeps that row with the mean rating of the pair; ``"error"`` raises
    `DataFormatError` naming one duplicated pair (via ``describe(user, item)``).
    """
    keys = pair_keys(users, items, n_items)
    if keys.size < 2 or (keys[1:] > keys[:-1]).all():
        return None
    order = np.lexsort((timestamps, keys))  # stable: equal (key, time) keep file order
    sk = keys[order]
    last = np.r_[sk[1:] != sk[:-1], True]
    n_groups = int(last.sum())
    if n_groups == keys.size:
        return None
    if policy == "error":
        j = int(np.flatnonzero(~last)[0])
        raise DataFormatError(
            f"{keys.size - n_groups} duplicate rating row(s), e.g. {describe(int(users[order[j]]), int(items[order[j]]))} "
            f'is rated more than once. Pass duplicates="latest" (keep the newest) or "mean"'
        )
    keep = order[last]
    out = np.asarray(ratings, dtype=np.float32)
    if policy == "mean":
        starts = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1]])
        sums = np.add.reduceat(out[order].astype(np.float64), starts)
        counts = np.diff(np.r_[starts, keys.size])
        out = out.copy()
        out[keep] = (sums / counts).astype(np.float32)
    rows = np.sort(keep)
    return rows, out[rows], keys.size - n_groups


def build_dataset(
    name: str,
    ratings: pl.DataFrame,
    *,
    movies: pl.DataFrame | None = None,
    links: pl.DataFrame | None = None,
    tags: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
    rating_scale: tuple[float, float] = (0.5, 5.0),
    genre_order: tuple[str, ...] | None = None,
    source: dict | None = None,
    duplicates: Duplicates = "latest",
    report: LoadReport | None = None,
    label: str = "ratings",
) -> Dataset:
    """Assemble a `Dataset` from parsed frames (raw ids in ``userId``/``movieId``).

    ``item_ids`` covers every movie of ``movies`` (rated or not) plus any movie only
    seen in ratings; ``user_ids`` covers the ratings' users plus those of ``users``.
    Duplicate (user, movie) ratings are merged by ``duplicates`` (`merge_duplicates`);
    the count goes to ``report``.
    """
    movie_extra = movies.get_column("movieId").to_numpy() if movies is not None else None
    user_extra = users.get_column("userId").to_numpy() if users is not None else None
    item_ids, items = _index(ratings.get_column("movieId").to_numpy(), movie_extra)
    user_ids, user_idx = _index(ratings.get_column("userId").to_numpy(), user_extra)
    n_items = item_ids.size
    values = ratings.get_column("rating").to_numpy()
    stamps = ratings.get_column("timestamp").to_numpy()

    def describe(u: int, i: int) -> str:
        return f"{label}: userId {user_ids[u]}, movieId {item_ids[i]}"

    merged = merge_duplicates(user_idx, items, values, stamps, n_items, duplicates, describe)
    if merged is not None:
        rows, values, n_merged = merged
        user_idx, items, stamps = user_idx[rows], items[rows], stamps[rows]
        if report is not None:
            report.duplicates_merged += n_merged

    items_meta = None
    item_genres = None
    genre_names: tuple[str, ...] = ()
    if movies is not None:
        movies = movies.unique("movieId", keep="first", maintain_order=True)
        base = pl.DataFrame({"item": np.arange(n_items, dtype=np.int32), "movieId": item_ids})
        items_meta = base.join(movies, on="movieId", how="left")
        if links is not None:
            links = links.unique("movieId", keep="first", maintain_order=True)
            items_meta = items_meta.join(links.select("movieId", "imdbId", "tmdbId"), on="movieId", how="left")
        items_meta = items_meta.sort("item")
        items_meta = items_meta.with_columns(pl.col("genres").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        exploded = items_meta.select("item", "genres").explode("genres").drop_nulls("genres")
        present = set(exploded.get_column("genres").unique().to_list())
        if genre_order is not None:
            genre_names = tuple(g for g in genre_order if g in present)
        else:
            genre_names = tuple(sorted(present))
        item_genres = np.zeros((n_items, len(genre_names)), dtype=bool)
        if genre_names:
            codes = (
                exploded.get_column("genres")
                .replace_strict(list(genre_names), list(range(len(genre_names))), return_dtype=pl.Int64)
                .to_numpy()
            )
            item_genres[exploded.get_column("item").to_numpy(), codes] = True

    users_meta = None
    if users is not None:
        users = users.unique("userId", keep="first", maintain_order=True)
        users_meta = (
            pl.DataFrame({"user": np.arange(user_ids.size, dtype=np.int32), "userId": user_ids})
            .join(users, on="userId", how="left")
            .sort("user")
        )

    tags_frame = None
    if tags is not None:
        tags_frame = tags.select(
            _index_column(user_ids, "userId", "user"),
            _index_column(item_ids, "movieId", "item"),
            "userId",
            "movieId",
            "tag",
            "timestamp",
        )

    return Dataset(
        name=name,
        users=user_idx,
        items=items,
        ratings=values,
        timestamps=stamps,
        user_ids=IdMap(user_ids),
        item_ids=IdMap(item_ids),
        rating_scale=rating_scale,
        items_meta=items_meta,
        users_meta=users_meta,
        item_genres=item_genres,
        genre_names=genre_names,
        tags=tags_frame,
        source=source or {},
    )


def warn(report: dict) -> None:
    """Print each repair of a load report as one warning line on stderr."""
    for line in LoadReport.warnings_of(report):
        console.console(stderr=True).print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)


def load_movielens(
    path: str | Path,
    *,
    name: str | None = None,
    on_bad_lines: OnBadLines = "error",
    duplicates: Duplicates = "latest",
    limits: ArchiveLimits | None = None,
    progress: bool = False,
) -> Dataset:
    """Parse a MovieLens release (folder or zip, any format) into a `Dataset` (no cache).

    ``on_bad_lines="skip"`` drops malformed lines and bad values (a rating that is NaN,
    infinite or outside the release's scale, a negative timestamp); ``duplicates``
    merges repeated (user, movie) ratings (`merge_duplicates`). Every repair is printed
    as a warning line and recorded in ``Dataset.source["load_report"]`` (skipped lines
    per file also in ``source["skipped_lines"]``). ``limits`` caps zip members.
    """
    check_options(on_bad_lines, duplicates)
    src = Source(path, limits)
    report = LoadReport(duplicates=duplicates)
    try:
        with console.status(progress, f"parsing {src.path.name} ({src.format})"):
            ratings = members.ratings(src, on_bad_lines, report)
            movies = members.movies(src, on_bad_lines, report)
            links = members.links(src, on_bad_lines, report)
            tags = members.tags(src, on_bad_lines, report)
            users = members.users(src, on_bad_lines, report)
    finally:
        src.close()
    fmt = src.spec
    ds_name = name or _default_name(src.path)
    source = {
        "name": ds_name,
        "path": str(src.path),
        "format": fmt.name,
        "root": str(src.root),
        "skipped_lines": report.skipped_lines,
    }
    ds = build_dataset(
        ds_name,
        ratings,
        movies=movies,
        links=links,
        tags=tags,
        users=users,
        rating_scale=fmt.rating_scale,
        genre_order=fmt.genre_order,
        source=source,
        duplicates=duplicates,
        report=report,
        label=src.label(fmt.ratings.member),
    )
    source["load_report"] = report.as_dict()
    warn(source["load_report"])
    check_invariants(ds, str(src.path))
    return ds


def _default_name(path: Path) -> str:
    stem = path.name[:-4] if path.name.endswith(".zip") else path.name
    return re.sub(r"\s+", "-", stem) or "movielens"
