"""Every MovieLens file format, parsed and validated into one `Dataset`.

* `formats`: the per-release layout table (files, separators, columns, encoding, scale).
* `archive`: a release in a folder or a zip (`Source`), zip damage and size limits.
* `readers`: parsing one member, value validation, decoding, the `LoadReport`.
* `members`: the per-file readers (ratings, movies, links, tags, users).
* `build`: `build_dataset` (ids, duplicates, metadata) and `load_movielens`.
"""

from __future__ import annotations

from cinerec.data.movielens.archive import DEFAULT_LIMITS, ArchiveLimits, Source
from cinerec.data.movielens.build import (
    DUPLICATE_POLICIES,
    build_dataset,
    check_options,
    load_movielens,
    merge_duplicates,
)
from cinerec.data.movielens.formats import (
    FORMATS,
    ML1M_OCCUPATIONS,
    ML100K_GENRES,
    Duplicates,
    OnBadLines,
)
from cinerec.data.movielens.members import read_ml100k_ratings, split_title
from cinerec.data.movielens.readers import LoadReport

__all__ = [
    "DEFAULT_LIMITS",
    "DUPLICATE_POLICIES",
    "FORMATS",
    "ML100K_GENRES",
    "ML1M_OCCUPATIONS",
    "ArchiveLimits",
    "Duplicates",
    "LoadReport",
    "OnBadLines",
    "Source",
    "build_dataset",
    "check_options",
    "load_movielens",
    "merge_duplicates",
    "read_ml100k_ratings",
    "split_title",
]
