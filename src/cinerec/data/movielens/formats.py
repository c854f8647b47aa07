"""The MovieLens file formats as data: files, separators, columns, encoding, rating scale.

Four layouts cover every release (from the GroupLens READMEs):

* ``ml-100k``: ``u.data`` (user, item, rating, timestamp; tab-separated), ``u.item``
  (pipe-separated: id|title|release date|video release date|IMDb URL|19 genre flags),
  ``u.user`` (id|age|gender|occupation|zip). Latin-1.
* ``ml-1m``: ``::``-separated ``ratings.dat``, ``movies.dat`` (id::title::genres),
  ``users.dat`` (id::gender::age::occupation::zip). Latin-1.
* ``ml-10m``: ``ratings.dat``, ``movies.dat``, ``tags.dat`` (user::movie::tag::timestamp).
* ``csv`` (ml-20m and later, ml-latest, synthetic releases): ``ratings.csv``,
  ``movies.csv``, ``tags.csv``, ``links.csv`` with headers; genome files are ignored.
  UTF-8.

`Col` carries each column's type and, for numbers, the valid range, so the readers
reject (or skip) a rating of NaN, infinity or outside the scale like any other bad field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import polars as pl

OnBadLines = Literal["error", "skip"]
Duplicates = Literal["latest", "error", "mean"]
#: "latin-1": the whole file is latin-1 (by format). "utf-8": strict UTF-8 where bad
#: bytes are replaced on their own lines only, and those lines counted. "auto": UTF-8,
#: else the whole file as latin-1 (ml-10m, whose encoding GroupLens does not document).
Encoding = Literal["utf-8", "latin-1", "auto"]

#: ml-100k genre flag columns, in file order (from the release's u.genre).
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip

#: ml-1m occupation codes (README of ml-1m).
ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip

#: Not genres: MovieLens' placeholder for none, and ml-100k's "unknown" flag.
NOT_GENRES = frozenset({"(no genres listed)", "unknown", ""})

#: The file whose presence identifies a format ("dat" is ml-1m or ml-10m).
MARKERS = {"u.data": "ml-100k", "ratings.dat": "dat", "ratings.csv": "csv"}


@dataclass(frozen=True)
class Col:
    """One column: name, polars type, whether it may be empty, and the valid range."""

    name: str
    dtype: type[pl.DataType] | pl.DataType
    nullable: bool = False
    lo: float | None = None  # inclusive bounds; numbers outside are bad values
    hi: float | None = None
    finite: bool = False  # NaN and infinities are bad values

    def valid(self, e: pl.Expr) -> pl.Expr | None:
        """Expression true where the parsed value ``e`` is acceptable (None: no rule)."""
        rule: pl.Expr | None = None
        if self.finite:
            rule = e.is_finite()
        if self.lo is not None:
            rule = (e >= self.lo) if rule is None else rule & (e >= self.lo)
        if self.hi is not None:
            rule = (e <= self.hi) if rule is None else rule & (e <= self.hi)
        if rule is None:
            return None
        return rule.fill_null(True)  # an empty optional field is not a bad value

    def rule_text(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"a finite number in [{self.lo:g}, {self.hi:g}]"
        if self.lo is not None:
            return f">= {self.lo:g}"
        return "a finite number"


def cols(*spec: tuple) -> tuple[Col, ...]:
    return tuple(Col(*s) for s in spec)


@dataclass(frozen=True)
class FileSpec:
    """How to read one member: columns and the separator / header / quoting rules."""

    member: str
    cols: tuple[Col, ...]
    sep: str
    header: bool = False
    quoted: bool = False
    pattern: str | None = None  # a regex with one group per column (ambiguous separators)
    big: bool = False  # ratings: read by polars straight from the file, no decode


def ratings_spec(member: str, sep: str, scale: tuple[float, float], header: bool = False) -> FileSpec:
    """The ratings file: ids, a rating within ``scale`` and a non-negative timestamp."""
    c = cols(
        ("userId", pl.Int64),
        ("movieId", pl.Int64),
        ("rating", pl.Float32, False, scale[0], scale[1], True),
        ("timestamp", pl.Int64, False, 0),
    )
    return FileSpec(member, c, sep, header=header, big=True)


_ML100K_FLAGS = tuple(f"g{j}" for j in range(len(ML100K_GENRES)))
_TAG_COLS = cols(("userId", pl.Int64), ("movieId", pl.Int64), ("tag", pl.String, True), ("timestamp", pl.Int64))


@dataclass(frozen=True)
class Format:
    """Everything format-specific about a release layout."""

    name: str
    encoding: Encoding
    rating_scale: tuple[float, float]
    ratings: FileSpec
    movies: FileSpec | None = None
    links: FileSpec | None = None
    tags: FileSpec | None = None
    users: FileSpec | None = None
    genre_order: tuple[str, ...] | None = None  # None: genre names sorted


FORMATS: dict[str, Format] = {
    "ml-100k": Format(
        "ml-100k", "latin-1", (1.0, 5.0),
        ratings=ratings_spec("u.data", "\t", (1.0, 5.0)),
        movies=FileSpec("u.item", cols(
            ("movieId", pl.Int64), ("title_raw", pl.String), ("release_date", pl.String, True),
            ("video_release_date", pl.String, True), ("imdb_url", pl.String, True),
            *[(f, pl.Int8) for f in _ML100K_FLAGS],
        ), "|"),
        users=FileSpec("u.user", cols(
            ("userId", pl.Int64), ("age", pl.Int32), ("gender", pl.String),
            ("occupation", pl.String), ("zip", pl.String, True),
        ), "|"),
        genre_order=ML100K_GENRES,
    ),
    "ml-1m": Format(
        "ml-1m", "latin-1", (1.0, 5.0),
        ratings=ratings_spec("ratings.dat", "::", (1.0, 5.0)),
        # Greedy middle group: a title may contain colons; genres follow the last "::".
        movies=FileSpec("movies.dat", cols(
            ("movieId", pl.Int64), ("title_raw", pl.String), ("genres", pl.String, True),
        ), "::", pattern=r"^\s*(\d+)::(.*)::(.*)$"),
        users=FileSpec("users.dat", cols(
            ("userId", pl.Int64), ("gender", pl.String), ("age", pl.Int32),
            ("occupation_code", pl.Int32), ("zip", pl.String, True),
        ), "::"),
    ),
    "ml-10m": Format(
        "ml-10m", "auto", (0.5, 5.0),
        ratings=ratings_spec("ratings.dat", "::", (0.5, 5.0)),
        movies=FileSpec("movies.dat", cols(
            ("movieId", pl.Int64), ("title_raw", pl.String), ("genres", pl.String, True),
        ), "::", pattern=r"^\s*(\d+)::(.*)::(.*)$"),
        tags=FileSpec("tags.dat", _TAG_COLS, "::", pattern=r"^\s*(\d+)::(\d+)::(.*)::(\d+)\s*$"),
    ),
    "csv": Format(
        "csv", "utf-8", (0.5, 5.0),
        ratings=ratings_spec("ratings.csv", ",", (0.5, 5.0), header=True),
        movies=FileSpec("movies.csv", cols(
            ("movieId", pl.Int64), ("title", pl.String), ("genres", pl.String, True),
        ), ",", header=True, quoted=True),
        links=FileSpec("links.csv", cols(
            ("movieId", pl.Int64), ("imdbId", pl.Int64, True), ("tmdbId", pl.Int64, True),
        ), ",", header=True, quoted=True),
        tags=FileSpec("tags.csv", _TAG_COLS, ",", header=True, quoted=True),
    ),
}  # fmt: skip

ML100K_FLAGS = _ML100K_FLAGS


def with_member(spec: FileSpec, member: str) -> FileSpec:
    """The same layout under another member name (ml-100k folds: ``u1.base``...)."""
    return replace(spec, member=member)
