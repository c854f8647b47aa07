"""Per-movie and per-user statistics frames (paper 000, section 3.3).

The formulas (mean, sigma, consistency, polarization) live in
`cinerec.features.moments`, shared with the model inputs; this module turns them into
the tables the variance analysis reads.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from cinerec.data.dataset import Dataset
from cinerec.errors import StatsError
from cinerec.features.moments import GroupStats, item_group_stats, user_group_stats


def _check_min_count(min_count: int) -> None:
    if min_count < 1:
        raise StatsError(
            f"min_count={min_count} must be >= 1 (groups without ratings have no sigma)"
        )


def _frame(gs: GroupStats, key: str, raw_ids: np.ndarray, min_count: int) -> pl.DataFrame:
    _check_min_count(min_count)
    keep = np.nonzero(gs.count >= min_count)[0]
    return pl.DataFrame(
        {
            key: keep.astype(np.int32),
            f"{key}_id": raw_ids[keep],
            "count": gs.count[keep],
            "mean": gs.mean[keep],
            "sigma": gs.sigma[keep],
            "consistency": gs.consistency[keep],
            "polarization": gs.polarization[keep],
        }
    )


def movie_stats(ds: Dataset, min_count: int = 1, ddof: int = 0) -> pl.DataFrame:
    """One row per movie with at least ``min_count`` ratings.

    Columns: item (index), item_id (raw), count, mean, sigma, consistency, polarization.
    """
    return _frame(item_group_stats(ds, ddof), "item", ds.item_ids.ids, min_count)


def user_stats(ds: Dataset, min_count: int = 1, ddof: int = 0) -> pl.DataFrame:
    """One row per user with at least ``min_count`` ratings (same columns, ``user``)."""
    return _frame(user_group_stats(ds, ddof), "user", ds.user_ids.ids, min_count)
