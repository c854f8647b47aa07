"""Parsers for every MovieLens file format, building one `Dataset`.

Formats (auto-detected from the files present, in a folder or a zip):

* ``ml-100k``: ``u.data`` (user, item, rating, timestamp; tab-separated), ``u.item``
  (pipe-separated, latin-1: id|title|release date|video release date|IMDb URL|19 genre
  flags), ``u.user`` (id|age|gender|occupation|zip).
* ``ml-1m`` / ``ml-10m``: ``::``-separated ``ratings.dat``, ``movies.dat``
  (id::title::genres), ``users.dat`` (ml-1m: id::gender::age::occupation::zip) and
  ``tags.dat`` (ml-10m: user::movie::tag::timestamp).
* ``csv`` (ml-20m and later, ml-latest, synthetic releases): ``ratings.csv``,
  ``movies.csv``, ``tags.csv``, ``links.csv`` with headers; genome files are ignored.

Parsing uses polars. The fast path reads a file in one call; only when it fails (or
yields nulls) the slower line-by-line pass runs, to name the first bad line
(`DataFormatError`) or, with ``on_bad_lines="skip"``, to drop and count bad lines.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np
import polars as pl

from cinerec.data.dataset import Dataset, IdMap
from cinerec.errors import DataFormatError

OnBadLines = Literal["error", "skip"]

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

# Not genres: MovieLens' placeholder for none, and ml-100k's "unknown" flag.
_NOT_GENRES = frozenset({"(no genres listed)", "unknown", ""})

_RATING_COLS = ("userId", "movieId", "rating", "timestamp")
_MARKERS = {"u.data": "ml-100k", "ratings.dat": "dat", "ratings.csv": "csv"}


@dataclass(frozen=True)
class _Col:
    name: str
    dtype: type[pl.DataType] | pl.DataType
    nullable: bool = False


def _cols(*spec: tuple) -> tuple[_Col, ...]:
    return tuple(_Col(*s) for s in spec)


_RATINGS = _cols(("userId", pl.Int64), ("movieId", pl.Int64), ("rating", pl.Float32), ("timestamp", pl.Int64))


# ---- sources: a folder or a zip ----------------------------------------------------------
class Source:
    """The files of one MovieLens release, in a folder or a zip; detects the format."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataFormatError(f"{self.path} does not exist")
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_file():
            if not zipfile.is_zipfile(self.path):
                raise DataFormatError(
                    f"{self.path} is neither a folder nor a zip archive of a MovieLens release"
                )
            self._zip = zipfile.ZipFile(self.path)
            names = [n for n in self._zip.namelist() if not n.endswith("/")]
        else:
            names = [
                str(p.relative_to(self.path).as_posix())
                for p in list(self.path.iterdir()) + [c for d in self.path.iterdir() if d.is_dir() for c in d.iterdir()]
                if p.is_file()
            ]
        # The shallowest marker file decides the format and the root folder.
        best: tuple[int, str, str] | None = None
        for n in names:
            pp = PurePosixPath(n)
            if pp.name in _MARKERS and not pp.name.startswith("._"):
                cand = (len(pp.parts), str(pp.parent), pp.name)
                if best is None or cand < best:
                    best = cand
        if best is None:
            raise DataFormatError(
                f"{self.path} holds no MovieLens ratings file (looked for u.data, ratings.dat, "
                "ratings.csv); pass the release folder or its zip"
            )
        self.prefix = "" if best[1] == "." else best[1] + "/"
        self._names = set(names)
        marker = _MARKERS[best[2]]
        if marker == "dat":
            marker = "ml-1m" if self.has("users.dat") else "ml-10m"
        self.format: str = marker

    @property
    def root(self) -> Path:
        """The extracted folder holding the files, or the zip path."""
        if self._zip is not None:
            return self.path
        return self.path / self.prefix if self.prefix else self.path

    def has(self, name: str) -> bool:
        return self.prefix + name in self._names

    def label(self, name: str) -> str:
        """Human-readable location of a member, for error messages."""
        if self._zip is not None:
            return f"{self.path}:{self.prefix}{name}"
        return str(self.path / (self.prefix + name))

    def read_bytes(self, name: str) -> bytes:
        if self._zip is not None:
            return self._zip.read(self.prefix + name)
        return (self.path / (self.prefix + name)).read_bytes()

    def csv_source(self, name: str) -> str | bytes:
        """What polars should read: a path for folders (memory-mapped), bytes for zips."""
        if self._zip is not None:
            return self._zip.read(self.prefix + name)
        return str(self.path / (self.prefix + name))

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _decode(data: bytes) -> str:
    # ml-100k and ml-1m are latin-1; CSV releases are UTF-8.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# ---- generic parsing -------------------------------------------------------------------
