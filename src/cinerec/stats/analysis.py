"""Paper 000's variance analysis (sections 3.3, 4.3, 5.3), measured and tested.

Pure functions from a `Dataset` (or a split's train part) to polars tables, bundled by
`analyze` into a `VarianceAnalysis`. The formulas live in `cinerec.stats.core`; the
definitions of each table are in the function docstrings and in ``docs/stats.md``.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy import stats as sps

from cinerec.data.dataset import Dataset
from cinerec.stats.core import StatsError, _check_min_count, movie_stats, user_group_stats

#: Movie tiers by mean rating, as in paper 000 table "Statistical Variance Analysis".
TIERS: tuple[tuple[str, float, float], ...] = (
    ("high (>= 4.0)", 4.0, math.inf),
    ("medium (2.5-4.0)", 2.5, 4.0),
    ("low (< 2.5)", -math.inf, 2.5),
)
#: User classes by population sigma (paper 000, 5.3).
EXPLORATORY_SIGMA = 1.5
CONSISTENT_SIGMA = 0.8
#: Holiday windows: (month, day) start and end, inclusive, in UTC; may wrap the year.
HOLIDAY_WINDOWS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "dec15-jan5": ((12, 15), (1, 5)),
    "december": ((12, 1), (12, 31)),
}
DEFAULT_HOLIDAY = "dec15-jan5"

#: What paper 000 reports (claims, not measurements), for side-by-side tables.
PAPER_CLAIMS: dict[str, float] = {
    "tier high: sigma": 0.89,
    "tier medium: sigma": 1.23,
    "tier low: sigma": 1.67,
    "tier high: consistency": 0.794,
    "tier medium: consistency": 0.617,
    "tier low: consistency": 0.432,
    "Action: sigma": 1.42,
    "Drama: sigma": 1.18,
    "Comedy: sigma": 1.38,
    "corr(sigma, mean) pearson": -0.743,
    "Comedy holiday sigma": 1.62,
    "Comedy rest sigma": 1.38,
    "Drama holiday sigma": 1.19,
    "Drama rest sigma": 1.18,
}

_SUMMARY_COLS = (
    "n_movies",
    "n_ratings",
    "avg_rating",
    "sigma",
    "sigma_median",
    "consistency",
    "polarization",
)


# ---- tier and genre tables ---------------------------------------------------------
def _summaries(movies: pl.DataFrame, member: np.ndarray) -> dict[str, np.ndarray]:
    """Column sums over a (n_movies, n_groups) 0/1 membership matrix, vectorised.

    Each group row: n_movies, n_ratings, avg_rating = unweighted mean of the movies'
    mean ratings, sigma = mean of their population sds, sigma_median, consistency and
    polarization = means of the per-movie scores.
    """
    m = member.astype(np.float64)
    n = m.sum(axis=0)

    def avg(col: str) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (m.T @ movies.get_column(col).to_numpy().astype(np.float64)) / n

    sig = movies.get_column("sigma").to_numpy()
    med = np.array(
        [np.median(sig[member[:, g]]) if n[g] else np.nan for g in range(member.shape[1])]
    )
    return {
        "n_movies": n.astype(np.int64),
        "n_ratings": (m.T @ movies.get_column("count").to_numpy().astype(np.float64)).astype(
            np.int64
        ),
        "avg_rating": avg("mean"),
        "sigma": avg("sigma"),
        "sigma_median": med,
        "consistency": avg("consistency"),
        "polarization": avg("polarization"),
    }


def tier_of(mean: np.ndarray) -> np.ndarray:
    """Tier label of each movie mean (>= 4.0 high, [2.5, 4.0) medium, < 2.5 low)."""
    mean = np.asarray(mean, dtype=np.float64)
    labels = np.array([t[0] for t in TIERS], dtype=object)
    conds = [(mean >= lo) & (mean < hi) for _, lo, hi in TIERS]
    return np.select(conds, labels, default=None)


def tier_table(movies: pl.DataFrame) -> pl.DataFrame:
    """Paper 000's tier table from `movie_stats` rows: one row per tier (always three)."""
    tiers = tier_of(movies.get_column("mean").to_numpy())
    member = (
        np.column_stack([tiers == t[0] for t in TIERS])
        if len(movies)
        else np.zeros((0, len(TIERS)), dtype=bool)
    )
    s = _summaries(movies, member)
    return pl.DataFrame({"tier": [t[0] for t in TIERS], **s})


