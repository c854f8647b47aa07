"""`check_invariants`: what every loaded `Dataset` guarantees, checked in one place.

The loaders call it on what they parsed and the cache reader on what it mapped from
disk, so a model never sees a NaN rating, a duplicate pair that a sparse matrix would
sum, or an index past the end of an id map. Everything is one vectorised pass over the
arrays; the duplicate check sorts only when the rows are not already in (user, item)
order (MovieLens CSV releases and the synthetic generator are).
"""

from __future__ import annotations

import numpy as np

from cinerec.data.dataset import Dataset
from cinerec.errors import DataFormatError


def pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """One int64 key per (user, item) row: ``user * n_items + item``."""
    return users.astype(np.int64) * np.int64(max(n_items, 1)) + items.astype(np.int64)


def first_duplicate(keys: np.ndarray) -> int | None:
    """Row position of one duplicated key, or None when all keys are distinct."""
    if keys.size < 2:
        return None
    if (keys[1:] > keys[:-1]).all():  # already strictly increasing: distinct, no sort needed
        return None
    order = np.argsort(keys, kind="stable")
    same = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    return int(order[same[0] + 1]) if same.size else None


def _fail(ds: Dataset, where: str, what: str) -> DataFormatError:
    return DataFormatError(
        f"{ds.name} ({where}): invariant failed: {what}. Delete the cache entry or fix the "
        "source; loaders never produce this"
    )


def check_invariants(ds: Dataset, where: str = "dataset") -> None:
    """Raise `DataFormatError` naming the first invariant ``ds`` breaks.

    Checked: array lengths equal and 1-d; the rating scale finite with min < max;
    every rating finite and within it; timestamps non-negative; user and item indices
    within their id maps; id maps strictly increasing; no duplicate (user, item) pair;
    genre matrix and metadata frames sized to the catalogue. ``where`` names the origin
    (a file or cache folder) in the message.
    """
    n = ds.users.shape[0]
    for name in ("users", "items", "ratings", "timestamps"):
        arr = getattr(ds, name)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise _fail(ds, where, f"{name} has shape {arr.shape}, users has ({n},)")
    lo, hi = (float(x) for x in ds.rating_scale)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise _fail(ds, where, f"rating scale {ds.rating_scale} is not a finite (min, max) with min < max")
    for name, ids in (("user_ids", ds.user_ids.ids), ("item_ids", ds.item_ids.ids)):
        if ids.ndim != 1:
            raise _fail(ds, where, f"{name} has shape {ids.shape}, not 1-d")
        if ids.size > 1 and not (ids[1:] > ids[:-1]).all():
            raise _fail(ds, where, f"{name} is not strictly increasing")
    if n:
        r = ds.ratings
        # min/max propagate NaN, so two passes without temporaries cover all three rules.
        if not (r.min() >= lo and r.max() <= hi):
            j = int(np.flatnonzero(~np.isfinite(r) | (r < lo) | (r > hi))[0])
            raise _fail(ds, where, f"rating {float(r[j])!r} at row {j} is not finite within {lo:g}-{hi:g}")
        if int(ds.timestamps.min()) < 0:
            j = int(ds.timestamps.argmin())
            raise _fail(ds, where, f"timestamp {int(ds.timestamps[j])} at row {j} is negative")
        for name, idx, size in (("users", ds.users, ds.n_users), ("items", ds.items, ds.n_items)):
            if int(idx.min()) < 0 or int(idx.max()) >= size:
                raise _fail(
                    ds, where, f"{name} indices span {int(idx.min())}..{int(idx.max())}, id map has {size}"
                )
        dup = first_duplicate(pair_keys(ds.users, ds.items, ds.n_items))
        if dup is not None:
            u, i = int(ds.users[dup]), int(ds.items[dup])
            raise _fail(
                ds, where,
                f"(user, item) pair ({ds.user_ids.raw(u)}, {ds.item_ids.raw(i)}) appears more than once",
            )  # fmt: skip
    if ds.item_genres is not None and ds.item_genres.shape != (ds.n_items, len(ds.genre_names)):
        raise _fail(
            ds, where,
            f"item_genres has shape {ds.item_genres.shape}, expected ({ds.n_items}, {len(ds.genre_names)})",
        )  # fmt: skip
    if ds.items_meta is not None and ds.items_meta.height != ds.n_items:
        raise _fail(ds, where, f"items_meta has {ds.items_meta.height} rows for {ds.n_items} items")
    if ds.users_meta is not None and ds.users_meta.height != ds.n_users:
        raise _fail(ds, where, f"users_meta has {ds.users_meta.height} rows for {ds.n_users} users")
