"""Random splits: a shuffled hold-out and k-fold cross-validation folds."""

from __future__ import annotations

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.data.splits.core import (
    _TEST,
    _TRAIN,
    SPLIT_SPECS_HELP,
    Split,
    _build,
    _check_frac,
    _fmt,
    _label_by_order,
    _n_of,
)
from cinerec.errors import SplitError


def random_split(
    ds: Dataset, test_frac: float = 0.1, valid_frac: float = 0.0, seed: int = 42
) -> Split:
    """Rows drawn uniformly at random: ``test_frac`` to test, ``valid_frac`` to valid."""
    test_frac = _check_frac("test_frac", test_frac)
    valid_frac = _check_frac("valid_frac", valid_frac)
    if test_frac <= 0 or test_frac + valid_frac >= 1:
        raise SplitError(
            f"random split: test_frac={test_frac} must be > 0 and test_frac + valid_frac "
            f"< 1 (got {test_frac + valid_frac})"
        )
    n = ds.n_ratings
    n_test = _n_of(test_frac, n)
    n_valid = _n_of(valid_frac, n)
    order = np.random.default_rng(seed).permutation(n)
    label = _label_by_order(order, n - n_test - n_valid, n_valid)
    train_frac = 1 - test_frac - valid_frac
    spec = f"random:{_fmt(train_frac)}" + (f",{_fmt(valid_frac)}" if valid_frac else "")
    return _build(ds, label, spec, seed, valid_frac > 0, protocol="random")


def kfold_split(ds: Dataset, k: int = 5, fold: int = 0, seed: int = 42) -> Split:
    """Fold ``fold`` (0-based here; 1-based in the spec ``kfold:K:F``) of a seeded K-fold.

    The K test folds partition the rows (sizes differ by at most one), so running
    folds 0..K-1 tests every rating exactly once.
    """
    if int(k) != k or k < 2:
        raise SplitError(f"kfold: k={k!r} must be an integer >= 2\n{SPLIT_SPECS_HELP}")
    if int(fold) != fold or not 0 <= fold < k:
        raise SplitError(f"kfold: fold={fold!r} must be in 0..{k - 1} (0-based; specs are 1-based)")
    n = ds.n_ratings
    perm = np.random.default_rng(seed).permutation(n)
    # Row at permutation position p belongs to fold p*k//n: contiguous, balanced blocks.
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[perm] = np.arange(n, dtype=np.int64) * k // max(n, 1)
    label = np.where(fold_of == fold, _TEST, _TRAIN).astype(np.int8)
    return _build(ds, label, f"kfold:{k}:{fold + 1}", seed, False, protocol="kfold", k=k, fold=fold)



def item_cold_split(ds: Dataset, item_frac: float = 0.1, test_frac: float = 0.1, seed: int = 42) -> Split:
    """Whole movies held out: every rating of a seeded ``item_frac`` share of the rated
    movies goes to test (the cold-item slice: no model saw a rating of them), and a
    random ``test_frac`` of the other rows joins test too (the warm slice), so one
    evaluation reports both. Content models score the held-out movies from their
    features; collaborative ones fall back to the damped item mean."""
    item_frac = _check_frac("item_frac", item_frac)
    test_frac = _check_frac("test_frac", test_frac)
    if item_frac <= 0:
        raise SplitError(f"item-cold split: item_frac={item_frac} must be > 0\n{SPLIT_SPECS_HELP}")
    rng = np.random.default_rng(seed)
    rated = np.flatnonzero(np.bincount(ds.items, minlength=ds.n_items) > 0)
    n_cold = _n_of(item_frac, rated.shape[0])
    if n_cold == 0 or n_cold >= rated.shape[0]:
        raise SplitError(
            f"item-cold split: item_frac={item_frac} of {rated.shape[0]} rated movies holds out "
            f"{n_cold}; need at least one held out and one kept"
        )
    cold = np.zeros(ds.n_items, dtype=bool)
    cold[rng.choice(rated, size=n_cold, replace=False)] = True
    cold_rows = cold[ds.items]
    label = np.full(ds.n_ratings, _TRAIN, dtype=np.int8)
    label[cold_rows] = _TEST
    warm_rows = np.flatnonzero(~cold_rows)
    n_warm_test = _n_of(test_frac, warm_rows.shape[0])
    label[rng.permutation(warm_rows)[:n_warm_test]] = _TEST
    spec = f"item-cold:{_fmt(item_frac)}" + (f",{_fmt(test_frac)}" if test_frac != 0.1 else "")
    return _build(ds, label, spec, seed, False, protocol="item-cold", n_cold_items=int(n_cold))
