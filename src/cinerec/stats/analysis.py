"""Paper 000's variance analysis (sections 3.3, 4.3, 5.3), bundled.

`analyze` runs every table of `cinerec.stats.tables` and `cinerec.stats.holiday` on a
`Dataset` (or a split's train part) into one `VarianceAnalysis`; `cinerec.stats.report`
renders it (markdown, CSV, terminal, figures). The formulas live in
`cinerec.features.moments`; each table is defined in its function's docstring and in
``docs/stats.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from cinerec.data.dataset import Dataset
from cinerec.errors import StatsError
from cinerec.stats.claims import PAPER_CLAIMS
from cinerec.stats.core import _check_min_count, movie_stats
from cinerec.stats.holiday import DEFAULT_HOLIDAY, holiday_variance
from cinerec.stats.tables import (
    genre_table,
    sigma_mean_correlation,
    tier_table,
    user_class_table,
    user_class_test,
    user_table,
)


@dataclass
class VarianceAnalysis:
    """All tables of the variance analysis of one data set (polars frames)."""

    dataset: str
    n_ratings: int
    n_users: int
    n_items: int
    rating_scale: tuple[float, float]
    min_count: int
    ddof: int
    holiday_window: str
    movies: pl.DataFrame
    users: pl.DataFrame
    tiers: pl.DataFrame
    genres: pl.DataFrame
    correlation: pl.DataFrame
    user_classes: pl.DataFrame
    user_tests: pl.DataFrame
    holiday: pl.DataFrame
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, pl.DataFrame]:
        """The report tables by file stem (per-movie and per-user rows included)."""
        return {
            "tiers": self.tiers,
            "genres": self.genres,
            "correlation": self.correlation,
            "user_classes": self.user_classes,
            "user_tests": self.user_tests,
            "holiday": self.holiday,
            "movies": self.movies,
            "users": self.users,
        }

    def paper_comparison(self) -> pl.DataFrame:
        """Paper 000's claimed numbers next to ours (NaN where we cannot measure)."""
        ours: dict[str, float] = {}
        for row, key in zip(
            self.tiers.iter_rows(named=True), ("high", "medium", "low"), strict=True
        ):
            ours[f"tier {key}: sigma"] = row["sigma"]
            ours[f"tier {key}: consistency"] = row["consistency"]
        for row in self.genres.iter_rows(named=True):
            ours[f"{row['genre']}: sigma"] = row["sigma"]
        pear = self.correlation.filter(pl.col("method") == "pearson")
        if len(pear):
            ours["corr(sigma, mean) pearson"] = pear.item(0, "r")
        for row in self.holiday.iter_rows(named=True):
            ours[f"{row['genre']} holiday sigma"] = row["sigma_holiday"]
            ours[f"{row['genre']} rest sigma"] = row["sigma_rest"]
        return pl.DataFrame(
            {
                "quantity": list(PAPER_CLAIMS),
                "paper": list(PAPER_CLAIMS.values()),
                "measured": [ours.get(k, float("nan")) for k in PAPER_CLAIMS],
            },
            schema={"quantity": pl.Utf8, "paper": pl.Float64, "measured": pl.Float64},
        )


def analyze(
    dataset: Dataset,
    min_count: int = 10,
    ddof: int = 0,
    holiday_window: str = DEFAULT_HOLIDAY,
) -> VarianceAnalysis:
    """Run the full variance analysis of paper 000 on ``dataset``.

    ``min_count`` is the minimum support: movies and users with fewer ratings are left
    out of every table (their sigma is noise), and a holiday group needs that many
    ratings to be tested. Pass a split's ``train`` to keep test data out.
    """
    _check_min_count(min_count)
    if dataset.n_ratings == 0:
        raise StatsError(f"data set {dataset.name!r} has no ratings to analyse")
    notes: list[str] = []
    movies = movie_stats(dataset, min_count=min_count, ddof=ddof)
    if len(movies) == 0:
        raise StatsError(
            f"no movie in {dataset.name!r} has >= {min_count} ratings; lower --min-count"
        )
    users = user_table(dataset, min_count=min_count, ddof=ddof)
    if dataset.item_genres is None or not dataset.genre_names:
        notes.append("no genre metadata: genre table and genre entropy are empty")
    if not np.any(dataset.timestamps):
        notes.append("no timestamps: holiday analysis skipped")
        holiday = holiday_variance(
            dataset.subset(np.zeros(0, dtype=np.int64)), holiday_window, min_count
        )
    else:
        holiday = holiday_variance(dataset, holiday_window, min_count)
    return VarianceAnalysis(
        dataset=dataset.name,
        n_ratings=dataset.n_ratings,
        n_users=dataset.n_active_users,
        n_items=dataset.n_rated_items,
        rating_scale=tuple(float(x) for x in dataset.rating_scale),
        min_count=min_count,
        ddof=ddof,
        holiday_window=holiday_window,
        movies=movies,
        users=users,
        tiers=tier_table(movies),
        genres=genre_table(dataset, movies),
        correlation=sigma_mean_correlation(movies),
        user_classes=user_class_table(users),
        user_tests=user_class_test(users),
        holiday=holiday,
        notes=notes,
    )
