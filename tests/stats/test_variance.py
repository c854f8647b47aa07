"""Formulas of cinerec.stats against hand-computed examples."""

from __future__ import annotations

import calendar
import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from cinerec.features.moments import consistency_score, group_stats, polarization_score, sigma_max
from cinerec.stats import (
    StatsError,
    analyze,
    genre_table,
    holiday_mask,
    holiday_variance,
    movie_stats,
    sigma_mean_correlation,
    tier_table,
    user_class_of,
    user_class_test,
    user_genre_entropy,
    user_stats,
    user_table,
)
from cinerec.stats.report import analysis_markdown, write_analysis
from cinerec.stats.tables import TIERS
from tests.conftest import make_ratings_dataset
from tests.stats._data import hand_dataset


# ---- per-group moments ------------------------------------------------------------
def test_population_and_sample_sigma_by_hand() -> None:
    # item 0: 1,2,3,4 -> mean 2.5, squared deviations sum 5; item 1: a single 5; item 2: none
    ds = hand_dataset([0, 1, 2, 3, 0], [0, 0, 0, 0, 1], [1, 2, 3, 4, 5], n_items=3)
    pop = group_stats(ds.items, ds.ratings, ds.n_items, ds.rating_scale, ddof=0)
    smp = group_stats(ds.items, ds.ratings, ds.n_items, ds.rating_scale, ddof=1)
    assert pop.count.tolist() == [4, 1, 0]
    assert pop.mean[:2] == pytest.approx([2.5, 5.0])
    assert math.isnan(pop.mean[2])
    assert pop.sigma[0] == pytest.approx(math.sqrt(5 / 4))  # 1/N, the paper's formula
    assert smp.sigma[0] == pytest.approx(math.sqrt(5 / 3))  # 1/(N-1)
    assert pop.sigma[1] == 0.0
    assert math.isnan(smp.sigma[1])  # one rating has no sample sd
    assert math.isnan(pop.sigma[2])
    # agrees with numpy on random data
    rng = np.random.default_rng(1)
    r = rng.integers(1, 11, 500) / 2
    k = rng.integers(0, 7, 500)
    gs = group_stats(k, r, 7, (0.5, 5.0), ddof=1)
    assert gs.sigma == pytest.approx([np.std(r[k == g], ddof=1) for g in range(7)])


def test_unsupported_ddof_and_min_count_raise() -> None:
    ds = hand_dataset([0], [0], [3.0])
    with pytest.raises(StatsError, match="ddof"):
        movie_stats(ds, ddof=2)
    with pytest.raises(StatsError, match="min_count"):
        movie_stats(ds, min_count=0)


def test_min_support_filter_keeps_only_movies_and_users_with_enough_ratings() -> None:
    ds = hand_dataset([0, 1, 2, 0, 1, 0], [0, 0, 0, 1, 1, 2], [4, 5, 3, 2, 2, 1], n_items=4)
    m = movie_stats(ds, min_count=2)
    assert m.get_column("item").to_list() == [0, 1]
    assert m.get_column("item_id").to_list() == [1000, 1001]
    assert m.get_column("count").to_list() == [3, 2]
    assert movie_stats(ds, min_count=1).height == 3  # unrated item 3 never appears
    u = user_stats(ds, min_count=3)
    assert u.get_column("user").to_list() == [0]
    assert u.item(0, "mean") == pytest.approx((4 + 2 + 1) / 3)


# ---- scores -----------------------------------------------------------------------
def test_consistency_is_one_minus_sigma_over_half_range() -> None:
    assert sigma_max((0.5, 5.0)) == 2.25
    assert sigma_max((1.0, 5.0)) == 2.0
    # half at each end of the scale: the largest population sd, consistency 0
    ds = hand_dataset([0, 1, 2, 3, 4, 5], [0, 0, 1, 1, 1, 1], [0.5, 5, 3, 3, 3, 3])
    m = movie_stats(ds)
    assert m.get_column("sigma").to_list() == pytest.approx([2.25, 0.0])
    assert m.get_column("consistency").to_list() == pytest.approx([0.0, 1.0])
    assert consistency_score(np.array([1.125]), (0.5, 5.0))[0] == pytest.approx(0.5)
    with pytest.raises(StatsError):
        sigma_max((5.0, 5.0))


