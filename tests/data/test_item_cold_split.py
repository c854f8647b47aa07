"""The item-cold split: whole movies held out for the cold-item slice, plus a warm test share."""

from __future__ import annotations

import numpy as np
import pytest

from cinerec.data.dataset import Dataset
from cinerec.data.splits import Split, check_no_leakage, item_cold_split, make_split
from cinerec.errors import SplitError
from cinerec.testing.data import make_ratings_dataset


@pytest.fixture(scope="module")
def ds() -> Dataset:
    full = make_ratings_dataset(n_users=80, n_items=60, density=0.3, seed=5)
    # Movies 0..4 lose every rating: in the catalogue, but not "rated movies".
    return full.subset(full.items >= 5)


def _rated(ds: Dataset) -> np.ndarray:
    return np.flatnonzero(np.bincount(ds.items, minlength=ds.n_items) > 0)


def _held_out(ds: Dataset, split: Split) -> np.ndarray:
    """Movies rated in ``ds`` that have no train row."""
    rated = _rated(ds)
    return rated[split.train.item_counts[rated] == 0]


def _pair_keys(d: Dataset) -> np.ndarray:
    return np.sort(d.users.astype(np.int64) * d.n_items + d.items)


def _n_of(frac: float, n: int) -> int:
    return int(np.floor(frac * n + 0.5))  # rounded half up


@pytest.mark.parametrize(("item_frac", "test_frac"), [(0.2, 0.1), (0.1, 0.0), (0.35, 0.25)])
def test_held_out_movies_are_whole_and_counted(
    ds: Dataset, item_frac: float, test_frac: float
) -> None:
    split = item_cold_split(ds, item_frac=item_frac, test_frac=test_frac, seed=3)
    rated = _rated(ds)
    assert rated.shape[0] == 55 and ds.n_items == 60
    cold = _held_out(ds, split)
    assert cold.shape[0] == _n_of(item_frac, rated.shape[0]) == split.info["n_cold_items"]
    assert not np.isin(cold, np.arange(5)).any()  # never a movie without ratings
    # every row of a held-out movie is a test row, none is a train row
    assert not np.isin(split.train.items, cold).any()
    assert np.isin(split.test.items, cold).sum() == np.isin(ds.items, cold).sum()
    # train and test partition the rows
    assert split.train.n_ratings + split.test.n_ratings == ds.n_ratings
    np.testing.assert_array_equal(
        np.sort(np.concatenate([_pair_keys(split.train), _pair_keys(split.test)])), _pair_keys(ds)
    )
    # a share test_frac of the other rows is test too
    n_other = int((~np.isin(ds.items, cold)).sum())
    n_warm_test = int((~np.isin(split.test.items, cold)).sum())
    assert n_warm_test == _n_of(test_frac, n_other)
    assert split.valid is None
    check_no_leakage(split)


def test_cold_item_rows_mark_exactly_the_held_out_movies(ds: Dataset) -> None:
    split = make_split(ds, "item-cold:0.2", seed=11)
    cold = _held_out(ds, split)
    mask = split.cold_item_rows
    assert mask.dtype == bool and mask.shape == (split.test.n_ratings,)
    np.testing.assert_array_equal(mask, np.isin(split.test.items, cold))
    assert 0 < mask.sum() < split.test.n_ratings  # both slices are there
    share = split.info["cold_test_rows"]["cold_item_rows"]
    assert share == pytest.approx(mask.sum() / split.test.n_ratings)
    assert split.info["protocol"] == "item-cold"


def test_same_seed_same_split_other_seed_other_split(ds: Dataset) -> None:
    a = item_cold_split(ds, 0.2, seed=1)
    b = item_cold_split(ds, 0.2, seed=1)
    c = item_cold_split(ds, 0.2, seed=2)
    np.testing.assert_array_equal(_pair_keys(a.test), _pair_keys(b.test))
    np.testing.assert_array_equal(_held_out(ds, a), _held_out(ds, b))
    assert not np.array_equal(_held_out(ds, a), _held_out(ds, c))
    assert a.seed == 1 and c.seed == 2
    via_spec = make_split(ds, "item-cold:0.2", seed=1)
    np.testing.assert_array_equal(_pair_keys(via_spec.test), _pair_keys(a.test))


@pytest.mark.parametrize(
    ("spec", "item_frac", "test_frac"),
    [
        ("item-cold:0.2", 0.2, 0.1),
        ("item-cold:0.2,0.05", 0.2, 0.05),
        (" Item-Cold:.3,0 ", 0.3, 0.0),
    ],
)
def test_spec_parses(ds: Dataset, spec: str, item_frac: float, test_frac: float) -> None:
    split = make_split(ds, spec, seed=4)
    direct = item_cold_split(ds, item_frac=item_frac, test_frac=test_frac, seed=4)
    np.testing.assert_array_equal(_pair_keys(split.test), _pair_keys(direct.test))
    assert split.spec == direct.spec
    # the split's own spec string makes the same split again
    again = make_split(ds, split.spec, seed=4)
    np.testing.assert_array_equal(_pair_keys(again.test), _pair_keys(split.test))
    assert _held_out(ds, split).shape[0] == _n_of(item_frac, 55)


@pytest.mark.parametrize(
    "spec",
    ["item-cold:0", "item-cold:1", "item-cold:1.5", "item-cold:0.2,1", "item-cold:0.2,1.5", "item-cold:",
     "item-cold:-0.2", "item-cold:0.2,0.1,0.1", "item-cold:abc", "item-cold"],
)  # fmt: skip
def test_bad_specs_raise(ds: Dataset, spec: str) -> None:
    with pytest.raises(SplitError):
        make_split(ds, spec)


def test_bad_fractions_raise(ds: Dataset) -> None:
    with pytest.raises(SplitError, match="item_frac"):
        item_cold_split(ds, item_frac=0.0)
    with pytest.raises(SplitError):
        item_cold_split(ds, item_frac=1.0)
    with pytest.raises(SplitError):
        item_cold_split(ds, item_frac=0.2, test_frac=-0.1)
    tiny = make_ratings_dataset(n_users=10, n_items=4, seed=0)
    with pytest.raises(SplitError, match="at least one held out"):
        item_cold_split(tiny, item_frac=0.1)  # round(0.4) = 0 movies
    with pytest.raises(SplitError, match="at least one held out"):
        item_cold_split(tiny, item_frac=0.9)  # round(3.6) = 4: every movie
