"""Per-group rating moments (per movie, per user) and the two bounded scores.

Everything here is a pure, vectorised function of index and rating arrays
(`numpy.bincount`, no Python loop over ratings). It is the single place where sigma,
consistency and polarization are defined; the model inputs (`features.risk`,
`features.rating`) and the variance analysis (`cinerec.stats`) call it.

Definitions (rating scale [lo, hi], a group g with ratings r_1..r_N):

* mean_g = (1/N) sum r_i
* sigma_g = sqrt( sum (r_i - mean_g)^2 / (N - ddof) ). ``ddof=0`` (default) is the
  population sd of paper 000 eq. 3.3 (1/N); ``ddof=1`` is the sample sd (pandas'
  default, used by paper 004). With ``ddof=1`` a group of one rating has sigma NaN.
* consistency_g = clip(1 - sigma_g / sigma_max, 0, 1), sigma_max = (hi - lo) / 2: the
  largest population sd on the scale (half the ratings at lo, half at hi). 1 = everyone
  agrees, 0 = maximally split. (The clip only binds for ``ddof=1`` and tiny N.)
* polarization_g = 2 * min(p_low, p_high), p_low = share of ratings <= lo + 1,
  p_high = share >= hi - 1 (on 0.5..5: <= 1.5 and >= 4.0). This is the share of ratings
  at both extremes, (p_low + p_high), weighted by their balance,
  1 - |p_low - p_high| / (p_low + p_high). 1 = half love it, half hate it; 0 = nobody
  is at one of the two ends. We do not use the bimodality coefficient: it measures the
  shape only (two adjacent half-stars score as "bimodal"), not whether the audience is
  split across the scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.errors import StatsError


@dataclass(frozen=True)
class GroupStats:
    """Moments of every group (movie or user) in an index space; NaN where undefined."""

    count: np.ndarray  # int64
    mean: np.ndarray  # float64, NaN where count == 0
    sigma: np.ndarray  # float64, NaN where count - ddof <= 0
    p_low: np.ndarray  # share of ratings <= lo + 1
    p_high: np.ndarray  # share of ratings >= hi - 1
    ddof: int
    rating_scale: tuple[float, float]

    @property
    def consistency(self) -> np.ndarray:
        return consistency_score(self.sigma, self.rating_scale)

    @property
    def polarization(self) -> np.ndarray:
        return 2.0 * np.minimum(self.p_low, self.p_high)


def sigma_max(rating_scale: tuple[float, float]) -> float:
    """Largest population sd possible on the scale: (hi - lo) / 2."""
    lo, hi = rating_scale
    if not hi > lo:
        raise StatsError(f"rating_scale {rating_scale} must have max > min")
    return (float(hi) - float(lo)) / 2.0


def consistency_score(sigma: np.ndarray, rating_scale: tuple[float, float]) -> np.ndarray:
    """1 - sigma / sigma_max, clipped to [0, 1] (NaN stays NaN)."""
    return np.clip(1.0 - np.asarray(sigma, dtype=np.float64) / sigma_max(rating_scale), 0.0, 1.0)


def polarization_score(ratings: np.ndarray, rating_scale: tuple[float, float]) -> float:
    """Polarization of one group of ratings: 2 * min(share <= lo+1, share >= hi-1)."""
    r = np.asarray(ratings, dtype=np.float64)
    if r.size == 0:
        return float("nan")
    lo, hi = rating_scale
    return float(2.0 * min(np.mean(r <= lo + 1.0), np.mean(r >= hi - 1.0)))


def group_stats(
    keys: np.ndarray,
    ratings: np.ndarray,
    n_groups: int,
    rating_scale: tuple[float, float],
    ddof: int = 0,
) -> GroupStats:
    """Count, mean, sigma and extreme shares of ``ratings`` grouped by ``keys``.

    Two passes (mean first, then squared deviations) rather than E[r^2] - E[r]^2, which
    loses precision when the variance is small next to the mean.
    """
    if ddof not in (0, 1):
        raise StatsError(f"ddof={ddof} is not supported; use 0 (population) or 1 (sample)")
    keys = np.asarray(keys)
    r = np.asarray(ratings, dtype=np.float64)
    count = np.bincount(keys, minlength=n_groups).astype(np.int64)
    nan = np.full(n_groups, np.nan)
    s1 = np.bincount(keys, weights=r, minlength=n_groups)
    mean = np.divide(s1, count, out=nan.copy(), where=count > 0)
    dev = r - mean[keys]
    np.square(dev, out=dev)
    ss = np.bincount(keys, weights=dev, minlength=n_groups)
    del dev
    denom = count - ddof
    var = np.divide(ss, denom, out=nan.copy(), where=denom > 0)
    lo, hi = rating_scale
    n_low = np.bincount(keys[r <= lo + 1.0], minlength=n_groups)
    n_high = np.bincount(keys[r >= hi - 1.0], minlength=n_groups)
    p_low = np.divide(n_low, count, out=nan.copy(), where=count > 0)
    p_high = np.divide(n_high, count, out=nan.copy(), where=count > 0)
    return GroupStats(
        count=count,
        mean=mean,
        sigma=np.sqrt(np.clip(var, 0.0, None)),
        p_low=p_low,
        p_high=p_high,
        ddof=ddof,
        rating_scale=(float(lo), float(hi)),
    )


def item_group_stats(ds: Dataset, ddof: int = 0) -> GroupStats:
    """Per-item stats over the whole catalogue (``ds.n_items`` entries)."""
    return group_stats(ds.items, ds.ratings, ds.n_items, ds.rating_scale, ddof)


def user_group_stats(ds: Dataset, ddof: int = 0) -> GroupStats:
    """Per-user stats over the whole user index space (``ds.n_users`` entries)."""
    return group_stats(ds.users, ds.ratings, ds.n_users, ds.rating_scale, ddof)
