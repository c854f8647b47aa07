"""The data layer: MovieLens releases (any size), metadata sources, the `Dataset` type.

Entry point: `load_dataset`. It finds a release in the data home (or takes a path),
downloads it only when asked, parses and validates it once and caches the parsed
arrays, keyed by the source's fingerprint, so later loads take well under a second.
A damaged cache entry is rebuilt from the source, never trusted.

Layout: ``dataset`` (Dataset, IdMap), ``invariants`` (check_invariants), ``store``
(data home, downloads), ``cache``, ``movielens/`` (archive, formats, readers, members,
build), ``metadata/`` (tmdb, imdb), ``synthetic/``, ``splits/``, ``catalogue``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from cinerec._util import console
from cinerec.data import cache as _cache
from cinerec.data.dataset import Dataset, IdMap
from cinerec.data.invariants import check_invariants
from cinerec.data.movielens import (
    ArchiveLimits,
    Duplicates,
    LoadReport,
    OnBadLines,
    check_options,
    load_movielens,
    read_ml100k_ratings,
    split_title,
)
from cinerec.data.movielens.build import warn as _warn
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
from cinerec.errors import CinerecError, DatasetUnavailable

__all__ = [
    "RELEASES",
    "ArchiveLimits",
    "Dataset",
    "IdMap",
    "LoadReport",
    "Release",
    "cache_dir",
    "check_invariants",
    "data_home",
    "fetch_imdb",
    "fetch_movielens",
    "load_dataset",
    "load_movielens",
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
    on_bad_lines: OnBadLines = "error",
    duplicates: Duplicates = "latest",
    limits: ArchiveLimits | None = None,
    progress: bool = True,
) -> Dataset:
    """Load a MovieLens release (by name) or any MovieLens-format folder/zip (by path).

    Parameters
    ----------
    name_or_path : a release name (``"ml-25m"``; looked up as ``NAME/`` or ``NAME.zip``
        in the data home) or a path to a folder or zip in any MovieLens format.
    data_home : overrides ``$CINEREC_DATA`` / ``~/.cache/cinerec``.
    download : fetch a missing release from GroupLens (checksum-verified).
    cache : reuse / write the parsed-array cache (``$CINEREC_CACHE``); a damaged entry
        is rebuilt.
    on_bad_lines : ``"error"`` raises `DataFormatError` naming file, line and value for
        a malformed line or a bad value (rating NaN, infinite or off the scale, negative
        timestamp); ``"skip"`` drops those lines, warns, and records the counts in
        ``Dataset.source["skipped_lines"]`` and ``source["load_report"]``.
    duplicates : repeated (user, movie) ratings: ``"latest"`` keeps the newest (ties:
        the last in the file), ``"mean"`` averages them, ``"error"`` raises.
    limits : caps on zip members (`ArchiveLimits`: decompressed size, line length).
    progress : show download progress and a parsing spinner.
    """
    check_options(on_bad_lines, duplicates)
    from cinerec.data.store import data_home as _home

    home = _home(data_home)
    name, path = _resolve(name_or_path, home, download, progress)
    fp = fingerprint(path)
    entry = None
    root = cache_dir() if cache else None
    if root is not None:
        # Limits only decide whether a load succeeds, never its output: not in the key.
        entry = root / f"{name}-{_cache.cache_key(fp, on_bad_lines=on_bad_lines, duplicates=duplicates)}"
        hit = _cache.load(entry)
        if hit is not None:
            _warn(hit.source.get("load_report") or {})
            return hit
    ds = load_movielens(
        path, name=name, on_bad_lines=on_bad_lines, duplicates=duplicates, limits=limits, progress=progress
    )
    ds.source["fingerprint"] = fp
    if entry is not None:
        try:
            _cache.save(ds, entry)
        except OSError as e:
            # A cache that cannot be written only costs speed; say so once.
            warnings.warn(f"could not write the data cache {entry}: {e}", stacklevel=2)
        except CinerecError as e:  # something that is not ours sits at the entry's path
            console.console(stderr=True).print(f"[yellow]warning:[/] data cache not written: {e}")
    return ds