def test_polarization_by_hand() -> None:
    # 0.5..5 scale: low end <= 1.5, high end >= 4.0
    assert polarization_score([1, 1, 4, 5, 3], (0.5, 5.0)) == pytest.approx(2 * min(2 / 5, 2 / 5))
    assert polarization_score([4, 5, 5], (0.5, 5.0)) == 0.0
    assert polarization_score([0.5, 5.0], (0.5, 5.0)) == 1.0
    assert polarization_score([1.5, 4.0, 4.0, 4.0], (0.5, 5.0)) == pytest.approx(0.5)
    ds = hand_dataset([0, 1, 2, 3, 4], [0] * 5, [1, 1, 4, 5, 3])
    assert movie_stats(ds).item(0, "polarization") == pytest.approx(0.8)


def test_scores_bounded_in_unit_interval_even_for_sample_sigma() -> None:
    ds = make_ratings_dataset(n_users=50, n_items=30, seed=3, noise=1.5)
    # two ratings at both ends: sample sd (1/(N-1)) exceeds sigma_max, must be clipped
    extreme = hand_dataset([0, 1], [0, 0], [0.5, 5.0])
    for d in (ds, extreme):
        for ddof in (0, 1):
            m = movie_stats(d, ddof=ddof)
            for col in ("consistency", "polarization"):
                v = m.get_column(col).drop_nans().to_numpy()
                assert ((v >= 0) & (v <= 1)).all(), (col, ddof)
    assert movie_stats(extreme, ddof=1).item(0, "consistency") == 0.0


# ---- tiers and genres -------------------------------------------------------------
def test_tier_boundaries() -> None:
    # item means: 4.0 (high), 3.75 (medium), 2.5 (medium), 2.25 (low)
    ds = hand_dataset(
        [0, 1, 0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 2, 2, 3, 3], [4, 4, 3.5, 4, 2, 3, 2, 2.5]
    )
    t = tier_table(movie_stats(ds))
    assert t.get_column("tier").to_list() == [x[0] for x in TIERS]
    assert t.get_column("n_movies").to_list() == [1, 2, 1]
    assert t.get_column("n_ratings").to_list() == [2, 4, 2]
    assert t.get_column("avg_rating").to_list() == pytest.approx([4.0, (3.75 + 2.5) / 2, 2.25])
    # medium sigmas: 0.25 and 0.5 -> mean 0.375; consistency is the mean of per-movie scores
    assert t.item(1, "sigma") == pytest.approx(0.375)
    assert t.item(1, "consistency") == pytest.approx(1 - 0.375 / 2.25)


def test_genre_table_counts_a_movie_in_each_of_its_genres() -> None:
    genres = np.array([[1, 1], [1, 0], [0, 0]], dtype=bool)  # movie 0: A and B, movie 1: A
    ds = hand_dataset(
        [0, 1, 0, 1, 0, 1], [0, 0, 1, 1, 2, 2], [3, 5, 2, 2, 1, 1], genres=genres,
        genre_names=("A", "B"),
    )
    g = genre_table(ds, movie_stats(ds)).sort("genre")
    assert g.get_column("genre").to_list() == ["A", "B"]
    assert g.get_column("n_movies").to_list() == [2, 1]
    assert g.get_column("sigma").to_list() == pytest.approx([(1.0 + 0.0) / 2, 1.0])
    assert g.get_column("avg_rating").to_list() == pytest.approx([(4 + 2) / 2, 4.0])
    no_genres = hand_dataset([0], [0], [3.0])
    assert genre_table(no_genres, movie_stats(no_genres)).height == 0


# ---- correlation ------------------------------------------------------------------
def test_correlation_matches_scipy_and_fisher_ci() -> None:
    rng = np.random.default_rng(0)
    mean = rng.uniform(1, 5, 200)
    sigma = 1.5 - 0.2 * mean + rng.normal(0, 0.2, 200)
    movies = pl.DataFrame({"mean": mean, "sigma": sigma})
    c = sigma_mean_correlation(movies)
    pear, spear = c.row(0, named=True), c.row(1, named=True)
    ref = sps.pearsonr(sigma, mean)
    assert pear["r"] == pytest.approx(ref.statistic)
    assert pear["p_value"] == pytest.approx(ref.pvalue)
    lo, hi = ref.confidence_interval(0.95)
    assert (pear["ci_low"], pear["ci_high"]) == pytest.approx((lo, hi))
    rho = sps.spearmanr(sigma, mean)
    assert spear["r"] == pytest.approx(rho.statistic)
    assert spear["p_value"] == pytest.approx(rho.pvalue)
    half = 1.959964 * math.sqrt(1.06 / 197)
    z = math.atanh(rho.statistic)
    assert spear["ci_low"] == pytest.approx(math.tanh(z - half), abs=1e-6)
    assert spear["ci_high"] == pytest.approx(math.tanh(z + half), abs=1e-6)
    assert pear["r"] < 0 and pear["ci_high"] < 0 and pear["n"] == 200