def _schema(cols: tuple[_Col, ...]) -> dict[str, pl.DataType]:
    return {c.name: c.dtype for c in cols}  # type: ignore[misc]


def _fast_read(
    data: str | bytes, cols: tuple[_Col, ...], *, sep: str, header: bool, quoted: bool
) -> pl.DataFrame | None:
    """One polars call; None when anything looks off (then the line pass diagnoses)."""
    try:
        df = pl.read_csv(
            data,
            has_header=header,
            new_columns=None,
            schema=_schema(cols),
            separator=sep,
            quote_char='"' if quoted else None,
            encoding="utf8",
            raise_if_empty=False,
        )
    except Exception:  # polars raises several types for malformed input
        return None
    required = [c.name for c in cols if not c.nullable]
    if required and df.select(pl.any_horizontal(pl.col(required).is_null()).any()).item():
        return None
    return df


def _split_lines(text: str) -> pl.DataFrame:
    """Non-blank lines with their 1-based line number."""
    lines = pl.Series("line", [text]).str.split("\n").explode()
    return (
        pl.DataFrame(lines)
        .with_row_index("lineno", offset=1)
        .with_columns(pl.col("line").str.strip_suffix("\r"))
        .filter(pl.col("line").str.strip_chars() != "")
    )


def _line_read(
    text: str,
    cols: tuple[_Col, ...],
    *,
    label: str,
    on_bad_lines: OnBadLines,
    skipped: dict[str, int],
    sep: str | None = None,
    pattern: str | None = None,
    header: bool = False,
    quoted: bool = False,
) -> pl.DataFrame:
    """Line-by-line parse that knows line numbers: raise on, or skip, malformed lines."""
    names = [c.name for c in cols]
    k = len(cols)
    if quoted:
        # Quoted CSV (titles, tags with commas): Python's csv knows the quoting rules.
        reader = csv.reader(io.StringIO(text))
        linenos: list[int] = []
        rows: list[list[str] | None] = []
        first = True
        for row in reader:
            if first and header:
                first = False
                continue
            first = False
            if not row:
                continue
            linenos.append(reader.line_num)
            rows.append(row if len(row) == k else None)
        ok_len = pl.Series([r is not None for r in rows], dtype=pl.Boolean)
        fields = pl.DataFrame(
            {n: [r[j] if r is not None else None for r in rows] for j, n in enumerate(names)},
            schema={n: pl.String for n in names},
        )
        raw_lines = pl.Series([",".join(r) if r is not None else "?" for r in rows], dtype=pl.String)
        frame = fields.with_columns(
            lineno=pl.Series(linenos, dtype=pl.UInt32), line=raw_lines, ok_len=ok_len
        )
    else:
        lines = _split_lines(text)
        if header:
            lines = lines.filter(pl.col("lineno") > lines.get_column("lineno").min())
        if pattern is not None:
            parts = pl.col("line").str.extract_groups(pattern)
            frame = lines.with_columns(parts.alias("_p")).unnest("_p")
            frame = frame.rename({str(j + 1): n for j, n in enumerate(names)})
            frame = frame.with_columns(ok_len=pl.col(names[0]).is_not_null())
        else:
            split = pl.col("line").str.split(sep)
            frame = lines.with_columns(
                [split.list.get(j, null_on_oob=True).alias(n) for j, n in enumerate(names)]
                + [(split.list.len() == k).alias("ok_len")]
            )
    casts = []
    bad = ~pl.col("ok_len")
    for c in cols:
        raw = pl.col(c.name).str.strip_chars() if c.dtype != pl.String else pl.col(c.name)
        if c.dtype == pl.String:
            casts.append(raw.alias(c.name))
            if not c.nullable:
                bad = bad | raw.is_null()
            continue
        empty = raw.is_null() | (raw == "")
        val = pl.when(empty).then(None).otherwise(raw).cast(c.dtype, strict=False)
        casts.append(val.alias(c.name))
        bad = bad | (val.is_null() & ~empty) | (empty if not c.nullable else pl.lit(False))
    frame = frame.with_columns(bad.alias("_bad")).with_columns(casts)
    n_bad = int(frame.get_column("_bad").sum())
    if n_bad:
        if on_bad_lines == "error":
            first = frame.filter(pl.col("_bad")).row(0, named=True)
            raise DataFormatError(
                f"{label} line {first['lineno']}: expected {k} fields "
                f"({', '.join(names)}), got {str(first['line'])[:120]!r}. Fix the file, or pass "
                'on_bad_lines="skip" to drop malformed lines'
            )
        skipped[label] = skipped.get(label, 0) + n_bad
        frame = frame.filter(~pl.col("_bad"))
    return frame.select(names)


