"""Synthetic MovieLens: determinism, file format, and the statistics it promises."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from cinerec.data.dataset import Dataset
from cinerec.data.synthetic import GENRES, NO_GENRES, generate, generate_dataset
from cinerec.errors import CinerecError

SMALL = {"n_ratings": 30_000, "n_users": 300, "n_items": 500}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("syn") / "a", seed=3, progress=False, **SMALL)


@pytest.fixture(scope="module")
def big() -> Dataset:
    return generate_dataset(200_000, 1_500, 1_200, seed=11, progress=False)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_differs(folder: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "b", seed=3, progress=False, **SMALL)
    other = generate(tmp_path / "c", seed=4, progress=False, **SMALL)
    a, b, c = _bytes(folder), _bytes(again), _bytes(other)
    assert set(a) == {"ratings.csv", "movies.csv", "tags.csv", "links.csv", "README.txt"}
    assert a == b
    assert a["ratings.csv"] != c["ratings.csv"]
    assert a["movies.csv"] != c["movies.csv"]
    assert not list(folder.glob("*.part"))


def test_files_parse_with_movielens_types(folder: Path) -> None:
    r = pl.read_csv(folder / "ratings.csv")
    assert r.columns == ["userId", "movieId", "rating", "timestamp"]
    assert r.dtypes == [pl.Int64, pl.Int64, pl.Float64, pl.Int64]
    assert r.height == SMALL["n_ratings"]
    assert r.select(pl.struct("userId", "movieId").is_duplicated().any()).item() is False
    # sorted by user then movie, like MovieLens
    assert r.select((pl.col("userId").diff() >= 0).all()).item()
    assert r.head(1).item(0, "userId") == 1

    with open(folder / "movies.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["movieId", "title", "genres"]
    assert all(len(row) == 3 for row in rows)
    titles = [row[1] for row in rows[1:]]
    assert all(re.fullmatch(r".+ \((\d{4})\)", t) for t in titles)
    assert any("," in t for t in titles)  # "Title, The (Year)" needs quoting
    assert '"' in (folder / "movies.csv").read_text(encoding="utf-8")
    genres = {g for row in rows[1:] for g in row[2].split("|")}
    assert genres <= set(GENRES) | {NO_GENRES}
    assert len(genres) >= 15
    ids = np.array([int(row[0]) for row in rows[1:]])
    assert len(ids) == SMALL["n_items"] and (np.diff(ids) > 0).all()
    assert ids[-1] > len(ids)  # non-contiguous, like MovieLens
    assert set(r["movieId"].unique().to_list()) <= set(ids.tolist())

    links = pl.read_csv(folder / "links.csv", schema_overrides={"imdbId": pl.String})
    assert links.columns == ["movieId", "imdbId", "tmdbId"]
    assert links["imdbId"].str.len_chars().min() >= 7
    assert links["movieId"].to_list() == ids.tolist()

    tags = pl.read_csv(folder / "tags.csv")
    assert tags.columns == ["userId", "movieId", "tag", "timestamp"]
    assert tags.height > 0
    assert "synthetic" in (folder / "README.txt").read_text().lower()


def test_files_agree_with_in_memory_dataset(folder: Path) -> None:
    ds = generate_dataset(seed=3, progress=False, **SMALL)
    r = pl.read_csv(folder / "ratings.csv")
    assert np.array_equal(ds.user_ids.raw(ds.users), r["userId"].to_numpy())
    assert np.array_equal(ds.item_ids.raw(ds.items), r["movieId"].to_numpy())
    assert np.array_equal(ds.ratings, r["rating"].to_numpy().astype(np.float32))
    assert np.array_equal(ds.timestamps, r["timestamp"].to_numpy())
    m = pl.read_csv(folder / "movies.csv")
    meta = ds.items_meta
    assert m["movieId"].to_list() == ds.item_ids.ids.tolist() == meta["movieId"].to_list()
    expect = [f"{t} ({y})" for t, y in zip(meta["title"], meta["year"], strict=True)]
    assert m["title"].to_list() == expect
    # genre matrix, genre lists and the file agree
    listed = [g.split("|") if g != NO_GENRES else [] for g in m["genres"]]
    assert listed == meta["genres"].to_list()
    names = np.asarray(ds.genre_names)
    assert [names[row].tolist() for row in ds.item_genres] == listed
    assert ds.tags is not None
    assert ds.tags.height == pl.read_csv(folder / "tags.csv").height


def test_structure_users_items_time(big: Dataset) -> None:
    assert big.n_ratings == 200_000
    keys = big.users.astype(np.int64) * big.n_items + big.items
    assert np.unique(keys).shape[0] == big.n_ratings
    assert big.user_counts.min() >= 20
    # power-law-ish activity: long tail well above the median
    assert big.user_counts.max() > 8 * np.median(big.user_counts)
    t0 = datetime(1996, 1, 1, tzinfo=UTC).timestamp()
    t1 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert big.timestamps.min() >= t0 and big.timestamps.max() < t1
    # never rated before release
    rel_year = big.items_meta["year"].to_numpy()[big.items]
    rating_year = (big.timestamps // 86400 / 365.2425 + 1970).astype(int)
    assert (rating_year >= rel_year).all()
    assert rel_year.min() < 1970  # a catalogue spanning decades


def test_rating_distribution_like_movielens(big: Dataset) -> None:
    r = big.ratings.astype(np.float64)
    assert 3.35 <= r.mean() <= 3.65
    assert 0.90 <= r.std() <= 1.20
    assert np.array_equal(r * 2, np.round(r * 2))
    assert r.min() == 0.5 and r.max() == 5.0
    values, counts = np.unique(r, return_counts=True)
    assert len(values) == 10 and values[np.argmax(counts)] in (3.0, 4.0)
    # whole stars only before MovieLens introduced half stars (Feb 2003)
    early = big.timestamps < datetime(2003, 1, 1, tzinfo=UTC).timestamp()
    assert early.sum() > 1000 and (r[early] % 1 == 0).all()
    # slow downward drift of the mean over the years
    q1, q3 = np.quantile(big.timestamps, [0.25, 0.75])
    assert r[big.timestamps < q1].mean() > r[big.timestamps > q3].mean()


def test_popularity_is_concentrated(big: Dataset) -> None:
    c = np.sort(big.item_counts)[::-1]
    top1 = c[: len(c) // 100].sum() / c.sum()
    top10 = c[: len(c) // 10].sum() / c.sum()
    assert top1 > 0.08  # 8x a uniform catalogue's share
    assert top10 > 0.35


def test_genre_dependent_spread(big: Dataset) -> None:
    names = list(big.genre_names)
    stds = {}
    for g in ("Horror", "Comedy", "Documentary", "Drama"):
        rows = big.item_genres[big.items, names.index(g)]
        assert rows.sum() > 2000
        stds[g] = big.ratings[rows].std()
    assert stds["Horror"] > stds["Drama"] > stds["Documentary"]
    assert stds["Comedy"] > stds["Documentary"] + 0.05


def _fit_biases(u, i, r, nu, ni, reg=5.0, sweeps=8):
    mu = r.mean()
    bu, bi = np.zeros(nu), np.zeros(ni)
    for _ in range(sweeps):
        bi = np.bincount(i, r - mu - bu[u], ni) / (np.bincount(i, minlength=ni) + reg)
        bu = np.bincount(u, r - mu - bi[i], nu) / (np.bincount(u, minlength=nu) + reg)
    return mu, bu, bi


def _als_side(m: sp.csr_matrix, other: np.ndarray, reg: float) -> np.ndarray:
    """Ridge solution of every row's factors given the other side (one ALS half-step)."""
    k = other.shape[1]
    f = other[m.indices]
    outer = (f[:, :, None] * f[:, None, :]).reshape(-1, k * k)
    a = np.zeros((m.shape[0], k * k))
    filled = np.diff(m.indptr) > 0  # reduceat needs non-empty segments
    a[filled] = np.add.reduceat(outer, m.indptr[:-1][filled], axis=0)
    a = a.reshape(-1, k, k) + reg * np.eye(k)
    return np.linalg.solve(a, (m @ other)[:, :, None])[:, :, 0]