def genre_table(ds: Dataset, movies: pl.DataFrame) -> pl.DataFrame:
    """The tier-table columns per genre; a movie counts in each of its genres.

    Empty frame when the data set has no genre metadata. Sorted by n_ratings.
    """
    if ds.item_genres is None or not ds.genre_names:
        return pl.DataFrame(schema={"genre": pl.Utf8, **{c: pl.Float64 for c in _SUMMARY_COLS}})
    member = np.asarray(ds.item_genres, dtype=bool)[movies.get_column("item").to_numpy()]
    s = _summaries(movies, member)
    out = pl.DataFrame({"genre": list(ds.genre_names), **s})
    return out.filter(pl.col("n_movies") > 0).sort("n_ratings", descending=True)


# ---- correlation ------------------------------------------------------------------
def _fisher_ci(r: float, n: int, se_factor: float, level: float) -> tuple[float, float]:
    if n < 4 or not np.isfinite(r):
        return (float("nan"), float("nan"))
    z = np.arctanh(np.clip(r, -0.999999999, 0.999999999))
    half = sps.norm.ppf(0.5 + level / 2) * math.sqrt(se_factor / (n - 3))
    return (float(np.tanh(z - half)), float(np.tanh(z + half)))


def sigma_mean_correlation(movies: pl.DataFrame, level: float = 0.95) -> pl.DataFrame:
    """Pearson and Spearman correlation of movie sigma with movie mean.

    p-values from scipy; confidence intervals by Fisher z: tanh(atanh(r) +- z_a * se),
    se = 1/sqrt(n-3) (Pearson) and sqrt(1.06/(n-3)) (Spearman, Fieller et al. 1957).
    """
    x = movies.get_column("sigma").to_numpy().astype(np.float64)
    y = movies.get_column("mean").to_numpy().astype(np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    rows = []
    for method, fn, factor in (("pearson", sps.pearsonr, 1.0), ("spearman", sps.spearmanr, 1.06)):
        if n >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            res = fn(x, y)
            r, p = float(res.statistic), float(res.pvalue)
        else:
            r, p = float("nan"), float("nan")
        lo, hi = _fisher_ci(r, n, factor, level)
        rows.append({"method": method, "n": n, "r": r, "ci_low": lo, "ci_high": hi, "p_value": p})
    return pl.DataFrame(rows)


# ---- users: classes and genre diversity --------------------------------------------
def user_genre_entropy(ds: Dataset) -> np.ndarray:
    """Shannon entropy (bits) of each user's rated-genre distribution.

    Counts C = (user x item rating indicator) @ (item x genre multi-hot); a rating of a
    movie with k genres adds 1 to each of them. H_u = -sum_g p_ug log2 p_ug with
    p_ug = C_ug / sum_g C_ug. NaN for users without any genre-tagged rating.
    """
    if ds.item_genres is None or not ds.genre_names:
        return np.full(ds.n_users, np.nan)
    a = sp.csr_matrix(
        (np.ones(ds.n_ratings, dtype=np.float32), (ds.users, ds.items)),
        shape=(ds.n_users, ds.n_items),
    )
    g = sp.csr_matrix(np.asarray(ds.item_genres, dtype=np.float32))
    counts = np.asarray((a @ g).todense(), dtype=np.float64)
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = sps.entropy(counts, base=2, axis=1)
    return np.where(total > 0, h, np.nan)


def user_class_of(sigma: np.ndarray) -> np.ndarray:
    """'exploratory' (sigma > 1.5), 'consistent' (sigma < 0.8), else 'moderate'."""
    sigma = np.asarray(sigma, dtype=np.float64)
    return np.select(
        [sigma > EXPLORATORY_SIGMA, sigma < CONSISTENT_SIGMA],
        ["exploratory", "consistent"],
        default="moderate",
    )


def user_table(ds: Dataset, min_count: int = 1, ddof: int = 0) -> pl.DataFrame:
    """Per user with >= min_count ratings: count, mean, sigma, class, genre_entropy."""
    _check_min_count(min_count)
    gs = user_group_stats(ds, ddof)
    keep = np.nonzero(gs.count >= min_count)[0]
    ent = user_genre_entropy(ds)[keep]
    return pl.DataFrame(
        {
            "user": keep.astype(np.int32),
            "user_id": ds.user_ids.ids[keep],
            "count": gs.count[keep],
            "mean": gs.mean[keep],
            "sigma": gs.sigma[keep],
            "user_class": user_class_of(gs.sigma[keep]),
            "genre_entropy": ent,
        }
    )


def user_class_table(users: pl.DataFrame) -> pl.DataFrame:
    """Per class: n_users, mean sigma, mean rating, median count, genre entropy mean/median."""
    order = ["exploratory", "moderate", "consistent"]
    out = users.group_by("user_class").agg(
        pl.len().alias("n_users"),
        pl.col("sigma").mean().alias("sigma"),
        pl.col("mean").mean().alias("avg_rating"),
        pl.col("count").median().alias("count_median"),
        pl.col("genre_entropy").mean().alias("entropy_mean"),
        pl.col("genre_entropy").median().alias("entropy_median"),
    )
    base = pl.DataFrame({"user_class": order})
    return base.join(out, on="user_class", how="left").with_columns(pl.col("n_users").fill_null(0))


def compare_groups(a: np.ndarray, b: np.ndarray, name: str) -> dict[str, float | str | int]:
    """Two-sided Mann-Whitney U of a vs b, with rank-biserial effect 2U/(n_a n_b) - 1.

    The effect is > 0 when values in ``a`` tend to be larger than in ``b``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    row: dict[str, float | str | int] = {
        "test": name,
        "n_a": int(a.size),
        "n_b": int(b.size),
        "median_a": float(np.median(a)) if a.size else float("nan"),
        "median_b": float(np.median(b)) if b.size else float("nan"),
        "u_statistic": float("nan"),
        "rank_biserial": float("nan"),
        "p_value": float("nan"),
    }
    if a.size and b.size:
        res = sps.mannwhitneyu(a, b, alternative="two-sided")
        row["u_statistic"] = float(res.statistic)
        row["rank_biserial"] = float(2.0 * res.statistic / (a.size * b.size) - 1.0)
        row["p_value"] = float(res.pvalue)
    return row


def user_class_test(users: pl.DataFrame) -> pl.DataFrame:
    """Paper 000 5.3 claim: exploratory users rate more diverse genres than consistent ones."""
    cls = users.get_column("user_class").to_numpy()
    ent = users.get_column("genre_entropy").to_numpy()
    cnt = users.get_column("count").to_numpy()
    rows = [
        compare_groups(
            ent[cls == "exploratory"],
            ent[cls == "consistent"],
            "genre entropy: exploratory vs consistent",
        ),
        # Entropy grows with the number of ratings; this row shows that confounder.
        compare_groups(
            cnt[cls == "exploratory"],
            cnt[cls == "consistent"],
            "rating count: exploratory vs consistent",
        ),
    ]
    return pl.DataFrame(rows)


# ---- time: holiday vs rest of year -------------------------------------------------
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

    def to_markdown(self) -> str:
        """The whole analysis as a markdown document."""
        from cinerec.stats.report import analysis_markdown

        return analysis_markdown(self)

    def write(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``variance.md`` and one CSV per table into ``out_dir``; return the paths.

        Each file is written to a temporary name and renamed, so no half-written file
        is left behind.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [_atomic_write(out / "variance.md", self.to_markdown())]
        for stem, df in {**self.tables(), "paper_comparison": self.paper_comparison()}.items():
            written.append(_atomic_write(out / f"{stem}.csv", df.write_csv()))
        return written


def _atomic_write(path: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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
