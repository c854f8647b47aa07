"""Holiday variance (paper 000, 4.3): is the spread of ratings given in a holiday window
different from the rest of the year, per genre? Levene / Brown-Forsythe tests, exact on
the rating histogram.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import stats as sps

from cinerec.data.dataset import Dataset
from cinerec.errors import StatsError
from cinerec.stats.core import _check_min_count

#: Holiday windows: (month, day) start and end, inclusive, in UTC; may wrap the year.
HOLIDAY_WINDOWS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "dec15-jan5": ((12, 15), (1, 5)),
    "december": ((12, 1), (12, 31)),
}
DEFAULT_HOLIDAY = "dec15-jan5"


def holiday_mask(timestamps: np.ndarray, window: str = DEFAULT_HOLIDAY) -> np.ndarray:
    """True for ratings made inside the holiday window (UTC calendar day)."""
    if window not in HOLIDAY_WINDOWS:
        raise StatsError(
            f"unknown holiday window {window!r}; choose one of {sorted(HOLIDAY_WINDOWS)}"
        )
    (m0, d0), (m1, d1) = HOLIDAY_WINDOWS[window]
    days = np.asarray(timestamps, dtype=np.int64) // 86400
    if days.size == 0:
        return np.zeros(0, dtype=bool)
    # Calendar arithmetic on the (few thousand) distinct days, then one gather per rating.
    first = int(days.min())
    span = np.arange(first, int(days.max()) + 1).astype("datetime64[D]")
    months = span.astype("datetime64[M]")
    month = months.astype(np.int64) % 12 + 1
    day = (span - months).astype(np.int64) + 1
    key = month * 100 + day  # MMDD, comparable within a year
    start, end = m0 * 100 + d0, m1 * 100 + d1
    inside = (key >= start) & (key <= end) if start <= end else (key >= start) | (key <= end)
    return inside[days - first]


def _levene_row(name: str, hol: np.ndarray, rest: np.ndarray, min_count: int) -> dict:
    hol, rest = hol.astype(np.float64), rest.astype(np.float64)
    row = {
        "genre": name,
        "n_holiday": int(hol.size),
        "n_rest": int(rest.size),
        "mean_holiday": float(hol.mean()) if hol.size else float("nan"),
        "mean_rest": float(rest.mean()) if rest.size else float("nan"),
        "sigma_holiday": float(hol.std()) if hol.size else float("nan"),
        "sigma_rest": float(rest.std()) if rest.size else float("nan"),
        "levene_w": float("nan"),
        "p_value": float("nan"),
    }
    row["delta_sigma"] = row["sigma_holiday"] - row["sigma_rest"]
    if hol.size >= max(min_count, 2) and rest.size >= max(min_count, 2):
        res = sps.levene(hol, rest, center="median")
        row["levene_w"] = float(res.statistic)
        row["p_value"] = float(res.pvalue)
    return row


def _hist_median(values: np.ndarray, counts: np.ndarray) -> float:
    """np.median of the sample that has ``counts[l]`` copies of ``values[l]`` (sorted)."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    lo, hi = np.searchsorted(cum, [(n - 1) // 2, n // 2], side="right")
    return float((values[lo] + values[hi]) / 2)


def brown_forsythe_hist(
    values: np.ndarray, counts_a: np.ndarray, counts_b: np.ndarray
) -> tuple[float, float]:
    """Brown-Forsythe W and p of two samples given as counts over sorted ``values``.

    Exactly ``scipy.stats.levene(a, b, center='median')`` (same formula, a one-way ANOVA
    of |x - group median|), but O(levels) instead of O(ratings): used when ratings lie on
    a half-step grid, so 25M ratings cost one bincount, not one pass per genre.
    """
    v = np.asarray(values, dtype=np.float64)
    groups = [np.asarray(c, dtype=np.float64) for c in (counts_a, counts_b)]
    n = np.array([c.sum() for c in groups])
    z = [np.abs(v - _hist_median(v, c)) for c in groups]
    zbar_i = np.array([(c * zi).sum() / ni for c, zi, ni in zip(groups, z, n, strict=True)])
    zbar = (n * zbar_i).sum() / n.sum()
    numer = (n * (zbar_i - zbar) ** 2).sum()
    denom = sum((c * (zi - zb) ** 2).sum() for c, zi, zb in zip(groups, z, zbar_i, strict=True))
    k, total = 2, n.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        w = (total - k) / (k - 1) * numer / denom
    return float(w), float(sps.f.sf(w, k - 1, total - k))