def test_biased_mf_beats_bias_only(big: Dataset) -> None:
    """The latent-factor structure is real: a rank-10 ALS on bias residuals wins clearly."""
    rng = np.random.default_rng(0)
    test = rng.random(big.n_ratings) < 0.1
    u, i = big.users.astype(np.int64), big.items.astype(np.int64)
    r = big.ratings.astype(np.float64)
    nu, ni = big.n_users, big.n_items
    tr = ~test
    mu, bu, bi = _fit_biases(u[tr], i[tr], r[tr], nu, ni)
    base = mu + bu[u] + bi[i]
    rmse_bias = np.sqrt(np.mean((np.clip(base[test], 0.5, 5) - r[test]) ** 2))

    resid = sp.csr_matrix((r[tr] - base[tr], (u[tr], i[tr])), shape=(nu, ni))
    resid_t = resid.T.tocsr()
    q = rng.normal(0, 0.1, (ni, 10))
    for _ in range(5):
        p = _als_side(resid, q, reg=8.0)
        q = _als_side(resid_t, p, reg=8.0)
    pred = np.clip(base[test] + (p[u[test]] * q[i[test]]).sum(1), 0.5, 5)
    rmse_mf = np.sqrt(np.mean((pred - r[test]) ** 2))
    assert 0.85 < rmse_bias < 1.05
    assert rmse_mf < rmse_bias - 0.04


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_ratings": 10, "n_users": 20, "n_items": 50},  # fewer ratings than users
        {"n_ratings": 10_000, "n_users": 20, "n_items": 50},  # more than the catalogue allows
        {"n_ratings": 100, "n_users": 2, "n_items": 50, "start_year": 2020, "end_year": 2010},
    ],
)
def test_infeasible_sizes_raise(kwargs: dict) -> None:
    with pytest.raises(CinerecError):
        generate_dataset(progress=False, **kwargs)


def test_movielens_loader_reads_the_release_back(folder: Path) -> None:
    from cinerec.data.movielens import load_movielens

    loaded = load_movielens(folder)
    made = generate_dataset(seed=3, progress=False, **SMALL)
    assert loaded.fingerprint == made.fingerprint
    assert loaded.items_meta.equals(made.items_meta)
    assert np.array_equal(loaded.item_genres, made.item_genres)
