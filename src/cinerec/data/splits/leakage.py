"""`check_no_leakage`: verify that a split holds no test information in train."""

from __future__ import annotations

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.data.splits.core import _PER_USER_KINDS, Split
from cinerec.errors import SplitError


def _pair_keys(ds: Dataset) -> np.ndarray:
    return ds.users.astype(np.int64) * ds.n_items + ds.items.astype(np.int64)


def check_no_leakage(split: Split) -> None:
    """Raise `SplitError` if ``split`` leaks test (or valid) information into train.

    Checks: one id space; no (user, movie) pair in more than one of train/valid/test
    and none repeated within test or valid; for ``temporal`` splits no train rating
    later than the earliest test (and valid) rating; for per-user splits
    (``user-temporal``, ``user-last``, ``loo``) the same per user.
    """
    tr, te, va = split.train, split.test, split.valid
    for part in (te, va):
        if part is not None and (part.user_ids != tr.user_ids or part.item_ids != tr.item_ids):
            raise SplitError(
                "split parts do not share one id space (build them with Dataset.subset)"
            )
    # One sort of all (pair, part) keys finds every pair held twice, within a part or
    # across parts (np.isin / np.unique are far slower on 10^7 rows).
    names = ("train", "valid", "test")
    present = [(0, tr), (2, te)] + ([(1, va)] if va is not None else [])
    comp = np.sort(np.concatenate([_pair_keys(d) * 4 + code for code, d in present]))
    pair = comp >> 2
    dup = np.flatnonzero(pair[1:] == pair[:-1])
    if dup.size:
        kinds = np.bincount((comp[dup] & 3) * 4 + (comp[dup + 1] & 3), minlength=16)
        worst = int(np.argmax(kinds))
        x, y, c = names[worst // 4], names[worst % 4], int(kinds[worst])
        if x == y:
            raise SplitError(f"{x} holds {c} duplicated (user, movie) pairs")
        if x == "train":
            raise SplitError(f"{c} (user, movie) pairs of {y} are also in train")
        raise SplitError(f"valid and test share {c} (user, movie) pairs")

    kind = split.spec.split(":")[0]
    if kind == "temporal":
        seq = [("train", tr)] + ([("valid", va)] if va is not None else []) + [("test", te)]
        seq = [(n, d) for n, d in seq if d.n_ratings]
        for (na, a), (nb, b) in zip(seq, seq[1:], strict=False):
            if a.timestamps.max() > b.timestamps.min():
                raise SplitError(
                    f"temporal split leaks the future: a {na} rating at {int(a.timestamps.max())}"
                    f" is later than the earliest {nb} rating at {int(b.timestamps.min())}"
                )
    elif kind in _PER_USER_KINDS:
        n_users = tr.n_users
        seq = [("train", tr)] + ([("valid", va)] if va is not None else []) + [("test", te)]
        for (na, a), (nb, b) in zip(seq, seq[1:], strict=False):
            latest = np.full(n_users, np.iinfo(np.int64).min)
            np.maximum.at(latest, a.users, a.timestamps)
            earliest = np.full(n_users, np.iinfo(np.int64).max)
            np.minimum.at(earliest, b.users, b.timestamps)
            bad = np.flatnonzero(latest > earliest)
            if bad.size:
                raw = tr.user_ids.raw(bad[:5]).tolist()
                raise SplitError(
                    f"{kind} split leaks the future for {bad.size} user(s) (e.g. user ids "
                    f"{raw}): a {na} rating is later than their earliest {nb} rating"
                )
