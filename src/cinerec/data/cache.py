"""Parsed-array cache: a second load of the same source skips parsing.

One folder per (source fingerprint, loader version, options) under the cache dir:
``*.npy`` for arrays (loaded memory-mapped, so a warm 25M-rating load costs little RAM
and well under a second), parquet for metadata frames, ``meta.json`` for the rest, and
``manifest.json`` (every other file's size and CRC-32) written last. The folder is
filled under a temporary name and installed by `fs.atomic_dir`, so a reader sees the
complete old entry or the complete new one, and a writer killed mid-way (``kill -9``)
leaves only a temporary that the next write removes (`fs.clean_stale`).

Nothing in an entry is trusted: `read` checks the manifest, every file's presence, size
and checksum, the arrays' dtypes and shapes, ``meta.json``'s types, and finally
`check_invariants` (index ranges, finite ratings, no duplicates). Any mismatch is a
miss (`load` returns None) and the caller rebuilds the entry from the source. No
pickle anywhere (``np.load`` refuses object arrays).

CRC-32, not SHA-256: it detects truncation, bit flips and swapped files at ~3 GB/s, and
the entry is a local cache of data we parsed ourselves, not a security boundary.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from cinerec._util import fs
from cinerec.data.dataset import Dataset, IdMap
from cinerec.data.invariants import check_invariants

#: Bump when the parsed representation changes, so stale entries are ignored.
CACHE_VERSION = 2
MANIFEST = "manifest.json"

_ARRAYS = {"users": np.int32, "items": np.int32, "ratings": np.float32, "timestamps": np.int64}
_FRAMES = ("items_meta", "users_meta", "tags")
_REQUIRED = (*(f"{a}.npy" for a in _ARRAYS), "user_ids.npy", "item_ids.npy", "meta.json")
_OPTIONAL = ("item_genres.npy", *(f"{f}.parquet" for f in _FRAMES))


class CacheMiss(Exception):
    """An entry that cannot be used (absent, stale or damaged); the reason is the message."""


def cache_key(fingerprint: str, **options: Any) -> str:
    """Folder name for a source fingerprint and the loader options that change output."""
    h = hashlib.blake2b(digest_size=10)
    h.update(f"v{CACHE_VERSION}:{fingerprint}:{json.dumps(options, sort_keys=True)}".encode())
    return h.hexdigest()


def crc32_file(path: Path) -> str:
    """CRC-32 of a file's bytes (memory-mapped, no copy), as 8 hex digits."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            return f"{zlib.crc32(b''):08x}"
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return f"{zlib.crc32(m):08x}"


def _entry_ours(path: Path) -> bool:
    # Every folder at an entry's name in the cache dir is one cinerec made (or a damaged
    # one), so a rebuild may replace it; fs still refuses files and symbolic links.
    return True


def save(ds: Dataset, path: str | Path) -> Path:
    """Write ``ds`` to the cache folder ``path`` (replacing a damaged entry) atomically."""
    path = Path(path)
    with fs.atomic_dir(path, owned=_entry_ours, overwrite=True) as tmp:
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
            "rating_scale": [float(x) for x in ds.rating_scale],
            "genre_names": list(ds.genre_names),
            "source": ds.source,
        }
        fs.write_text(tmp / "meta.json", json.dumps(meta, indent=1, default=str))
        files = {
            p.name: {"bytes": p.stat().st_size, "crc32": crc32_file(p)}
            for p in sorted(tmp.iterdir())
        }
        # Last: an entry without a complete manifest is never trusted.
        fs.write_json(tmp / MANIFEST, {"version": CACHE_VERSION, "files": files})
    return path


def load(path: str | Path) -> Dataset | None:
    """The cached `Dataset` in ``path``, or None when absent, stale or damaged."""
    try:
        return read(path)
    except CacheMiss:
        return None