# ---- users ------------------------------------------------------------------------
def test_genre_entropy_by_hand() -> None:
    genres = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=bool)
    # user 0: movies 0 (A,B) and 1 (A) -> A:2, B:1; user 1: movie 2 (C) only; user 2: movie 3
    ds = hand_dataset([0, 0, 1, 2], [0, 1, 2, 3], [3, 3, 3, 3], genres=genres,
                      genre_names=("A", "B", "C"))
    h = user_genre_entropy(ds)
    expect = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))
    assert h[0] == pytest.approx(expect)
    assert h[1] == 0.0
    assert math.isnan(h[2])


def test_user_class_thresholds_are_strict() -> None:
    got = user_class_of(np.array([1.51, 1.5, 0.8, 0.79, 1.0]))
    assert got.tolist() == ["exploratory", "moderate", "moderate", "consistent", "moderate"]


def _users_with_entropy_link(explore_more: bool, n: int = 30):
    """Users: half extreme raters (sigma 2.25), half flat; genre spread set by explore_more."""
    n_genres = 6
    genres = np.eye(n_genres, dtype=bool)  # movie g has genre g only
    u, i, r = [], [], []
    for k in range(n):
        exploratory = k < n // 2
        wide = exploratory == explore_more
        for j in range(12):
            u.append(k)
            i.append(j % n_genres if wide else 0)
            r.append((0.5 if j % 2 else 5.0) if exploratory else 3.0 + 0.5 * (j % 2))
    return hand_dataset(u, i, r, n_items=n_genres, genres=genres,
                        genre_names=tuple("ABCDEF"))


@pytest.mark.parametrize("explore_more", [True, False])
def test_user_class_test_groups_and_direction(explore_more: bool) -> None:
    ds = _users_with_entropy_link(explore_more)
    users = user_table(ds, min_count=5)
    assert users.get_column("user_class").value_counts().sort("user_class").to_dicts() == [
        {"user_class": "consistent", "count": 15},
        {"user_class": "exploratory", "count": 15},
    ]
    row = user_class_test(users).row(0, named=True)
    assert (row["n_a"], row["n_b"]) == (15, 15)
    assert row["p_value"] < 1e-4
    assert (row["rank_biserial"] > 0) == explore_more
    assert (row["median_a"] > row["median_b"]) == explore_more


