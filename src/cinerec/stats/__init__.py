"""Variance analysis of ratings (paper 000, sections 3.3, 4.3, 5.3).

* `core`: per-movie / per-user tables of mean, sigma (``ddof`` 0 = population, the
  paper's 1/N), count, consistency and polarization; the formulas themselves live in
  `cinerec.features.moments` (shared with the model inputs).
* `tables`: tier and genre tables, sigma-mean correlation, user classes and genre
  entropy; `holiday`: holiday variance tests; `claims`: what paper 000 reports.
* `analysis`: `analyze` bundles them into a `VarianceAnalysis`.
* `report`: markdown/CSV files, terminal tables and figures.
"""

from cinerec.errors import StatsError
from cinerec.stats.analysis import VarianceAnalysis, analyze
from cinerec.stats.core import movie_stats, user_stats
from cinerec.stats.holiday import holiday_mask, holiday_variance
from cinerec.stats.tables import (
    genre_table,
    sigma_mean_correlation,
    tier_table,
    user_class_of,
    user_class_table,
    user_class_test,
    user_genre_entropy,
    user_table,
)

__all__ = [
    "StatsError",
    "VarianceAnalysis",
    "analyze",
    "genre_table",
    "holiday_mask",
    "holiday_variance",
    "movie_stats",
    "sigma_mean_correlation",
    "tier_table",
    "user_class_of",
    "user_class_table",
    "user_class_test",
    "user_genre_entropy",
    "user_stats",
    "user_table",
]