def _read(
    src: Source,
    name: str,
    cols: tuple[_Col, ...],
    *,
    on_bad_lines: OnBadLines,
    skipped: dict[str, int],
    sep: str,
    header: bool = False,
    quoted: bool = False,
    pattern: str | None = None,
    big: bool = False,
) -> pl.DataFrame:
    """Read one member: fast polars path, then the line pass when that fails."""
    label = src.label(name)
    text: str | None = None
    if header:
        raw_head = src.read_bytes(name)[:4096] if not big else _head(src, name)
        got = _decode(raw_head).split("\n", 1)[0].strip().lstrip("\ufeff")
        want = sep.join(c.name for c in cols)
        if got.replace('"', "") != want:
            raise DataFormatError(f"{label} line 1: expected the header {want!r}, got {got[:120]!r}")
    if pattern is None:
        if big and len(sep) == 1:
            data: str | bytes = src.csv_source(name)
        elif big:
            # Ratings are ASCII digits: swap the two-byte separator without decoding.
            data = src.read_bytes(name).replace(sep.encode(), b"\x1f")
        else:
            text = _decode(src.read_bytes(name))
            data = (text.replace(sep, "\x1f") if len(sep) > 1 else text).encode()
        df = _fast_read(
            data, cols, sep="\x1f" if len(sep) > 1 else sep, header=header, quoted=quoted
        )
        if df is not None:
            return df
    if text is None:
        text = _decode(src.read_bytes(name))
    return _line_read(
        text,
        cols,
        label=label,
        on_bad_lines=on_bad_lines,
        skipped=skipped,
        sep=sep,
        pattern=pattern,
        header=header,
        quoted=quoted,
    )


def _head(src: Source, name: str) -> bytes:
    if src._zip is not None:
        with src._zip.open(src.prefix + name) as f:
            return f.read(4096)
    with open(src.path / (src.prefix + name), "rb") as f:
        return f.read(4096)


# ---- titles and genres -------------------------------------------------------------------
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
        .list.eval(pl.element().str.strip_chars().filter(~pl.element().is_in(list(_NOT_GENRES))))
    )


# ---- per-format readers ------------------------------------------------------------------
def read_ml100k_ratings(path: str | Path, member: str = "u.data") -> pl.DataFrame:
    """ml-100k ratings (``u.data`` format) as userId, movieId, rating, timestamp.

    ``path`` is a ratings file itself (``u.data``, ``u1.base``, ``ua.test`` ...) or the
    ml-100k folder/zip, from which ``member`` is read (e.g. ``member="u1.base"``).
    """
    p = Path(path)
    skipped: dict[str, int] = {}
    if p.is_file() and not zipfile.is_zipfile(p):
        src_text = _decode(p.read_bytes())
        df = _fast_read(src_text, _RATINGS, sep="\t", header=False, quoted=False)
        if df is None:
            df = _line_read(src_text, _RATINGS, label=str(p), on_bad_lines="error", skipped=skipped, sep="\t")
        return df
    src = Source(p)
    try:
        if not src.has(member):
            raise DataFormatError(f"{src.label(member)} does not exist (is {p} an ml-100k release?)")
        return _read(src, member, _RATINGS, on_bad_lines="error", skipped=skipped, sep="\t", big=True)
    finally:
        src.close()


