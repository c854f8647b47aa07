"""Movie and user tables of the variance analysis (paper 000, sections 3.3, 4.3, 5.3):
rating tiers, genres, the sigma-mean correlation, user classes and their tests.

Pure functions from a `Dataset` or a per-movie / per-user frame to polars tables.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy import stats as sps

from cinerec.data.dataset import Dataset
from cinerec.features.moments import user_group_stats
from cinerec.stats.core import _check_min_count

#: Movie tiers by mean rating, as in paper 000 table "Statistical Variance Analysis".
TIERS: tuple[tuple[str, float, float], ...] = (
    ("high (>= 4.0)", 4.0, math.inf),
    ("medium (2.5-4.0)", 2.5, 4.0),
    ("low (< 2.5)", -math.inf, 2.5),
)
#: User classes by population sigma (paper 000, 5.3).
EXPLORATORY_SIGMA = 1.5
CONSISTENT_SIGMA = 0.8

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
