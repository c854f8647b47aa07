"""IMDb non-commercial data sets (https://developer.imdb.com/non-commercial-datasets/).

Files are gzip-compressed, tab-separated, with a header row, ``\\N`` for null, no
quoting (titles may contain quote characters) and comma-separated array fields. The
real files are several GB decompressed, so they are never read whole: a gzip file is
decompressed in blocks of whole lines, each block is parsed with polars and filtered
to the wanted keys (``tconst`` or ``nconst``) at once; a plain ``.tsv`` is scanned
lazily by polars with the filter pushed down. Memory stays bounded by the block size
plus the rows kept.

MovieLens links hold ``imdbId`` as an integer; IMDb's key is ``tt`` plus at least seven
digits (``tt%07d``).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from cinerec.data.dataset import Dataset
from cinerec.data.metadata.tmdb import JoinReport
from cinerec.data.store import IMDB_FILES, data_home
from cinerec.errors import DataFormatError, DatasetUnavailable

#: Documented columns and types of each file.
IMDB_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "title.basics": {
        "tconst": pl.String(), "titleType": pl.String(), "primaryTitle": pl.String(),
        "originalTitle": pl.String(), "isAdult": pl.Int8(), "startYear": pl.Int32(),
        "endYear": pl.Int32(), "runtimeMinutes": pl.Int32(), "genres": pl.String(),
    },
    "title.ratings": {"tconst": pl.String(), "averageRating": pl.Float64(), "numVotes": pl.Int64()},
    "title.crew": {"tconst": pl.String(), "directors": pl.String(), "writers": pl.String()},
    "title.principals": {
        "tconst": pl.String(), "ordering": pl.Int32(), "nconst": pl.String(),
        "category": pl.String(), "job": pl.String(), "characters": pl.String(),
    },
    "name.basics": {
        "nconst": pl.String(), "primaryName": pl.String(), "birthYear": pl.Int32(),
        "deathYear": pl.Int32(), "primaryProfession": pl.String(), "knownForTitles": pl.String(),
    },
}  # fmt: skip

#: Comma-separated array columns, parsed to list[str].
_ARRAY_COLUMNS = frozenset({"genres", "directors", "writers", "primaryProfession", "knownForTitles"})

_BLOCK = 64 << 20


def imdb_name(path: str | Path) -> str:
    """``.../title.basics.tsv.gz`` -> ``title.basics``."""
    n = Path(path).name
    for suffix in (".gz", ".tsv"):
        n = n.removesuffix(suffix)
    return n


def tconst(imdb_ids: pl.Expr) -> pl.Expr:
    """MovieLens integer imdbId -> IMDb key ``tt%07d`` (null stays null)."""
    return pl.lit("tt") + imdb_ids.cast(pl.String).str.zfill(7)


def _parse_block(data: bytes, header: list[str]) -> pl.DataFrame:
    return pl.read_csv(
        data,
        has_header=False,
        new_columns=header,
        schema={c: pl.String for c in header},
        separator="\t",
        quote_char=None,
        null_values=["\\N"],
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )


def _check_header(path: Path, name: str, header: list[str]) -> None:
    want = list(IMDB_SCHEMAS[name]) if name in IMDB_SCHEMAS else None
    if want is not None and header != want:
        raise DataFormatError(
            f"{path} line 1: expected the IMDb {name} header {want}, got {header}"
        )


def read_imdb(
    path: str | Path,
    *,
    keys: Iterable[str] | None = None,
    key_column: str | None = None,
    block_bytes: int = _BLOCK,
) -> pl.DataFrame:
    """Read one IMDb TSV (``.tsv.gz`` or ``.tsv``), keeping rows whose key is in ``keys``.

    ``key_column`` defaults to the file's first column (``tconst``/``nconst``). Columns
    are typed as documented; array columns become ``list[str]``.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetUnavailable(
            f"IMDb file {path} does not exist; run `cinerec data fetch {imdb_name(path)}` or "
            f"download it from https://datasets.imdbws.com/{imdb_name(path)}.tsv.gz"
        )
    name = imdb_name(path)
    wanted = pl.Series(sorted(set(keys)), dtype=pl.String) if keys is not None else None
    if path.suffix == ".gz":
        frames: list[pl.DataFrame] = []
        try:
            with gzip.open(path, "rb") as f:
                header = f.readline().decode("utf-8").rstrip("\r\n").split("\t")
                _check_header(path, name, header)
                key = key_column or header[0]
                rest = b""
                while True:
                    block = f.read(block_bytes)
                    if not block and not rest:
                        break
                    data = rest + block
                    cut = data.rfind(b"\n") + 1 if block else len(data)
                    data, rest = data[:cut], data[cut:]
                    if not data:
                        continue
                    df = _parse_block(data, header)
                    if wanted is not None:
                        df = df.filter(pl.col(key).is_in(wanted.implode()))
                    frames.append(df)
                    if not block:
                        break
        except (OSError, EOFError) as e:
            raise DataFormatError(f"{path} is not a complete gzip file ({e}); download it again") from e
        out = pl.concat(frames) if frames else pl.DataFrame(schema={c: pl.String for c in header})
    else:
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\r\n").split("\t")
        _check_header(path, name, header)
        key = key_column or header[0]
        lf = pl.scan_csv(
            path,
            separator="\t",
            quote_char=None,
            null_values=["\\N"],
            schema={c: pl.String for c in header},
            truncate_ragged_lines=True,
        )
        if wanted is not None:
            lf = lf.filter(pl.col(key).is_in(wanted.implode()))
        out = lf.collect()
    return _type(out, IMDB_SCHEMAS.get(name, {}))


