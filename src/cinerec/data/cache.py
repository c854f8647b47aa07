"""Parsed-array cache: a second load of the same source skips parsing.

One folder per (source fingerprint, loader version, options) under the cache dir:
``*.npy`` for arrays (loaded memory-mapped, so a warm 25M-rating load costs little RAM
and well under a second), parquet for metadata frames, ``meta.json`` for the rest.
A folder is written under a temporary name and renamed into place, so readers never
see a half-written entry; no pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cinerec.data.dataset import Dataset, IdMap

#: Bump when the parsed representation changes, so stale entries are ignored.
CACHE_VERSION = 1

_ARRAYS = ("users", "items", "ratings", "timestamps")
_FRAMES = ("items_meta", "users_meta", "tags")


def cache_key(fingerprint: str, **options: Any) -> str:
    """Folder name for a source fingerprint and the loader options that change output."""
    h = hashlib.blake2b(digest_size=10)
    h.update(f"v{CACHE_VERSION}:{fingerprint}:{json.dumps(options, sort_keys=True)}".encode())
    return h.hexdigest()


def save(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` to the cache folder ``path`` atomically (temp folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(ds, name))
        np.save(tmp / "user_ids.npy", ds.user_ids.ids)
        np.save(tmp / "item_ids.npy", ds.item_ids.ids)
        if ds.item_genres is not None:
            np.save(tmp / "item_genres.npy", ds.item_genres)
        for name in _FRAMES:
            frame = getattr(ds, name)
            if frame is not None:
                frame.write_parquet(tmp / f"{name}.parquet", compression="lz4")
        meta = {
            "version": CACHE_VERSION,
            "name": ds.name,
            "rating_scale": list(ds.rating_scale),
            "genre_names": list(ds.genre_names),
            "source": ds.source,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
        try:
            os.rename(tmp, path)
        except OSError:
            # Another process finished the same entry first: theirs is as good as ours.
            if not (path / "meta.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load(path: str | Path) -> Dataset | None:
    """The cached `Dataset` in ``path``, or None when absent, stale or unreadable."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("version") != CACHE_VERSION:
            return None

        def arr(name: str) -> np.ndarray:
            # np.asarray drops the memmap subclass; the pages stay file-backed.
            return np.asarray(np.load(path / f"{name}.npy", mmap_mode="r"))

        frames = {
            name: pl.read_parquet(path / f"{name}.parquet") if (path / f"{name}.parquet").is_file() else None
            for name in _FRAMES
        }
        genres = path / "item_genres.npy"
        return Dataset(
            name=meta["name"],
            users=arr("users"),
            items=arr("items"),
            ratings=arr("ratings"),
            timestamps=arr("timestamps"),
            user_ids=IdMap(np.load(path / "user_ids.npy")),
            item_ids=IdMap(np.load(path / "item_ids.npy")),
            rating_scale=tuple(meta["rating_scale"]),
            items_meta=frames["items_meta"],
            users_meta=frames["users_meta"],
            item_genres=np.load(genres) if genres.is_file() else None,
            genre_names=tuple(meta["genre_names"]),
            tags=frames["tags"],
            source=meta["source"],
        )
    except (OSError, ValueError, KeyError, pl.exceptions.PolarsError):
        return None
