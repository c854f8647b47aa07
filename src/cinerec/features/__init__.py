"""Model inputs computed from the training set only.

* `moments`: per-group rating moments (mean, sigma, consistency, polarization): the one
  place those formulas are defined (the variance analysis in `cinerec.stats` uses them).
* `risk`: per-item risk signals every recommendation carries (and risk-averse ranking).
* `rating`: paper 004's six rating-statistics features.

Everything here may import `cinerec.data` only; models and stats import from here.
"""

from cinerec.features.moments import (
    GroupStats,
    consistency_score,
    group_stats,
    item_group_stats,
    polarization_score,
    sigma_max,
    user_group_stats,
)
from cinerec.features.rating import FEATURE_NAMES, FeatureStats, rating_features
from cinerec.features.risk import SUPPORT_PRIOR, item_risk

__all__ = [
    "FEATURE_NAMES",
    "SUPPORT_PRIOR",
    "FeatureStats",
    "GroupStats",
    "consistency_score",
    "group_stats",
    "item_group_stats",
    "item_risk",
    "polarization_score",
    "rating_features",
    "sigma_max",
    "user_group_stats",
]
