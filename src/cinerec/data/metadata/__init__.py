"""Movie metadata sources joined onto a MovieLens catalogue through ``links.csv``.

* `tmdb`: the Kaggle ``tmdb_5000_movies.csv`` format (`read_tmdb`, `join_tmdb`).
* `imdb`: IMDb's non-commercial TSVs, streamed (`read_imdb`, `join_imdb`).
* `enrich`: `with_metadata(dataset, ("tmdb", "imdb"))`, the join content models use.
"""

from __future__ import annotations

from cinerec.data.metadata.enrich import SOURCES, has_metadata, with_metadata
from cinerec.data.metadata.imdb import (
    IMDB_SCHEMAS,
    find_imdb_file,
    imdb_name,
    join_imdb,
    read_imdb,
    tconst,
)
from cinerec.data.metadata.tmdb import (
    JSON_LIST_COLUMNS,
    JoinReport,
    join_tmdb,
    read_tmdb,
    tmdb_vote_dataset,
)

__all__ = [
    "IMDB_SCHEMAS",
    "JSON_LIST_COLUMNS",
    "SOURCES",
    "JoinReport",
    "find_imdb_file",
    "has_metadata",
    "imdb_name",
    "join_imdb",
    "join_tmdb",
    "read_imdb",
    "read_tmdb",
    "tconst",
    "tmdb_vote_dataset",
    "with_metadata",
]
