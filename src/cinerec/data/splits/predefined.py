"""MovieLens-100K's predefined folds (``u1``..``u5``, ``ua``, ``ub``) as splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.data.splits.core import _PREDEFINED, _TEST, _TRAIN, Split, _build
from cinerec.data.splits.leakage import _pair_keys
from cinerec.errors import CinerecError, SplitError


def predefined_split(ds: Dataset, fold: str) -> Split:
    """MovieLens-100K's own folds: ``u1``..``u5`` (5-fold), ``ua``/``ub`` (10 per user).

    Reads ``<root>/<fold>.base`` and ``<fold>.test`` (root = ``ds.source["root"]``, an
    extracted ml-100k folder or the zip) and maps their (user, movie) pairs to rows.
    """
    if fold not in _PREDEFINED:
        raise SplitError(f"predefined fold {fold!r} is not one of {', '.join(_PREDEFINED)}")
    fmt = ds.source.get("format")
    root = ds.source.get("root")
    if root is None or (fmt is not None and fmt != "ml-100k"):
        raise SplitError(
            f"split {fold!r} is MovieLens-100K's predefined fold, but data set {ds.name!r} "
            f"is not ml-100k (format={fmt!r}); load ml-100k or use e.g. 'kfold:5:1'"
        )
    rows = {}
    for part in ("base", "test"):
        frame = _read_fold(Path(root), f"{fold}.{part}")
        rows[part] = _rows_of_pairs(
            ds, frame["userId"].to_numpy(), frame["movieId"].to_numpy(), f"{root}:{fold}.{part}"
        )
    label = np.full(ds.n_ratings, -1, dtype=np.int8)
    label[rows["base"]] = _TRAIN
    label[rows["test"]] = _TEST
    # Rows in neither file (only if the data set holds more than u.data) are left out.
    unused = int(np.count_nonzero(label < 0))
    return _build(ds, label, fold, None, False, protocol="predefined", rows_not_in_fold=unused)


def _read_fold(root: Path, member: str):
    from cinerec.data.movielens import read_ml100k_ratings

    try:
        return read_ml100k_ratings(root, member=member)
    except CinerecError as exc:
        raise SplitError(f"cannot read ml-100k fold file {member} under {root}: {exc}") from exc


def _rows_of_pairs(ds: Dataset, raw_users: np.ndarray, raw_items: np.ndarray, label: str):
    """Row positions of the data set holding these raw (user, movie) pairs."""
    u = ds.user_ids.lookup(raw_users.astype(ds.user_ids.ids.dtype))
    i = ds.item_ids.lookup(raw_items.astype(ds.item_ids.ids.dtype))
    if (u < 0).any() or (i < 0).any():
        raise SplitError(f"{label} has user/movie ids not in data set {ds.name!r}")
    keys = _pair_keys(ds)
    order = np.argsort(keys, kind="stable")
    want = u.astype(np.int64) * ds.n_items + i
    pos = np.clip(np.searchsorted(keys, want, sorter=order), 0, max(len(keys) - 1, 0))
    found = keys[order[pos]] == want if len(keys) else np.zeros(len(want), bool)
    if not found.all():
        raise SplitError(
            f"{label}: {int((~found).sum())} (user, movie) pairs are not ratings of data set "
            f"{ds.name!r}; the fold files do not belong to this data"
        )
    return order[pos]

