"""The data layer: MovieLens releases (any size), metadata sources, the `Dataset` type.

Entry point: `load_dataset`. It finds a release in the data home (or takes a path),
downloads it only when asked, parses it once and caches the parsed arrays, keyed by
the source's fingerprint, so later loads take well under a second.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from cinerec.data import cache as _cache
from cinerec.data.dataset import Dataset, IdMap
from cinerec.data.movielens import load_movielens, read_ml100k_ratings, split_title
from cinerec.data.store import (
    RELEASES,
    Release,
    cache_dir,
    data_home,
    fetch_imdb,
    fetch_movielens,
    find_local,
    fingerprint,
)
from cinerec.errors import DataFormatError, DatasetUnavailable

__all__ = [
    "RELEASES",
    "Dataset",
    "IdMap",
    "Release",
    "cache_dir",
    "data_home",
    "fetch_imdb",
    "fetch_movielens",
    "load_dataset",
    "read_ml100k_ratings",
    "split_title",
]


def _resolve(name_or_path: str | Path, home: Path, download: bool, progress: bool) -> tuple[str, Path]:
    """(data set name, folder or zip path) for a release name or a filesystem path."""
    text = str(name_or_path)
    p = Path(text).expanduser()
    # A bare release name wins over a same-named folder in the working directory.
    if text not in RELEASES and p.exists():
        return (p.name[:-4] if p.name.endswith(".zip") else p.name), p
    local = find_local(text, home)
    if local is not None:
        return text, local
    if text in RELEASES:
        if download:
            return text, fetch_movielens(text, home, progress=progress)
        url = RELEASES[text].url
        raise DatasetUnavailable(
            f"{text} is not in the data home {home}. Run `cinerec data fetch {text}` (downloads "
            f"{url}), pass download=True, or save the zip by hand as {home / (text + '.zip')}"
        )
    if p.exists():
        return p.name, p
    raise DatasetUnavailable(
        f"{text!r} is neither an existing path nor a data set in {home}; known releases: "
        f"{', '.join(RELEASES)}"
    )


def load_dataset(
    name_or_path: str | Path,
    data_home: str | Path | None = None,
    *,
    download: bool = False,
    cache: bool = True,
    on_bad_lines: str = "error",
    progress: bool = True,
) -> Dataset:
    """Load a MovieLens release (by name) or any MovieLens-format folder/zip (by path).

    Parameters
    ----------
    name_or_path : a release name (``"ml-25m"``; looked up as ``NAME/`` or ``NAME.zip``
        in the data home) or a path to a folder or zip in any MovieLens format.
    data_home : overrides ``$CINEREC_DATA`` / ``~/.cache/cinerec``.
    download : fetch a missing release from GroupLens (checksum-verified).
    cache : reuse / write the parsed-array cache (``$CINEREC_CACHE``).
    on_bad_lines : ``"error"`` raises `DataFormatError` naming file and line;
        ``"skip"`` drops malformed lines, warns, and records the counts in
        ``Dataset.source["skipped_lines"]``.
    progress : show download progress and a parsing spinner.
    """
    if on_bad_lines not in ("error", "skip"):
        raise DataFormatError(f'on_bad_lines must be "error" or "skip", got {on_bad_lines!r}')
    from cinerec.data.store import data_home as _home

    home = _home(data_home)
    name, path = _resolve(name_or_path, home, download, progress)
    fp = fingerprint(path)
    entry = None
    root = cache_dir() if cache else None
    if root is not None:
        entry = root / f"{name}-{_cache.cache_key(fp, on_bad_lines=on_bad_lines)}"
        hit = _cache.load(entry)
        if hit is not None:
            return hit
    ds = load_movielens(path, name=name, on_bad_lines=on_bad_lines, progress=progress)  # type: ignore[arg-type]
    ds.source["fingerprint"] = fp
    if entry is not None:
        try:
            _cache.save(ds, entry)
        except OSError as e:
            # A cache that cannot be written only costs speed; say so once.
            warnings.warn(f"could not write the data cache {entry}: {e}", stacklevel=2)
    return ds
