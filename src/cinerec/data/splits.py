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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.errors import CinerecError, SplitError


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


# ---- random ---------------------------------------------------------------------------
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


# ---- time -------------------------------------------------------------------------
def temporal_split(ds: Dataset, train_frac: float = 0.8, valid_frac: float = 0.0) -> Split:
    """Global time split: the earliest ``train_frac`` of ratings train, latest test.

    Rows are ordered by timestamp, ties by row position (stable), so the split is
    deterministic; valid (if any) lies in time between train and test.
    """
    train_frac = _check_frac("train_frac", train_frac)
    valid_frac = _check_frac("valid_frac", valid_frac)
    if train_frac <= 0 or train_frac + valid_frac >= 1:
        raise SplitError(
            f"temporal split: train_frac={train_frac} must be > 0 and train_frac + "
            f"valid_frac < 1 (got {train_frac + valid_frac}), leaving a test share"
        )
    n = ds.n_ratings
    order = _time_order(ds.timestamps, np.arange(n))
    n_train, n_valid = _n_of(train_frac, n), _n_of(valid_frac, n)
    label = _label_by_order(order, n_train, n_valid)
    spec = f"temporal:{_fmt(train_frac)}" + (f",{_fmt(valid_frac)}" if valid_frac else "")
    cut = int(ds.timestamps[order[n_train]]) if n_train < n else None
    return _build(ds, label, spec, None, valid_frac > 0, protocol="temporal", train_until=cut)


def _time_order(ts: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """Row positions sorted by (timestamp, tie); ``tie`` is a permutation of 0..n-1.

    Packs both into one int64 and sorts values (no stable argsort / lexsort): on 25M
    rows this is several times faster.
    """
    n = ts.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    span = int(ts.max()) - int(ts.min()) + 1
    if span * n >= 2**62:
        return np.lexsort((tie, ts))
    key = np.sort((ts - ts.min()) * np.int64(n) + tie)
    rows_by_tie = np.empty(n, dtype=np.int64)
    rows_by_tie[tie] = np.arange(n)
    return rows_by_tie[key % n]


def _user_time_order(ds: Dataset, tie_seed: int | None = None) -> np.ndarray:
    """Row positions sorted by (user, timestamp, tie key); the tie key is the row
    position, or a seeded random permutation when ``tie_seed`` is given."""
    n = ds.n_ratings
    tie = np.arange(n) if tie_seed is None else np.random.default_rng(tie_seed).permutation(n)
    by_time = _time_order(ds.timestamps, tie)
    # Rank of each row in (time, tie) order, then one int64 key (user, rank).
    rank = np.empty(n, dtype=np.int64)
    rank[by_time] = np.arange(n)
    key = np.sort(ds.users.astype(np.int64) * np.int64(max(n, 1)) + rank)
    return by_time[key % max(n, 1)]


def _per_user_split(
    ds: Dataset,
    test_frac: float,
    last_n: int | None,
    valid_frac: float,
    min_train: int,
    tie_seed: int | None = None,
) -> tuple[np.ndarray, int]:
    """Per-user labels: each user's latest rows test, the ones before valid.

    Returns (label, number of users left wholly in train).
    """
    order = _user_time_order(ds, tie_seed)
    u_sorted = ds.users[order]
    cnt = ds.user_counts  # over the whole user index space
    start = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    # Rank from the end within the user: 0 = latest rating.
    pos = np.arange(ds.n_ratings, dtype=np.int64) - start[u_sorted]
    from_end = cnt[u_sorted] - 1 - pos
    if last_n is not None:
        n_test = np.full(cnt.shape[0], last_n, dtype=np.int64)
    else:
        n_test = np.floor(test_frac * cnt + 0.5).astype(np.int64)
        n_test = np.where(test_frac > 0, np.maximum(n_test, 1), 0)
    n_valid = np.floor(valid_frac * cnt + 0.5).astype(np.int64)
    n_valid = np.where(valid_frac > 0, np.maximum(n_valid, 1), 0)
    # Users that would keep fewer than min_train ratings stay wholly in train.
    ok = cnt - n_test - n_valid >= min_train
    n_test = np.where(ok, n_test, 0)
    n_valid = np.where(ok, n_valid, 0)
    nt = n_test[u_sorted]
    lab_sorted = np.where(
        from_end < nt, _TEST, np.where(from_end < nt + n_valid[u_sorted], _VALID, _TRAIN)
    ).astype(np.int8)
    label = np.empty(ds.n_ratings, dtype=np.int8)
    label[order] = lab_sorted
    kept = int(np.count_nonzero(~ok & (cnt > 0)))
    return label, kept


def user_temporal_split(
    ds: Dataset,
    test_frac: float = 0.2,
    last_n: int | None = None,
    valid_frac: float = 0.0,
    min_train: int = 1,
) -> Split:
    """Per-user time split: each user's latest ``test_frac`` (or ``last_n``) ratings test.

    Per user, counts are rounded half up with at least one test (and one valid, when
    ``valid_frac > 0``) rating; a user left with fewer than ``min_train`` train ratings
    stays wholly in train. Ties in time are broken by row position.

    Leakage: train holds *other* users' later ratings (see the module docstring).
    """
    if last_n is None:
        test_frac = _check_frac("test_frac", test_frac)
        if test_frac <= 0:
            raise SplitError(f"user-temporal split: test_frac={test_frac} must be > 0")
    elif int(last_n) != last_n or last_n < 1:
        raise SplitError(f"user-last split: last_n={last_n!r} must be an integer >= 1")
    valid_frac = _check_frac("valid_frac", valid_frac)
    if last_n is None and test_frac + valid_frac >= 1:
        raise SplitError(
            f"user-temporal split: test_frac + valid_frac = {test_frac + valid_frac} must be < 1"
        )
    if min_train < 0:
        raise SplitError(f"user-temporal split: min_train={min_train} must be >= 0")
    label, kept = _per_user_split(ds, test_frac, last_n, valid_frac, min_train)
    if last_n is not None:
        spec, protocol = f"user-last:{int(last_n)}", "user-last"
    else:
        spec = f"user-temporal:{_fmt(1 - test_frac - valid_frac)}" + (
            f",{_fmt(valid_frac)}" if valid_frac else ""
        )
        protocol = "user-temporal"
    return _build(
        ds,
        label,
        spec,
        None,
        valid_frac > 0,
        protocol=protocol,
        users_train_only=kept,
        min_train=min_train,
    )


def leave_one_out(ds: Dataset, seed: int | None = None) -> Split:
    """Each user's latest rating is test; users with a single rating stay in train.

    Ties (several ratings at the user's latest second) are broken by row position,
    or at random from ``seed`` when given; either way deterministically.
    """
    label, kept = _per_user_split(ds, 0.0, 1, 0.0, 1, tie_seed=seed)
    return _build(ds, label, "loo", seed, False, protocol="loo", users_train_only=kept)


# ---- MovieLens-100K predefined folds ------------------------------------------------
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


# ---- spec parsing ---------------------------------------------------------------------
_FRACS = r"(\d*\.?\d+)(?:,(\d*\.?\d+))?"


def make_split(ds: Dataset, spec: str, seed: int = 42) -> Split:
    """Split ``ds`` by a spec string (see `SPLIT_SPECS_HELP`); SplitError if invalid."""
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


# ---- verification -------------------------------------------------------------------
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
