"""The per-file readers of a release: ratings, movies (titles, genres), links, tags, users.

Each returns a polars frame with raw ids (``userId``, ``movieId``), or None when the
release has no such file. The layouts come from `formats.FORMATS`; the parsing and the
value checks from `readers.read_member`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl

from cinerec.data.movielens.archive import ArchiveLimits, Source
from cinerec.data.movielens.formats import (
    ML1M_OCCUPATIONS,
    ML100K_FLAGS,
    ML100K_GENRES,
    NOT_GENRES,
    FileSpec,
    OnBadLines,
    with_member,
)
from cinerec.data.movielens.readers import LoadReport, decode, fast_read, line_read, read_member
from cinerec.errors import DataFormatError

_TITLE_RE = r"^(.*?)\s*\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)$"


def split_title(titles: pl.Expr) -> list[pl.Expr]:
    """Expressions for ``title`` and ``year``: "Toy Story (1995) " -> "Toy Story", 1995.

    Titles without a trailing year keep their full text and get a null year; year
    ranges of series ("(1975-1979)") give the first year.
    """
    t = titles.str.strip_chars()
    year = t.str.extract(_TITLE_RE, 2).cast(pl.Int32, strict=False)
    title = pl.when(year.is_not_null()).then(t.str.extract(_TITLE_RE, 1)).otherwise(t)
    return [title.alias("title"), year.alias("year")]


def _genre_list(col: str = "genres") -> pl.Expr:
    return (
        pl.col(col)
        .fill_null("")
        .str.split("|")
        .list.eval(pl.element().str.strip_chars().filter(~pl.element().is_in(list(NOT_GENRES))))
    )


def _read(src: Source, spec: FileSpec, on_bad_lines: OnBadLines, report: LoadReport) -> pl.DataFrame:
    return read_member(src, spec, encoding=src.spec.encoding, on_bad_lines=on_bad_lines, report=report)


def ratings(src: Source, on_bad_lines: OnBadLines, report: LoadReport) -> pl.DataFrame:
    """userId, movieId, rating, timestamp; every rating finite and within the scale."""
    return _read(src, src.spec.ratings, on_bad_lines, report)


def movies(src: Source, on_bad_lines: OnBadLines, report: LoadReport) -> pl.DataFrame | None:
    """movieId, title, year, genres (list[str]) (ml-100k: plus release_date, imdb_url)."""
    spec = src.spec.movies
    if spec is None or not src.has(spec.member):
        return None
    df = _read(src, spec, on_bad_lines, report)
    if src.format == "ml-100k":
        flags = [pl.when(pl.col(f) == 1).then(pl.lit(g)) for f, g in zip(ML100K_FLAGS, ML100K_GENRES, strict=True)]
        genres = pl.concat_list(flags).list.eval(
            pl.element().filter(pl.element().is_not_null() & ~pl.element().is_in(list(NOT_GENRES)))
        )
        return df.select(
            "movieId", *split_title(pl.col("title_raw")), genres.alias("genres"), "release_date", "imdb_url"
        )
    if "title" in df.columns:
        df = df.rename({"title": "title_raw"})
    return df.select("movieId", *split_title(pl.col("title_raw")), _genre_list().alias("genres"))


def links(src: Source, on_bad_lines: OnBadLines, report: LoadReport) -> pl.DataFrame | None:
    spec = src.spec.links
    if spec is None or not src.has(spec.member):
        return None
    return _read(src, spec, on_bad_lines, report)


def tags(src: Source, on_bad_lines: OnBadLines, report: LoadReport) -> pl.DataFrame | None:
    spec = src.spec.tags
    if spec is None or not src.has(spec.member):
        return None
    return _read(src, spec, on_bad_lines, report)


def users(src: Source, on_bad_lines: OnBadLines, report: LoadReport) -> pl.DataFrame | None:
    spec = src.spec.users
    if spec is None or not src.has(spec.member):
        return None
    df = _read(src, spec, on_bad_lines, report)
    if src.format != "ml-1m":
        return df
    occ = list(ML1M_OCCUPATIONS)
    return df.select(
        "userId",
        "gender",
        "age",
        pl.col("occupation_code")
        .replace_strict(list(range(len(occ))), occ, default=None, return_dtype=pl.String)
        .alias("occupation"),
        "occupation_code",
        "zip",
    )


def read_ml100k_ratings(
    path: str | Path, member: str = "u.data", *, limits: ArchiveLimits | None = None
) -> pl.DataFrame:
    """ml-100k ratings (``u.data`` format) as userId, movieId, rating, timestamp.

    ``path`` is a ratings file itself (``u.data``, ``u1.base``, ``ua.test`` ...) or the
    ml-100k folder/zip, from which ``member`` is read (e.g. ``member="u1.base"``).
    Ratings outside 1-5 or malformed lines raise `DataFormatError` naming file and line.
    """
    from cinerec.data.movielens.formats import FORMATS

    p = Path(path)
    report = LoadReport()
    base = FORMATS["ml-100k"].ratings
    if p.is_file() and not zipfile.is_zipfile(p):
        spec = with_member(base, p.name)
        text = decode(p.read_bytes(), "latin-1", str(p), report)
        df = fast_read(text, spec, spec.sep)
        if df is None:
            df = line_read(text, spec, label=str(p), on_bad_lines="error", report=report)
        return df
    src = Source(p, limits)
    try:
        if not src.has(member):
            raise DataFormatError(f"{src.label(member)} does not exist (is {p} an ml-100k release?)")
        return read_member(
            src, with_member(base, member), encoding="latin-1", on_bad_lines="error", report=report
        )
    finally:
        src.close()
