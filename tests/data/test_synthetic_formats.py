"""Synthetic releases in the ml-100k and ml-1m formats: they load through the normal
loader with demographics, the demographics carry signal, and ml-25m is unchanged."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cinerec.data import load_dataset
from cinerec.data.dataset import Dataset
from cinerec.data.movielens.formats import ML1M_OCCUPATIONS
from cinerec.data.synthetic import generate
from cinerec.data.synthetic.tables import ML100K_OCCUPATIONS
from cinerec.errors import CinerecError

SIZE = {"n_ratings": 40_000, "n_users": 800, "n_items": 400}


def _load(path: Path) -> Dataset:
    return load_dataset(path, cache=False, progress=False)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fmt")
    return {f: generate(root / f, seed=5, progress=False, format=f, **SIZE) for f in ("ml-1m", "ml-100k")}


@pytest.fixture(scope="module")
def ml1m(releases: dict[str, Path]) -> Dataset:
    return _load(releases["ml-1m"])


def test_files_of_each_format(releases: dict[str, Path]) -> None:
    assert {p.name for p in releases["ml-1m"].iterdir()} == {"ratings.dat", "movies.dat", "users.dat", "README.txt"}
    assert {p.name for p in releases["ml-100k"].iterdir()} == {
        "u.data", "u.item", "u.user", "u.genre", "u.occupation", "README.txt",
    }  # fmt: skip
    first = (releases["ml-1m"] / "users.dat").read_text().splitlines()[0].split("::")
    assert len(first) == 5 and first[1] in ("F", "M") and first[2].isdigit() and len(first[4]) == 5
    assert len((releases["ml-100k"] / "u.item").read_text().splitlines()[0].split("|")) == 24


def test_ml1m_loads_with_demographics(ml1m: Dataset) -> None:
    assert ml1m.source["format"] == "ml-1m" and ml1m.rating_scale == (1.0, 5.0)
    assert ml1m.n_ratings == SIZE["n_ratings"] and ml1m.n_users == SIZE["n_users"]
    assert ml1m.n_items == SIZE["n_items"]
    assert np.array_equal(ml1m.ratings, np.round(ml1m.ratings)) and ml1m.ratings.min() >= 1
    meta = ml1m.users_meta
    assert meta is not None and meta.height == ml1m.n_users
    assert meta.get_column("user").to_list() == list(range(ml1m.n_users))
    assert set(meta.get_column("age").unique().to_list()) <= {1, 18, 25, 35, 45, 50, 56}
    assert set(meta.get_column("gender").unique().to_list()) == {"F", "M"}
    codes = meta.get_column("occupation_code").to_numpy()
    assert codes.min() >= 0 and codes.max() <= 20 and np.unique(codes).size > 10
    assert meta.get_column("occupation").null_count() == 0
    assert set(meta.get_column("occupation").to_list()) <= set(ML1M_OCCUPATIONS)
    # ML-1M-like marginals: ~28% women, the 25-34 bucket the largest, K-12 students young.
    female = (meta.get_column("gender") == "F").mean()
    assert 0.2 < female < 0.36
    ages = meta.get_column("age").value_counts().sort("count").get_column("age").to_list()
    assert ages[-1] == 25
    k12 = meta.filter(pl.col("occupation_code") == 10).get_column("age")
    assert (k12 == 1).mean() > 0.5
    assert "Children's" in ml1m.genre_names and "IMAX" not in ml1m.genre_names


def test_ml100k_loads_with_demographics_and_the_same_ratings(releases: dict[str, Path], ml1m: Dataset) -> None:
    ds = _load(releases["ml-100k"])
    assert ds.source["format"] == "ml-100k"
    assert ds.fingerprint == ml1m.fingerprint  # same seed: same users, movies and ratings
    meta = ds.users_meta
    assert meta is not None and meta.columns[:6] == ["user", "userId", "age", "gender", "occupation", "zip"]
    age = meta.get_column("age").to_numpy()
    assert 7 <= age.min() and age.max() < 74 and np.unique(age).size > 30  # years, not buckets
    # A year falls in the ml-1m bucket the other release gives the same user.
    bucket = np.array([1, 18, 25, 35, 45, 50, 56])[np.searchsorted([18, 25, 35, 45, 50, 56], age, side="right")]
    assert np.array_equal(bucket, ml1m.users_meta.get_column("age").to_numpy())
    assert set(meta.get_column("occupation").to_list()) <= set(ML100K_OCCUPATIONS)
    assert ds.genre_names == ml1m.genre_names
    assert ds.items_meta.get_column("genres").to_list() == ml1m.items_meta.get_column("genres").to_list()


def test_zip_of_a_release_loads(releases: dict[str, Path], tmp_path: Path) -> None:
    folder = releases["ml-1m"]
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in folder.iterdir():
            z.write(p, f"ml-1m/{p.name}")
    ds = _load(archive)
    assert ds.users_meta is not None and ds.n_ratings == SIZE["n_ratings"]


def test_demographics_carry_signal(ml1m: Dataset) -> None:
    meta = ml1m.users_meta
    sex = (meta.get_column("gender") == "F").to_numpy().astype(np.int64)
    group = np.searchsorted([1, 18, 25, 35, 45, 50, 56], meta.get_column("age").to_numpy()) * 2 + sex
    # The age x gender groups' mean ratings differ (0.38-0.90 stars over seeds 5-11).
    means = np.array([ml1m.ratings[group[ml1m.users] == g].mean() for g in np.unique(group)])
    assert means.max() - means.min() > 0.2

    def spread(g_of_user: np.ndarray) -> float:
        """Rating-weighted variance of group x item means around the item means."""
        key = g_of_user[ml1m.users] * ml1m.n_items + ml1m.items
        uniq, inv, n = np.unique(key, return_inverse=True, return_counts=True)
        cell = np.bincount(inv, ml1m.ratings) / n
        item_mean = np.bincount(ml1m.items, ml1m.ratings, ml1m.n_items) / np.maximum(ml1m.item_counts, 1)
        dev = cell - item_mean[uniq % ml1m.n_items]
        return float(np.sum(n * dev**2) / n.sum())

    # Per movie, groups disagree more than chance: shuffled groups give 1.33-1.57x less
    # (seeds 5-11).
    shuffled = np.random.default_rng(0).permutation(group)
    assert spread(group) > 1.15 * spread(shuffled)


def test_default_format_is_unchanged(tmp_path: Path) -> None:
    """The ml-25m bytes of a fixed seed, as written before other formats existed."""
    out = generate(tmp_path / "a", 5_000, 100, 200, seed=9, progress=False)
    same = generate(tmp_path / "b", 5_000, 100, 200, seed=9, progress=False, format="ml-25m")
    want = {
        "ratings.csv": "67e552e475567f5a1e2881af19aef20169c98bd8cdd88faad2a72c9bb26deade",
        "movies.csv": "baf8c4c908f50f18dace2ddbe6675e4e9dcb834eac529ea16b2ec47711662fea",
        "tags.csv": "332a8ca87b52dcf06d0728879f027431cbde351e430ab4cb13f903dab952e2d4",
        "links.csv": "55f5e9d320f37938074eff8795046b32c8f3fc58cc7ac46a53bcc918c622647e",
    }
    for name, digest in want.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name
        assert (same / name).read_bytes() == (out / name).read_bytes()


def test_same_seed_same_bytes(tmp_path: Path, releases: dict[str, Path]) -> None:
    again = generate(tmp_path / "c", seed=5, progress=False, format="ml-1m", **SIZE)
    for p in releases["ml-1m"].iterdir():
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CinerecError, match="ml-100k"):
        generate(tmp_path / "x", 1_000, 50, 60, progress=False, format="ml-20m")
    assert not (tmp_path / "x").exists()


def test_cli_synth_format(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cinerec.cli import app

    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["data", "synth", "--ratings", "2k", "--users", "60", "--items", "80",
                                   "--format", "ml-100k", "--out", str(out), "-q"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert _load(out).users_meta is not None
