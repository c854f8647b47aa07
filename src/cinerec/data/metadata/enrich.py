"""Attach TMDB / IMDb columns to a data set's item table (``Dataset.items_meta``).

Content models read item features from ``items_meta`` only (a model never reads
files); this is the one place metadata files are joined onto a data set. The join
reports (match rates) are kept in ``Dataset.source["metadata"]``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cinerec.data.dataset import Dataset
from cinerec.data.metadata.imdb import join_imdb
from cinerec.data.metadata.tmdb import join_tmdb, read_tmdb
from cinerec.data.store import data_home
from cinerec.errors import DataFormatError, DatasetUnavailable

#: Metadata sources `with_metadata` knows.
SOURCES = ("tmdb", "imdb")
#: File name of the TMDB table in the data home.
TMDB_FILE = "tmdb_5000_movies.csv"


def has_metadata(dataset: Dataset, source: str) -> bool:
    """True when ``dataset.items_meta`` already carries ``source``'s columns."""
    items = dataset.items_meta
    return items is not None and any(c.startswith(f"{source}_") for c in items.columns)


def with_metadata(
    dataset: Dataset,
    sources: tuple[str, ...] | list[str],
    *,
    tmdb_path: str | Path | None = None,
    imdb_dir: str | Path | None = None,
) -> Dataset:
    """``dataset`` with the columns of each source joined onto its item table.

    ``tmdb`` reads ``tmdb_path`` (default ``<data home>/tmdb_5000_movies.csv``), ``imdb``
    the TSVs in ``imdb_dir`` (default ``<data home>/imdb``). A source already joined is
    skipped. Raises `DatasetUnavailable` naming the missing file and `DataFormatError`
    when the data set has no links to join through.
    """
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        raise DataFormatError(f"unknown metadata source(s) {unknown}; known: {', '.join(SOURCES)}")
    reports = dict(dataset.source.get("metadata") or {})
    for source in sources:
        if has_metadata(dataset, source):
            continue
        if source == "tmdb":
            path = Path(tmdb_path) if tmdb_path is not None else data_home() / TMDB_FILE
            if not path.is_file():
                raise DatasetUnavailable(
                    f"TMDB metadata needed but {path} does not exist; save the Kaggle "
                    f"'{TMDB_FILE}' there (or pass its path)"
                )
            items, report = join_tmdb(dataset, read_tmdb(path))
        else:
            items, report = join_imdb(dataset, imdb_dir)
        reports[source] = {"matched": report.matched, "total": report.total, "with_key": report.with_key,
                           "match_rate": report.match_rate}  # fmt: skip
        dataset = replace(dataset, items_meta=items, source={**dataset.source, "metadata": reports})
    return dataset