def _type(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    exprs = []
    for c in df.columns:
        if c in _ARRAY_COLUMNS:
            exprs.append(pl.col(c).str.split(","))
        elif c in schema and schema[c] != pl.String():
            exprs.append(pl.col(c).cast(schema[c], strict=False))
    return df.with_columns(exprs) if exprs else df


def find_imdb_file(name: str, directory: str | Path | None = None) -> Path | None:
    """``NAME.tsv.gz`` or ``NAME.tsv`` in ``directory`` (default ``<data home>/imdb``)."""
    d = Path(directory) if directory is not None else data_home() / "imdb"
    for suffix in (".tsv.gz", ".tsv"):
        p = d / f"{name}{suffix}"
        if p.is_file():
            return p
    return None


def join_imdb(
    dataset: Dataset,
    directory: str | Path | None = None,
    *,
    with_names: bool = True,
) -> tuple[pl.DataFrame, JoinReport]:
    """Left-join IMDb title data onto ``dataset.items_meta`` through links' ``imdbId``.

    Reads ``title.basics`` (required), ``title.ratings``, ``title.crew`` and, with
    ``with_names``, ``name.basics`` for director names, whichever exist in
    ``directory`` (default ``<data home>/imdb``). New columns are prefixed ``imdb_``.
    """
    items = dataset.items_meta
    if items is None or "imdbId" not in items.columns:
        raise DataFormatError(
            f"{dataset.name} has no imdbId links (links.csv); IMDb can only join to the CSV "
            "releases (ml-20m and later, ml-latest, ml-latest-small)"
        )
    basics_path = find_imdb_file("title.basics", directory)
    if basics_path is None:
        where = Path(directory) if directory is not None else data_home() / "imdb"
        raise DatasetUnavailable(
            f"no title.basics.tsv.gz in {where}; run `cinerec data fetch title.basics` or save "
            f"https://datasets.imdbws.com/title.basics.tsv.gz there"
        )
    left = items.with_columns(tconst(pl.col("imdbId")).alias("imdb_tconst"))
    wanted = left.get_column("imdb_tconst").drop_nulls().unique().to_list()
    basics = read_imdb(basics_path, keys=wanted).with_columns(pl.lit(True).alias("_imdb_hit"))
    right = basics
    for name in ("title.ratings", "title.crew"):
        p = find_imdb_file(name, directory)
        if p is not None:
            right = right.join(read_imdb(p, keys=wanted), on="tconst", how="left")
    if with_names and "directors" in right.columns:
        p = find_imdb_file("name.basics", directory)
        if p is not None:
            nconsts = right.get_column("directors").explode().drop_nulls().unique().to_list()
            names = read_imdb(p, keys=nconsts).select("nconst", "primaryName")
            lookup = dict(zip(names.get_column("nconst"), names.get_column("primaryName"), strict=True))
            right = right.with_columns(
                pl.col("directors")
                .list.eval(pl.element().replace_strict(lookup, default=None, return_dtype=pl.String))
                .alias("director_names")
            )
    right = right.unique("tconst", keep="first", maintain_order=True)
    right = right.rename({c: f"imdb_{c}" for c in right.columns if c not in ("tconst", "_imdb_hit")})
    joined = left.join(right, left_on="imdb_tconst", right_on="tconst", how="left").sort("item")
    report = JoinReport(
        source="imdb",
        matched=int(joined.get_column("_imdb_hit").fill_null(False).sum()),
        total=items.height,
        with_key=int(items.get_column("imdbId").is_not_null().sum()),
    )
    return joined.drop("_imdb_hit"), report


__all__ = ["IMDB_FILES", "IMDB_SCHEMAS", "find_imdb_file", "imdb_name", "join_imdb", "read_imdb", "tconst"]
