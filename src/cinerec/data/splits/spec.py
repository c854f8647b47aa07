"""Parsing the split specs of configs and the CLI (`make_split`)."""

from __future__ import annotations

import re

from cinerec._util import validate
from cinerec.data.dataset import Dataset
from cinerec.data.splits.core import _PREDEFINED, SPLIT_SPECS_HELP, Split
from cinerec.data.splits.predefined import predefined_split
from cinerec.data.splits.random import item_cold_split, kfold_split, random_split
from cinerec.data.splits.temporal import leave_one_out, temporal_split, user_temporal_split
from cinerec.errors import SplitError

_FRACS = r"(\d*\.?\d+)(?:,(\d*\.?\d+))?"


def make_split(ds: Dataset, spec: str, seed: int = 42) -> Split:
    """Split ``ds`` by a spec string (see `SPLIT_SPECS_HELP`); SplitError if invalid."""
    seed = validate.seed(seed)
    s = str(spec).strip().lower()
    if m := re.fullmatch(r"random:" + _FRACS, s):
        train, valid = float(m[1]), float(m[2] or 0)
        _spec_fracs(spec, train, valid)
        return random_split(ds, test_frac=1 - train - valid, valid_frac=valid, seed=seed)
    if m := re.fullmatch(r"temporal:" + _FRACS, s):
        train, valid = float(m[1]), float(m[2] or 0)
        _spec_fracs(spec, train, valid)
        return temporal_split(ds, train_frac=train, valid_frac=valid)
    if m := re.fullmatch(r"user-temporal:" + _FRACS, s):
        train, valid = float(m[1]), float(m[2] or 0)
        _spec_fracs(spec, train, valid)
        return user_temporal_split(ds, test_frac=1 - train - valid, valid_frac=valid)
    if m := re.fullmatch(r"user-last:(\d+)", s):
        if int(m[1]) < 1:
            raise SplitError(f"split spec {spec!r}: N must be >= 1\n{SPLIT_SPECS_HELP}")
        return user_temporal_split(ds, last_n=int(m[1]))
    if m := re.fullmatch(r"kfold:(\d+):(\d+)", s):
        k, f = int(m[1]), int(m[2])
        if k < 2 or not 1 <= f <= k:
            raise SplitError(
                f"split spec {spec!r}: need K >= 2 and 1 <= F <= K (F is 1-based)\n"
                f"{SPLIT_SPECS_HELP}"
            )
        return kfold_split(ds, k=k, fold=f - 1, seed=seed)
    if m := re.fullmatch(r"item-cold:" + _FRACS, s):
        items, rows = float(m[1]), float(m[2]) if m[2] is not None else 0.1
        if not 0 < items < 1 or not 0 <= rows < 1:
            raise SplitError(f"split spec {spec!r}: need 0 < F < 1 and 0 <= T < 1\n{SPLIT_SPECS_HELP}")
        return item_cold_split(ds, item_frac=items, test_frac=rows, seed=seed)
    if s == "loo":
        return leave_one_out(ds)
    if s in _PREDEFINED:
        return predefined_split(ds, s)
    raise SplitError(f"unknown split spec {spec!r}\n{SPLIT_SPECS_HELP}")


def _spec_fracs(spec: str, train: float, valid: float) -> None:
    # Round before comparing: "0.9,0.1" leaves no test, "0.7,0.3" must not pass by 1e-16.
    if not (0 < train < 1) or valid < 0 or round(train + valid, 9) >= 1:
        raise SplitError(
            f"split spec {spec!r}: need 0 < train < 1 and train + valid < 1 (the rest is "
            f"test)\n{SPLIT_SPECS_HELP}"
        )