def _ratings(src: Source, on_bad_lines: OnBadLines, skipped: dict[str, int]) -> pl.DataFrame:
    if src.format == "ml-100k":
        return _read(src, "u.data", _RATINGS, on_bad_lines=on_bad_lines, skipped=skipped, sep="\t", big=True)
    if src.format in ("ml-1m", "ml-10m"):
        return _read(src, "ratings.dat", _RATINGS, on_bad_lines=on_bad_lines, skipped=skipped, sep="::", big=True)
    return _read(
        src, "ratings.csv", _RATINGS, on_bad_lines=on_bad_lines, skipped=skipped, sep=",", header=True, big=True
    )


def _movies(src: Source, on_bad_lines: OnBadLines, skipped: dict[str, int]) -> pl.DataFrame | None:
    """movieId, title, year, genres (list[str]) — or None when the release has no movies file."""
    kw = {"on_bad_lines": on_bad_lines, "skipped": skipped}
    if src.format == "ml-100k":
        if not src.has("u.item"):
            return None
        flags = tuple(f"g{j}" for j in range(len(ML100K_GENRES)))
        cols = _cols(
            ("movieId", pl.Int64),
            ("title_raw", pl.String),
            ("release_date", pl.String, True),
            ("video_release_date", pl.String, True),
            ("imdb_url", pl.String, True),
            *[(f, pl.Int8) for f in flags],
        )
        df = _read(src, "u.item", cols, sep="|", **kw)
        names = pl.Series(ML100K_GENRES)
        genres = pl.concat_list([pl.when(pl.col(f) == 1).then(pl.lit(g)) for f, g in zip(flags, names, strict=True)])
        genres = genres.list.eval(pl.element().filter(pl.element().is_not_null() & ~pl.element().is_in(list(_NOT_GENRES))))
        return df.select(
            "movieId", *split_title(pl.col("title_raw")), genres.alias("genres"), "release_date", "imdb_url"
        )
    if src.format in ("ml-1m", "ml-10m"):
        if not src.has("movies.dat"):
            return None
        cols = _cols(("movieId", pl.Int64), ("title_raw", pl.String), ("genres", pl.String, True))
        # Greedy middle group: a title may contain "::"-free colons; genres follow the last "::".
        df = _read(src, "movies.dat", cols, sep="::", pattern=r"^\s*(\d+)::(.*)::(.*)$", **kw)
    else:
        if not src.has("movies.csv"):
            return None
        cols = _cols(("movieId", pl.Int64), ("title", pl.String), ("genres", pl.String, True))
        df = _read(src, "movies.csv", cols, sep=",", header=True, quoted=True, **kw).rename({"title": "title_raw"})
    return df.select("movieId", *split_title(pl.col("title_raw")), _genre_list().alias("genres"))


def _links(src: Source, on_bad_lines: OnBadLines, skipped: dict[str, int]) -> pl.DataFrame | None:
    if src.format != "csv" or not src.has("links.csv"):
        return None
    cols = _cols(("movieId", pl.Int64), ("imdbId", pl.Int64, True), ("tmdbId", pl.Int64, True))
    return _read(src, "links.csv", cols, sep=",", header=True, quoted=True, on_bad_lines=on_bad_lines, skipped=skipped)


def _tags(src: Source, on_bad_lines: OnBadLines, skipped: dict[str, int]) -> pl.DataFrame | None:
    cols = _cols(("userId", pl.Int64), ("movieId", pl.Int64), ("tag", pl.String, True), ("timestamp", pl.Int64))
    if src.format == "ml-10m" and src.has("tags.dat"):
        return _read(
            src, "tags.dat", cols, sep="::", pattern=r"^\s*(\d+)::(\d+)::(.*)::(\d+)\s*$",
            on_bad_lines=on_bad_lines, skipped=skipped,
        )  # fmt: skip
    if src.format == "csv" and src.has("tags.csv"):
        return _read(
            src, "tags.csv", cols, sep=",", header=True, quoted=True, on_bad_lines=on_bad_lines, skipped=skipped
        )
    return None