def _hist_row(name: str, v: np.ndarray, ch: np.ndarray, cr: np.ndarray, min_count: int) -> dict:
    def moments(c: np.ndarray) -> tuple[float, float]:
        n = c.sum()
        if n == 0:
            return float("nan"), float("nan")
        m = float((c * v).sum() / n)
        return m, float(np.sqrt((c * (v - m) ** 2).sum() / n))

    (mh, sh), (mr, sr) = moments(ch), moments(cr)
    row = {
        "genre": name,
        "n_holiday": int(ch.sum()),
        "n_rest": int(cr.sum()),
        "mean_holiday": mh,
        "mean_rest": mr,
        "sigma_holiday": sh,
        "sigma_rest": sr,
        "delta_sigma": sh - sr,
        "levene_w": float("nan"),
        "p_value": float("nan"),
    }
    if row["n_holiday"] >= max(min_count, 2) and row["n_rest"] >= max(min_count, 2):
        row["levene_w"], row["p_value"] = brown_forsythe_hist(v, ch, cr)
    return row


def _half_step_levels(ratings: np.ndarray, lo: float) -> np.ndarray | None:
    """Level index of each rating on the grid lo, lo + 0.5, ...; None if any is off it."""
    x = (np.asarray(ratings, dtype=np.float32) - np.float32(lo)) * np.float32(2)
    lev = np.rint(x)
    if not np.array_equal(lev, x) or lev.min() < 0:
        return None
    return lev.astype(np.int32)


def holiday_variance(
    ds: Dataset, window: str = DEFAULT_HOLIDAY, min_count: int = 10, method: str = "auto"
) -> pl.DataFrame:
    """Per genre (and "(all)"): pooled population sigma of ratings in vs out of the window.

    Brown-Forsythe test of equal variance per row (Levene with center='median'), tested
    only when both groups have >= max(min_count, 2) ratings; q_value is the
    Benjamini-Hochberg adjusted p over the tested rows. ``method="scipy"`` passes the
    raw groups to ``scipy.stats.levene``; ``"histogram"`` computes the identical
    statistic from rating counts (ratings on a half-step grid only); ``"auto"`` picks
    the histogram when it applies.
    """
    _check_min_count(min_count)
    if method not in ("auto", "scipy", "histogram"):
        raise StatsError(f"method={method!r}: use 'auto', 'scipy' or 'histogram'")
    hol = holiday_mask(ds.timestamps, window)
    r = ds.ratings
    has_genres = ds.item_genres is not None and bool(ds.genre_names)
    genres = np.asarray(ds.item_genres, dtype=bool) if has_genres else None
    lo = float(ds.rating_scale[0])
    levels = _half_step_levels(r, lo) if method != "scipy" and r.size else None
    if method == "histogram" and levels is None and r.size:
        raise StatsError("method='histogram' needs ratings on a half-step grid; use 'scipy'")
    rows = []
    if levels is not None:
        n_lev = int(levels.max()) + 1
        v = lo + np.arange(n_lev) / 2.0
        key = (ds.items.astype(np.int64) * 2 + hol) * n_lev + levels
        h = np.bincount(key, minlength=ds.n_items * 2 * n_lev).reshape(ds.n_items, 2 * n_lev)
        tot = h.sum(axis=0)
        rows.append(_hist_row("(all)", v, tot[n_lev:], tot[:n_lev], min_count))
        if genres is not None:
            gh = genres.T.astype(np.float64) @ h  # (n_genres, 2 * levels): a movie in each genre
            for g, name in enumerate(ds.genre_names):  # loop over genres, not ratings
                if gh[g].sum() > 0:
                    rows.append(_hist_row(name, v, gh[g, n_lev:], gh[g, :n_lev], min_count))
    else:
        rows.append(_levene_row("(all)", r[hol], r[~hol], min_count))
        if genres is not None:
            for g, name in enumerate(ds.genre_names):  # loop over genres, not ratings
                m = genres[:, g][ds.items]
                if m.any():
                    rows.append(_levene_row(name, r[m & hol], r[m & ~hol], min_count))
    out = pl.DataFrame(rows).select(
        "genre",
        "n_holiday",
        "n_rest",
        "mean_holiday",
        "mean_rest",
        "sigma_holiday",
        "sigma_rest",
        "delta_sigma",
        "levene_w",
        "p_value",
    )
    p = out.get_column("p_value").to_numpy()
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = sps.false_discovery_control(p[ok], method="bh")
    return out.with_columns(pl.Series("q_value", q))


# ---- the bundle --------------------------------------------------------------------
