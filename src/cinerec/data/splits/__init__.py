"""Leakage-free splits of a `Dataset` into train / (valid) / test.

Every split shares the parent's id space: a user or item with no rating in `train`
is *cold*, and its test rows are marked (`Split.cold_user_rows`, `cold_item_rows`),
never dropped.

All split functions are pure: they take a Dataset (and a seed where random) and
return a `Split` whose parts are `Dataset.subset`s of row positions of that one
Dataset, in the parent's row order. They are vectorised (a sort at most), so a
25M-row split takes seconds. `make_split` parses the string specs used by configs
and the CLI (see `SPLIT_SPECS_HELP`); `check_no_leakage` verifies a split.

Leakage caveat of per-user temporal splits (``user-temporal``, ``user-last``,
``loo``): each user's test ratings are later than that user's train ratings, but
train still holds other users' ratings made *after* this user's test ratings, so a
model can learn "the future" (e.g. what became popular). Only the global
``temporal`` split is free of that; see docs/splits.md.

Modules: `core` (Split, shared helpers), `random` (random, k-fold), `temporal`
(temporal, per-user, leave-one-out), `predefined` (ml-100k folds), `spec`
(`make_split`), `leakage` (`check_no_leakage`).
"""

from __future__ import annotations

from cinerec.data.splits.core import SPLIT_SPECS_HELP, Split
from cinerec.data.splits.leakage import check_no_leakage
from cinerec.data.splits.predefined import predefined_split
from cinerec.data.splits.random import item_cold_split, kfold_split, random_split
from cinerec.data.splits.spec import make_split
from cinerec.data.splits.temporal import leave_one_out, temporal_split, user_temporal_split

__all__ = [
    "SPLIT_SPECS_HELP",
    "Split",
    "check_no_leakage",
    "item_cold_split",
    "kfold_split",
    "leave_one_out",
    "make_split",
    "predefined_split",
    "random_split",
    "temporal_split",
    "user_temporal_split",
]