def read(path: str | Path) -> Dataset:
    """The cached `Dataset` in ``path``; `CacheMiss` (with the reason) when unusable."""
    path = Path(path)
    if not path.is_dir():
        raise CacheMiss(f"{path} is not a cache entry")
    try:
        files = _check_manifest(path)
        meta = _meta(path)
        return _dataset(path, files, meta)
    except CacheMiss:
        raise
    except Exception as e:  # noqa: BLE001 - whatever fails to read is a miss: rebuild, never crash
        raise CacheMiss(f"{path}: {type(e).__name__}: {e}") from None
    except pl.exceptions.PanicException as e:  # a BaseException: polars on damaged parquet
        raise CacheMiss(f"{path}: parquet reader failed: {e}") from None


def _check_manifest(path: Path) -> set[str]:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CacheMiss(f"{path}: no readable manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("version") != CACHE_VERSION:
        raise CacheMiss(f"{path}: manifest of another cache version")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise CacheMiss(f"{path}: manifest lists no files")
    allowed = set(_REQUIRED) | set(_OPTIONAL)
    for name in _REQUIRED:
        if name not in files:
            raise CacheMiss(f"{path}: manifest lacks {name}")
    for name, rec in files.items():
        if name not in allowed or not isinstance(rec, dict):
            raise CacheMiss(f"{path}: unexpected manifest entry {name!r}")
        p = path / name
        size, crc = rec.get("bytes"), rec.get("crc32")
        if not p.is_file() or p.is_symlink():
            raise CacheMiss(f"{path}: {name} is missing")
        if type(size) is not int or p.stat().st_size != size:
            raise CacheMiss(f"{path}: {name} has the wrong size")
        if not isinstance(crc, str) or crc32_file(p) != crc:
            raise CacheMiss(f"{path}: {name} fails its checksum")
    for name in _OPTIONAL:  # a file the manifest does not vouch for is not used
        if name not in files and (path / name).exists():
            raise CacheMiss(f"{path}: {name} is not in the manifest")
    return set(files)


def _meta(path: Path) -> dict[str, Any]:
    meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("version") != CACHE_VERSION:
        raise CacheMiss(f"{path}: meta.json is not a version-{CACHE_VERSION} object")
    scale = meta.get("rating_scale")
    ok = (
        isinstance(meta.get("name"), str)
        and isinstance(scale, list)
        and len(scale) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in scale)
        and isinstance(meta.get("genre_names"), list)
        and all(isinstance(g, str) for g in meta["genre_names"])
        and isinstance(meta.get("source"), dict)
    )
    if not ok:
        raise CacheMiss(f"{path}: meta.json has missing or mistyped fields")
    return meta


def _array(path: Path, name: str, kind: str, ndim: int, dtype: type | None = None) -> np.ndarray:
    # np.asarray drops the memmap subclass; the pages stay file-backed.
    arr = np.asarray(np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False))
    if arr.ndim != ndim or arr.dtype.kind not in kind or (dtype is not None and arr.dtype != dtype):
        raise CacheMiss(f"{path}: {name}.npy has dtype {arr.dtype} and {arr.ndim} dimension(s)")
    return arr


def _dataset(path: Path, files: set[str], meta: dict[str, Any]) -> Dataset:
    arrays = {name: _array(path, name, "iuf", 1, dtype) for name, dtype in _ARRAYS.items()}
    n = arrays["users"].shape[0]
    for name, arr in arrays.items():
        if arr.shape != (n,):
            raise CacheMiss(f"{path}: {name}.npy has {arr.shape[0]} rows, users.npy has {n}")
    frames = {
        name: pl.read_parquet(path / f"{name}.parquet") if f"{name}.parquet" in files else None
        for name in _FRAMES
    }
    genres = _array(path, "item_genres", "b", 2) if "item_genres.npy" in files else None
    ds = Dataset(
        name=meta["name"],
        **arrays,
        user_ids=IdMap(np.array(_array(path, "user_ids", "iu", 1))),
        item_ids=IdMap(np.array(_array(path, "item_ids", "iu", 1))),
        rating_scale=(float(meta["rating_scale"][0]), float(meta["rating_scale"][1])),
        items_meta=frames["items_meta"],
        users_meta=frames["users_meta"],
        item_genres=np.array(genres) if genres is not None else None,
        genre_names=tuple(meta["genre_names"]),
        tags=frames["tags"],
        source=meta["source"],
    )
    check_invariants(ds, str(path))
    return ds
