"""The `Split` type, the spec help text and the helpers every split function shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.errors import SplitError


@dataclass(frozen=True, eq=False)
class Split:
    """train, optional valid, test: subsets of one Dataset in one index space."""

    train: Dataset
    test: Dataset
    valid: Dataset | None = None
    spec: str = ""
    seed: int | None = None
    info: dict = field(default_factory=dict)

    @cached_property
    def cold_user_rows(self) -> np.ndarray:
        """Bool mask over test rows whose user has no rating in train."""
        return self.train.user_counts[self.test.users] == 0

    @cached_property
    def cold_item_rows(self) -> np.ndarray:
        """Bool mask over test rows whose item has no rating in train."""
        return self.train.item_counts[self.test.items] == 0

    @property
    def warm_rows(self) -> np.ndarray:
        return ~(self.cold_user_rows | self.cold_item_rows)

    def cold_share(self) -> dict[str, float]:
        n = max(self.test.n_ratings, 1)
        return {
            "cold_user_rows": float(self.cold_user_rows.sum() / n),
            "cold_item_rows": float(self.cold_item_rows.sum() / n),
            "warm_rows": float(self.warm_rows.sum() / n),
        }


SPLIT_SPECS_HELP = """\
Split specs (fractions are of ratings; the rest goes to test):
  random:0.9           random rows, 90% train / 10% test (seeded)
  random:0.8,0.1       random rows, 80% train / 10% valid / 10% test
  temporal:0.8         global time split: the earliest 80% of ratings train, latest 20% test
  temporal:0.8,0.1     global time split with a valid slice between train and test
  user-temporal:0.8    per user: each user's earliest 80% train, latest 20% test
  user-temporal:0.8,0.1  per user, with each user's middle 10% as valid
  user-last:N          per user: each user's last N ratings test (users with <= N stay in train)
  kfold:K:F            K-fold cross-validation, fold F of K (F is 1-based: kfold:5:1 .. kfold:5:5)
  item-cold:0.1        10% of the rated movies held out whole (all their ratings test) plus
                       10% of the other rows (item-cold:F,T sets that share T; seeded)
  loo                  leave-one-out: each user's latest rating is test
  u1 .. u5, ua, ub     MovieLens-100K's predefined folds (u1.base/u1.test ...); ml-100k only"""

_TRAIN, _VALID, _TEST = 0, 1, 2
_PER_USER_KINDS = ("user-temporal", "user-last", "loo")
_PREDEFINED = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


# ---- helpers ------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{round(float(x), 10):g}"


def _n_of(frac: float, n: int) -> int:
    """Rows for a fraction, rounded half up (so fractions are met within one row)."""
    return int(np.floor(frac * n + 0.5))


def _check_frac(name: str, value: float, spec: str | None = None) -> float:
    v = float(value)
    if not (0.0 <= v < 1.0) or not np.isfinite(v):
        where = f" in split spec {spec!r}" if spec else ""
        raise SplitError(f"{name}={value!r}{where} must be in [0, 1)\n{SPLIT_SPECS_HELP}")
    return v


def _build(
    ds: Dataset, label: np.ndarray, spec: str, seed: int | None, with_valid: bool, **info
) -> Split:
    """Make the Split from a per-row label (0 train, 1 valid, 2 test, -1 unused)."""
    train = ds.subset(label == _TRAIN, name=f"{ds.name}[train]")
    test = ds.subset(label == _TEST, name=f"{ds.name}[test]")
    valid = ds.subset(label == _VALID, name=f"{ds.name}[valid]") if with_valid else None
    meta = {
        "spec": spec,
        "n_train": train.n_ratings,
        "n_valid": valid.n_ratings if valid is not None else 0,
        "n_test": test.n_ratings,
        "n_total": ds.n_ratings,
        "dataset": ds.name,
        **info,
    }
    split = Split(train=train, test=test, valid=valid, spec=spec, seed=seed, info=meta)
    meta["cold_test_rows"] = split.cold_share()
    return split


def _label_by_order(order: np.ndarray, n_train: int, n_valid: int) -> np.ndarray:
    """Rows at positions [0, n_train) of ``order`` -> train, next n_valid -> valid, rest test."""
    label = np.full(order.shape[0], _TEST, dtype=np.int8)
    label[order[:n_train]] = _TRAIN
    label[order[n_train : n_train + n_valid]] = _VALID
    return label