# ---- holiday ----------------------------------------------------------------------
def _ts(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return calendar.timegm((y, m, d, hh, mm, 0))


def test_holiday_window_edges() -> None:
    ts = np.array([
        _ts(2010, 12, 14, 23, 59), _ts(2010, 12, 15), _ts(2010, 12, 31, 23, 59),
        _ts(2011, 1, 5, 23, 59), _ts(2011, 1, 6), _ts(2011, 7, 1), _ts(2012, 12, 1),
    ])
    assert holiday_mask(ts).tolist() == [False, True, True, True, False, False, False]
    assert holiday_mask(ts, "december").tolist() == [
        True, True, True, False, False, False, True
    ]
    with pytest.raises(StatsError, match="holiday window"):
        holiday_mask(ts, "easter")


def _holiday_data(n: int = 200):
    """Genre C(omedy): spread ratings at the holidays, tight otherwise; D(rama): identical."""
    rng = np.random.default_rng(5)
    genres = np.array([[1, 0], [0, 1]], dtype=bool)
    u, i, r, t = [], [], [], []
    for k in range(n):
        hol = k % 2 == 0
        day = _ts(2015, 12, 24) if hol else _ts(2015, 6, 10)
        u += [k, k]
        i += [0, 1]
        r += [float(rng.choice([0.5, 5.0])) if hol else float(rng.choice([3.0, 3.5])),
              [2.0, 3.0, 4.0][k // 2 % 3]]
        t += [day, day]
    return hand_dataset(u, i, r, t, genres=genres, genre_names=("Comedy", "Drama"))


def test_holiday_variance_direction_and_significance() -> None:
    h = holiday_variance(_holiday_data(), min_count=10)
    comedy = h.filter(pl.col("genre") == "Comedy").row(0, named=True)
    drama = h.filter(pl.col("genre") == "Drama").row(0, named=True)
    assert comedy["n_holiday"] == comedy["n_rest"] == 100
    assert comedy["sigma_holiday"] > 2.0 > 0.3 > comedy["sigma_rest"]
    assert comedy["delta_sigma"] > 0 and comedy["p_value"] < 1e-10
    assert drama["sigma_holiday"] == pytest.approx(drama["sigma_rest"], abs=0.05)
    assert drama["p_value"] > 0.5
    assert (h.get_column("q_value") >= h.get_column("p_value")).all()  # BH never lowers p


def test_holiday_levene_called_with_holiday_and_rest_groups(monkeypatch) -> None:
    ds = _holiday_data(40)
    calls = []
    real = sps.levene

    def spy(*groups, **kw):
        calls.append(([np.sort(g) for g in groups], kw))
        return real(*groups, **kw)

    monkeypatch.setattr(sps, "levene", spy)
    holiday_variance(ds, min_count=5, method="scipy")
    assert len(calls) == 3  # (all), Comedy, Drama
    (hol, rest), kw = calls[1]
    assert kw == {"center": "median"}
    hmask = holiday_mask(ds.timestamps) & (ds.items == 0)
    rmask = ~holiday_mask(ds.timestamps) & (ds.items == 0)
    assert np.array_equal(hol, np.sort(ds.ratings[hmask]))
    assert np.array_equal(rest, np.sort(ds.ratings[rmask]))


def test_histogram_brown_forsythe_equals_scipy_levene() -> None:
    ds = _with_genres(seed=3)
    fast = holiday_variance(ds, min_count=2, method="histogram")
    ref = holiday_variance(ds, min_count=2, method="scipy")
    assert fast.get_column("genre").to_list() == ref.get_column("genre").to_list()
    for col in ("n_holiday", "sigma_holiday", "sigma_rest", "levene_w", "p_value", "q_value"):
        np.testing.assert_allclose(fast[col].to_numpy(), ref[col].to_numpy(), rtol=1e-9)
    # off-grid ratings: auto falls back to scipy, histogram refuses
    odd = replace(ds, ratings=ds.ratings + 0.1)
    assert holiday_variance(odd, min_count=2).height == ref.height
    with pytest.raises(StatsError, match="half-step"):
        holiday_variance(odd, method="histogram")


def test_holiday_groups_below_min_count_are_not_tested() -> None:
    h = holiday_variance(_holiday_data(20), min_count=50)
    assert h.get_column("p_value").is_nan().all()


# ---- the bundle -------------------------------------------------------------------
def _with_genres(seed: int = 0):
    ds = make_ratings_dataset(n_users=80, n_items=50, density=0.4, seed=seed)
    rng = np.random.default_rng(seed)
    g = rng.random((ds.n_items, 4)) < 0.4
    g[np.arange(ds.n_items), rng.integers(0, 4, ds.n_items)] = True
    # spread timestamps over several years so both holiday groups exist
    ts = _ts(2005, 1, 1) + rng.integers(0, 5 * 365 * 86400, ds.n_ratings)
    return replace(ds, item_genres=g, genre_names=("Action", "Comedy", "Drama", "Horror"),
                   timestamps=ts)


def test_analyze_bundles_consistent_tables(tmp_path) -> None:
    ds = _with_genres()
    a = analyze(ds, min_count=3)
    assert a.tiers.get_column("n_movies").sum() == a.movies.height
    assert a.movies.get_column("count").min() >= 3
    assert set(a.genres.get_column("genre")) <= set(ds.genre_names)
    assert a.holiday.item(0, "n_holiday") + a.holiday.item(0, "n_rest") == ds.n_ratings
    assert a.user_classes.get_column("n_users").sum() == a.users.height
    cmp = a.paper_comparison()
    assert cmp.filter(pl.col("quantity") == "corr(sigma, mean) pearson").item(0, "measured") == (
        pytest.approx(a.correlation.item(0, "r"))
    )
    md = analysis_markdown(a)
    for title in ("Rating tiers", "Genres", "Correlation", "User classes", "Holiday", "Paper 000"):
        assert title in md
    paths = write_analysis(a, tmp_path / "out")
    names = {p.name for p in paths}
    assert {"variance.md", "tiers.csv", "genres.csv", "correlation.csv", "holiday.csv"} <= names
    assert pl.read_csv(tmp_path / "out" / "tiers.csv").height == 3
    assert not list((tmp_path / "out").glob(".*tmp"))  # nothing half-written


def test_analyze_without_metadata_notes_and_errors() -> None:
    ds = make_ratings_dataset(n_users=20, n_items=10, seed=2)
    ds = replace(ds, timestamps=np.zeros(ds.n_ratings, dtype=np.int64))
    a = analyze(ds, min_count=2)
    assert any("genre" in n for n in a.notes) and any("timestamps" in n for n in a.notes)
    assert a.genres.height == 0
    with pytest.raises(StatsError, match="min-count"):
        analyze(ds, min_count=10_000)
