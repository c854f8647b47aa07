"""Variance analysis of ratings (paper 000, sections 3.3, 4.3, 5.3).

* `core`: per-movie / per-user mean, sigma (``ddof`` 0 = population, the paper's 1/N),
  count, consistency and polarization scores: the one place these formulas live.
* `analysis`: tier and genre tables, sigma-mean correlation, user classes and genre
  entropy, holiday variance tests, bundled by `analyze` into `VarianceAnalysis`.
* `signals`: train-only per-item risk signals used by every model's ``recommend``.
* `features`: paper 004's six train-only rating features.
* `report`: markdown, terminal tables and figures.
"""

from cinerec.stats.analysis import (
    VarianceAnalysis,
    analyze,
    genre_table,
    holiday_mask,
    holiday_variance,
    sigma_mean_correlation,
    tier_table,
    user_class_of,
    user_class_table,
    user_class_test,
    user_genre_entropy,
    user_table,
)
from cinerec.stats.core import (
    GroupStats,
    StatsError,
    consistency_score,
    group_stats,
    item_group_stats,
    movie_stats,
    polarization_score,
    sigma_max,
    user_group_stats,
    user_stats,
)
from cinerec.stats.features import FEATURE_NAMES, FeatureStats, rating_features

__all__ = [
    "FEATURE_NAMES",
    "FeatureStats",
    "GroupStats",
    "StatsError",
    "VarianceAnalysis",
    "analyze",
    "consistency_score",
    "genre_table",
    "group_stats",
    "holiday_mask",
    "holiday_variance",
    "item_group_stats",
    "movie_stats",
    "polarization_score",
    "rating_features",
    "sigma_max",
    "sigma_mean_correlation",
    "tier_table",
    "user_class_of",
    "user_class_table",
    "user_class_test",
    "user_genre_entropy",
    "user_group_stats",
    "user_stats",
    "user_table",
]
