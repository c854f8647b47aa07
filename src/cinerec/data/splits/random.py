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

