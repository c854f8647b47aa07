"""Splits: disjoint complete covers, time order, fractions, seeds, specs, leakage checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cinerec.data.dataset import Dataset, IdMap
from cinerec.data.splits import (
    SPLIT_SPECS_HELP,
    Split,
    check_no_leakage,
    kfold_split,
    leave_one_out,
    make_split,
    predefined_split,
    random_split,
    temporal_split,
    user_temporal_split,
)
from cinerec.errors import CinerecError, SplitError
from tests.conftest import make_ratings_dataset


@pytest.fixture(scope="module")
def ds() -> Dataset:
    # Coarse timestamps create ties, so tie-breaking is exercised too.
    base = make_ratings_dataset(n_users=80, n_items=50, density=0.3, seed=3)
    return dataclasses.replace(base, timestamps=(base.timestamps // 10**6) * 10**6)


def _keys(d: Dataset) -> np.ndarray:
    return d.users.astype(np.int64) * d.n_items + d.items


def _row_ids(parent: Dataset, part: Dataset) -> np.ndarray:
    """Row positions of ``part`` in ``parent`` (pairs are unique in the fixtures)."""
    pk = _keys(parent)
    order = np.argsort(pk)
    pos = np.searchsorted(pk, _keys(part), sorter=order)
    rows = order[pos]
    assert np.array_equal(pk[rows], _keys(part))
    return rows


def _assert_partition(ds: Dataset, split: Split) -> None:
    parts = [split.train, split.test] + ([split.valid] if split.valid is not None else [])
    rows = np.concatenate([_row_ids(ds, p) for p in parts])
    assert np.array_equal(np.sort(rows), np.arange(ds.n_ratings)), "not a disjoint cover"
    for p in parts:
        assert p.user_ids is ds.user_ids and p.item_ids is ds.item_ids
        # values travel with their row
        r = _row_ids(ds, p)
        assert np.array_equal(ds.ratings[r], p.ratings)
        assert np.array_equal(ds.timestamps[r], p.timestamps)


SPECS = [
    "random:0.9",
    "random:0.8,0.1",
    "temporal:0.8",
    "temporal:0.8,0.1",
    "user-temporal:0.8",
    "user-temporal:0.7,0.1",
    "user-last:2",
    "kfold:5:1",
    "kfold:5:5",
    "loo",
]


@pytest.mark.parametrize("spec", SPECS)
def test_every_spec_partitions_without_leakage(ds: Dataset, spec: str) -> None:
    split = make_split(ds, spec, seed=7)
    _assert_partition(ds, split)
    check_no_leakage(split)
    assert not np.isin(_keys(split.test), _keys(split.train)).any()
    assert split.spec == spec
    assert split.info["n_train"] == split.train.n_ratings
    assert split.info["n_test"] == split.test.n_ratings
    assert split.info["n_train"] + split.info["n_valid"] + split.info["n_test"] == ds.n_ratings
    assert (split.valid is not None) == ("," in spec)


@pytest.mark.parametrize(
    "spec, train, valid",
    [("random:0.9", 0.9, 0.0), ("random:0.7,0.2", 0.7, 0.2), ("temporal:0.8,0.1", 0.8, 0.1)],
)
def test_global_fractions_within_rounding(ds: Dataset, spec: str, train: float, valid: float):
    split = make_split(ds, spec)
    n = ds.n_ratings
    assert abs(split.train.n_ratings - train * n) <= 1
    n_valid = split.valid.n_ratings if split.valid is not None else 0
    assert abs(n_valid - valid * n) <= 1
    assert abs(split.test.n_ratings - (1 - train - valid) * n) <= 2


def test_random_split_reproducible_and_seed_dependent(ds: Dataset) -> None:
    a = random_split(ds, test_frac=0.2, seed=1)
    b = random_split(ds, test_frac=0.2, seed=1)
    c = random_split(ds, test_frac=0.2, seed=2)
    assert np.array_equal(_keys(a.test), _keys(b.test))
    assert not np.array_equal(np.sort(_keys(a.test)), np.sort(_keys(c.test)))
    assert a.seed == 1 and a.spec == "random:0.8"


def test_temporal_split_orders_time_globally(ds: Dataset) -> None:
    split = temporal_split(ds, train_frac=0.6, valid_frac=0.2)
    assert split.train.timestamps.max() <= split.valid.timestamps.min()
    assert split.valid.timestamps.max() <= split.test.timestamps.min()
    # deterministic (no seed) and the latest rating is always in test
    again = temporal_split(ds, train_frac=0.6, valid_frac=0.2)
    assert np.array_equal(_keys(split.test), _keys(again.test))
    assert ds.timestamps.max() == split.test.timestamps.max()


def test_user_temporal_split_orders_time_per_user(ds: Dataset) -> None:
    split = user_temporal_split(ds, test_frac=0.25, valid_frac=0.25)
    n_users = ds.n_users
    for a, b in ((split.train, split.valid), (split.valid, split.test)):
        latest = np.full(n_users, np.iinfo(np.int64).min)
        np.maximum.at(latest, a.users, a.timestamps)
        earliest = np.full(n_users, np.iinfo(np.int64).max)
        np.minimum.at(earliest, b.users, b.timestamps)
        assert (latest <= earliest).all()
    # per-user test share is round-half-up of 25% (at least one) for eligible users
    cnt = ds.user_counts
    t_cnt = split.test.user_counts
    eligible = t_cnt > 0
    expect = np.maximum(np.floor(0.25 * cnt + 0.5), 1)
    assert np.array_equal(t_cnt[eligible], expect[eligible])


def test_user_temporal_min_train_keeps_small_users_in_train(ds: Dataset) -> None:
    cnt = ds.user_counts
    threshold = int(np.median(cnt[cnt > 0]))
    split = user_temporal_split(ds, last_n=1, min_train=threshold)
    small = (cnt > 0) & (cnt - 1 < threshold)
    assert small.any() and (~small & (cnt > 0)).any()
    assert (split.test.user_counts[small] == 0).all()
    assert np.array_equal(split.train.user_counts[small], cnt[small])
    assert (split.test.user_counts[~small & (cnt > 0)] == 1).all()
    assert split.info["users_train_only"] == int(small.sum())


def test_user_last_n(ds: Dataset) -> None:
    split = make_split(ds, "user-last:3")
    cnt = ds.user_counts
    t = split.test.user_counts
    assert np.array_equal(t, np.where(cnt > 3, 3, 0))


def test_leave_one_out_one_per_user_latest(ds: Dataset) -> None:
    split = leave_one_out(ds)
    cnt = ds.user_counts
    assert np.array_equal(split.test.user_counts, (cnt > 1).astype(np.int64))
    latest = np.full(ds.n_users, np.iinfo(np.int64).min)
    np.maximum.at(latest, ds.users, ds.timestamps)
    assert np.array_equal(split.test.timestamps, latest[split.test.users])
    check_no_leakage(split)
    # ties broken deterministically (same call, same answer; a seed is reproducible too)
    assert np.array_equal(_keys(leave_one_out(ds).test), _keys(split.test))
    assert np.array_equal(_keys(leave_one_out(ds, 5).test), _keys(leave_one_out(ds, 5).test))


def test_loo_tie_break_is_by_row_position() -> None:
    d = Dataset(
        name="ties",
        users=np.array([0, 0, 0, 1, 1]),
        items=np.array([0, 1, 2, 0, 1]),
        ratings=np.full(5, 3.0),
        timestamps=np.array([5, 9, 9, 1, 2]),
        user_ids=IdMap(np.array([10, 20])),
        item_ids=IdMap(np.array([1, 2, 3])),
    )
    split = leave_one_out(d)
    assert sorted(zip(split.test.users.tolist(), split.test.items.tolist(), strict=True)) == [
        (0, 2),
        (1, 1),
    ]


def test_kfold_folds_partition_the_data(ds: Dataset) -> None:
    k = 4
    tests = [kfold_split(ds, k=k, fold=f, seed=3) for f in range(k)]
    rows = np.concatenate([_row_ids(ds, s.test) for s in tests])
    assert np.array_equal(np.sort(rows), np.arange(ds.n_ratings))
    sizes = [s.test.n_ratings for s in tests]
    assert max(sizes) - min(sizes) <= 1
    # spec folds are 1-based
    assert np.array_equal(_keys(make_split(ds, "kfold:4:2", seed=3).test), _keys(tests[1].test))
    assert make_split(ds, "kfold:4:2", seed=3).spec == "kfold:4:2"


def test_cold_rows_marked_not_dropped() -> None:
    # Item 3 is rated only late, user 2 only late: a global temporal split makes both cold.
    d = Dataset(
        name="cold",
        users=np.array([0, 1, 0, 1, 0, 2, 1]),
        items=np.array([0, 0, 1, 1, 2, 0, 3]),
        ratings=np.arange(7, dtype=np.float32) / 2 + 1,
        timestamps=np.arange(7) * 10,
        user_ids=IdMap(np.array([5, 6, 7])),
        item_ids=IdMap(np.array([11, 12, 13, 14, 15])),
    )
    split = temporal_split(d, train_frac=5 / 7)
    assert split.test.n_ratings == 2
    assert split.cold_user_rows.tolist() == [True, False]
    assert split.cold_item_rows.tolist() == [False, True]
    assert split.info["cold_test_rows"]["warm_rows"] == 0.0


@pytest.mark.parametrize(
    "spec",
    [
        "random",
        "random:1.2",
        "random:0.9,0.1",
        "random:0",
        "temporal:abc",
        "kfold:5:0",
        "kfold:5:6",
        "kfold:1:1",
        "user-last:0",
        "u6",
        "holdout",
        "",
    ],
)
def test_invalid_specs_raise_split_error_listing_forms(ds: Dataset, spec: str) -> None:
    with pytest.raises(SplitError) as err:
        make_split(ds, spec)
    assert isinstance(err.value, CinerecError)
    if spec != "u6" and not spec.startswith("kfold:5"):
        assert "user-temporal:0.8" in str(err.value)


def test_help_lists_every_form() -> None:
    for form in ("random:", "temporal:", "user-temporal:", "user-last:", "kfold:", "loo", "u1"):
        assert form in SPLIT_SPECS_HELP


def test_check_no_leakage_catches_leaky_splits(ds: Dataset) -> None:
    good = random_split(ds, test_frac=0.2, seed=0)
    # 1. a test row copied into train
    leaky = dataclasses.replace(good, train=ds.subset(np.arange(ds.n_ratings)), test=good.test)
    with pytest.raises(SplitError, match="also in train"):
        check_no_leakage(leaky)
    # 2. a global temporal split whose train holds the latest rating
    t = temporal_split(ds, train_frac=0.8)
    order = np.argsort(ds.timestamps, kind="stable")
    n_tr = t.train.n_ratings
    swapped = np.concatenate([order[: n_tr - 1], order[-1:]])
    rest = np.setdiff1d(np.arange(ds.n_ratings), swapped)
    bad = dataclasses.replace(t, train=ds.subset(np.sort(swapped)), test=ds.subset(rest))
    with pytest.raises(SplitError, match="temporal split leaks"):
        check_no_leakage(bad)
    # the same rows pass when labelled random: time order is only required of time splits
    check_no_leakage(dataclasses.replace(bad, spec="random:0.8"))
    # 3. a per-user split whose test holds a user's earliest rating
    u = leave_one_out(ds)
    uo = np.lexsort((ds.timestamps, ds.users))
    first_rows = uo[np.r_[0, np.flatnonzero(np.diff(ds.users[uo])) + 1]]
    bad_u = dataclasses.replace(
        u,
        train=ds.subset(np.setdiff1d(np.arange(ds.n_ratings), first_rows)),
        test=ds.subset(first_rows),
    )
    with pytest.raises(SplitError, match="loo split leaks the future"):
        check_no_leakage(bad_u)
    # 4. valid overlapping test
    v = random_split(ds, test_frac=0.2, valid_frac=0.1, seed=0)
    with pytest.raises(SplitError, match="valid and test"):
        check_no_leakage(dataclasses.replace(v, valid=v.test))


# ---- MovieLens-100K predefined folds ---------------------------------------------------
def _write_ml100k(root: Path, rng: np.random.Generator) -> np.ndarray:
    """A tiny ml-100k folder: u.data, u1.base/u1.test (1/5 of rows in test)."""
    n_users, n_items, n = 30, 40, 400
    keys = rng.choice(n_users * n_items, n, replace=False)
    data = np.column_stack(
        [keys // n_items + 1, keys % n_items + 1, rng.integers(1, 6, n), 880_000_000 + keys]
    )
    root.mkdir(parents=True)

    def write(name: str, rows: np.ndarray) -> None:
        lines = ["\t".join(str(int(v)) for v in r) for r in rows]
        (root / name).write_text("\n".join(lines) + "\n", encoding="latin-1")

    write("u.data", data)
    is_test = np.arange(n) % 5 == 0
    write("u1.base", data[~is_test])
    write("u1.test", data[is_test])
    return data[is_test]


def _ml100k_dataset(data_rows: np.ndarray, root: Path) -> Dataset:
    from cinerec.data.dataset import IdMap

    umap, u = IdMap.from_raw(data_rows[:, 0])
    imap, i = IdMap.from_raw(data_rows[:, 1])
    return Dataset(
        name="ml-100k",
        users=u,
        items=i,
        ratings=data_rows[:, 2],
        timestamps=data_rows[:, 3],
        user_ids=umap,
        item_ids=imap,
        rating_scale=(1.0, 5.0),
        source={"name": "ml-100k", "format": "ml-100k", "root": str(root)},
    )


def test_predefined_fold_maps_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    root = tmp_path / "ml-100k"
    test_rows = _write_ml100k(root, rng)
    all_rows = np.loadtxt(root / "u.data", dtype=np.int64)
    ds = _ml100k_dataset(all_rows[rng.permutation(len(all_rows))], root)
    split = make_split(ds, "u1")
    assert split.spec == "u1"
    assert split.test.n_ratings == len(test_rows)
    assert split.train.n_ratings == len(all_rows) - len(test_rows)
    got = sorted(
        zip(
            ds.user_ids.raw(split.test.users).tolist(),
            ds.item_ids.raw(split.test.items).tolist(),
            strict=True,
        )
    )
    assert got == sorted(zip(test_rows[:, 0].tolist(), test_rows[:, 1].tolist(), strict=True))
    check_no_leakage(split)
    _assert_partition(ds, split)


def test_predefined_fold_errors(tmp_path: Path, ds: Dataset) -> None:
    with pytest.raises(SplitError, match="not ml-100k"):
        predefined_split(ds, "u1")
    with pytest.raises(SplitError, match="not one of"):
        predefined_split(ds, "u9")
    # fold files of another data set: pairs that are not ratings of this one
    root = tmp_path / "ml-100k"
    _write_ml100k(root, np.random.default_rng(1))
    other = np.loadtxt(root / "u.data", dtype=np.int64)
    wrong = _ml100k_dataset(other[:50], root)
    with pytest.raises(SplitError):
        make_split(wrong, "u1")
    # no ua files in this folder
    with pytest.raises(SplitError, match="ua"):
        make_split(_ml100k_dataset(other, root), "ua")