def _users(src: Source, on_bad_lines: OnBadLines, skipped: dict[str, int]) -> pl.DataFrame | None:
    kw = {"on_bad_lines": on_bad_lines, "skipped": skipped}
    if src.format == "ml-100k" and src.has("u.user"):
        cols = _cols(
            ("userId", pl.Int64), ("age", pl.Int32), ("gender", pl.String),
            ("occupation", pl.String), ("zip", pl.String, True),
        )  # fmt: skip
        return _read(src, "u.user", cols, sep="|", **kw)
    if src.format == "ml-1m" and src.has("users.dat"):
        cols = _cols(
            ("userId", pl.Int64), ("gender", pl.String), ("age", pl.Int32),
            ("occupation_code", pl.Int32), ("zip", pl.String, True),
        )  # fmt: skip
        df = _read(src, "users.dat", cols, sep="::", **kw)
        occ = pl.Series(ML1M_OCCUPATIONS)
        return df.select(
            "userId",
            "gender",
            "age",
            pl.col("occupation_code").replace_strict(
                list(range(len(occ))), occ.to_list(), default=None, return_dtype=pl.String
            ).alias("occupation"),
            "occupation_code",
            "zip",
        )
    return None


# ---- assembling the Dataset --------------------------------------------------------------
def _index(raw: np.ndarray, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids of ``raw`` ∪ ``extra`` and the int32 index of each ``raw`` value.

    Ids are small non-negative integers in every MovieLens release, so a presence table
    (O(n)) replaces the O(n log n) sort of ``np.unique`` when it is cheap enough.
    """
    raw = np.asarray(raw, dtype=np.int64)
    extra = np.asarray(extra if extra is not None else [], dtype=np.int64)
    both_min = min(raw.min(initial=0), extra.min(initial=0))
    hi = int(max(raw.max(initial=0), extra.max(initial=0)))
    if both_min >= 0 and hi < 4 * (raw.size + extra.size) + 50_000_000:
        present = np.zeros(hi + 1, dtype=bool)
        present[raw] = True
        present[extra] = True
        ids = np.flatnonzero(present).astype(np.int64)
        lut = np.full(hi + 1, -1, dtype=np.int32)
        lut[ids] = np.arange(ids.size, dtype=np.int32)
        return ids, lut[raw]
    ids = np.unique(np.concatenate([raw, extra]))
    return ids, np.searchsorted(ids, raw).astype(np.int32)


def _index_column(ids: np.ndarray, col: str, out: str) -> pl.Expr:
    """Polars expression mapping raw ids in ``col`` to indices (null when unknown)."""
    lookup = IdMap(ids).lookup
    return pl.col(col).map_batches(
        lambda s: pl.Series(lookup(s.to_numpy())).cast(pl.Int32).replace(-1, None),
        return_dtype=pl.Int32,
    ).alias(out)


def build_dataset(
    name: str,
    ratings: pl.DataFrame,
    *,
    movies: pl.DataFrame | None = None,
    links: pl.DataFrame | None = None,
    tags: pl.DataFrame | None = None,
    users: pl.DataFrame | None = None,
    rating_scale: tuple[float, float] = (0.5, 5.0),
    genre_order: tuple[str, ...] | None = None,
    source: dict | None = None,
) -> Dataset:
    """Assemble a `Dataset` from parsed frames (raw ids in ``userId``/``movieId``).

    ``item_ids`` covers every movie of ``movies`` (rated or not) plus any movie only
    seen in ratings; ``user_ids`` covers the ratings' users plus those of ``users``.
    """
    movie_extra = movies.get_column("movieId").to_numpy() if movies is not None else None
    user_extra = users.get_column("userId").to_numpy() if users is not None else None
    item_ids, items = _index(ratings.get_column("movieId").to_numpy(), movie_extra)
    user_ids, user_idx = _index(ratings.get_column("userId").to_numpy(), user_extra)
    n_items = item_ids.size

    items_meta = None
    item_genres = None
    genre_names: tuple[str, ...] = ()
    if movies is not None:
        movies = movies.unique("movieId", keep="first", maintain_order=True)
        base = pl.DataFrame(
            {"item": np.arange(n_items, dtype=np.int32), "movieId": item_ids}
        )
        items_meta = base.join(movies, on="movieId", how="left")
        if links is not None:
            links = links.unique("movieId", keep="first", maintain_order=True)
            items_meta = items_meta.join(links.select("movieId", "imdbId", "tmdbId"), on="movieId", how="left")
        items_meta = items_meta.sort("item")
        items_meta = items_meta.with_columns(pl.col("genres").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        exploded = items_meta.select("item", "genres").explode("genres").drop_nulls("genres")
        present = set(exploded.get_column("genres").unique().to_list())
        if genre_order is not None:
            genre_names = tuple(g for g in genre_order if g in present)
        else:
            genre_names = tuple(sorted(present))
        item_genres = np.zeros((n_items, len(genre_names)), dtype=bool)
        if genre_names:
            codes = (
                exploded.get_column("genres")
                .replace_strict(list(genre_names), list(range(len(genre_names))), return_dtype=pl.Int64)
                .to_numpy()
            )
            item_genres[exploded.get_column("item").to_numpy(), codes] = True

    users_meta = None
    if users is not None:
        users = users.unique("userId", keep="first", maintain_order=True)
        users_meta = (
            pl.DataFrame({"user": np.arange(user_ids.size, dtype=np.int32), "userId": user_ids})
            .join(users, on="userId", how="left")
            .sort("user")
        )

    tags_frame = None
    if tags is not None:
        tags_frame = tags.select(
            _index_column(user_ids, "userId", "user"),
            _index_column(item_ids, "movieId", "item"),
            "userId",
            "movieId",
            "tag",
            "timestamp",
        )

    return Dataset(
        name=name,
        users=user_idx,
        items=items,
        ratings=ratings.get_column("rating").to_numpy(),
        timestamps=ratings.get_column("timestamp").to_numpy(),
        user_ids=IdMap(user_ids),
        item_ids=IdMap(item_ids),
        rating_scale=rating_scale,
        items_meta=items_meta,
        users_meta=users_meta,
        item_genres=item_genres,
        genre_names=genre_names,
        tags=tags_frame,
        source=source or {},
    )


def load_movielens(
    path: str | Path,
    *,
    name: str | None = None,
    on_bad_lines: OnBadLines = "error",
    progress: bool = False,
) -> Dataset:
    """Parse a MovieLens release (folder or zip, any format) into a `Dataset` (no cache).

    ``on_bad_lines="skip"`` drops malformed lines; their count per file is warned about
    and stored in ``Dataset.source["skipped_lines"]``.
    """
    if on_bad_lines not in ("error", "skip"):
        raise DataFormatError(f'on_bad_lines must be "error" or "skip", got {on_bad_lines!r}')
    src = Source(path)
    skipped: dict[str, int] = {}
    try:
        status = None
        if progress:
            from rich.console import Console

            status = Console(stderr=True).status(f"parsing {src.path.name} ({src.format})")
            status.start()
        try:
            ratings = _ratings(src, on_bad_lines, skipped)
            movies = _movies(src, on_bad_lines, skipped)
            links = _links(src, on_bad_lines, skipped)
            tags = _tags(src, on_bad_lines, skipped)
            users = _users(src, on_bad_lines, skipped)
        finally:
            if status is not None:
                status.stop()
    finally:
        src.close()
    if skipped:
        total = sum(skipped.values())
        warnings.warn(
            f"skipped {total} malformed line(s): "
            + ", ".join(f"{k}: {v}" for k, v in skipped.items()),
            stacklevel=2,
        )
    fmt = src.format
    scale = (1.0, 5.0) if fmt in ("ml-100k", "ml-1m") else (0.5, 5.0)
    ds_name = name or _default_name(src.path)
    return build_dataset(
        ds_name,
        ratings,
        movies=movies,
        links=links,
        tags=tags,
        users=users,
        rating_scale=scale,
        genre_order=ML100K_GENRES if fmt == "ml-100k" else None,
        source={
            "name": ds_name,
            "path": str(src.path),
            "format": fmt,
            "root": str(src.root),
            "skipped_lines": skipped,
        },
    )


def _default_name(path: Path) -> str:
    stem = path.name[:-4] if path.name.endswith(".zip") else path.name
    return re.sub(r"\s+", "-", stem) or "movielens"
