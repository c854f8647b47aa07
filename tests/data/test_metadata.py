"""TMDB and IMDb metadata: loaders on files written in the documented formats, joins."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from cinerec.data import load_dataset
from cinerec.data.metadata.imdb import join_imdb, read_imdb, tconst
from cinerec.data.metadata.tmdb import join_tmdb, read_tmdb
from cinerec.data.movielens import load_movielens
from cinerec.errors import DataFormatError, DatasetUnavailable
from tests.data.test_movielens import write_csv_release, write_ml1m

_TMDB_HEADER = (
    "budget,genres,homepage,id,keywords,original_language,original_title,overview,popularity,"
    "production_companies,production_countries,release_date,revenue,runtime,spoken_languages,"
    "status,tagline,title,vote_average,vote_count"
)


def _jl(*names: str, key: str = "id") -> str:
    items = [{key: j if key == "id" else f"x{j}", "name": n} for j, n in enumerate(names)]
    return '"' + json.dumps(items).replace('"', '""') + '"'


def write_tmdb(path: Path, rows: list[tuple[int, str]]) -> Path:
    """Kaggle tmdb_5000_movies.csv layout: JSON-list columns quoted with doubled quotes."""
    lines = [_TMDB_HEADER]
    for tmdb_id, title in rows:
        lines.append(
            ",".join(
                [
                    "30000000",
                    _jl("Animation", "Comedy"),
                    "http://example.org/",
                    str(tmdb_id),
                    _jl("toy", "friendship"),
                    "en",
                    f'"{title}"',
                    '"A story, with commas."',
                    "21.94",
                    _jl("Pixar"),
                    _jl("United States of America", key="iso_3166_1"),
                    "1995-10-30",
                    "373554033",
                    "81.0",
                    _jl("English", key="iso_639_1"),
                    "Released",
                    "",
                    f'"{title}"',
                    "7.7",
                    "5415",
                ]
            )
        )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))


# ---- TMDB --------------------------------------------------------------------------------
def test_read_tmdb_types(tmp_path):
    df = read_tmdb(write_tmdb(tmp_path / "t.csv", [(862, "Toy Story"), (9087, "The American President")]))
    assert df.schema["id"] == pl.Int64 and df.schema["popularity"] == pl.Float64
    assert df.schema["release_date"] == pl.Date
    assert df.get_column("genres").to_list()[0] == ["Animation", "Comedy"]
    assert df.get_column("production_countries").to_list()[0] == ["United States of America"]
    assert df.get_column("spoken_languages").to_list()[0] == ["English"]
    assert df.get_column("overview").to_list()[0] == "A story, with commas."


def test_join_tmdb(tmp_path):
    ds = load_movielens(write_csv_release(tmp_path))
    # 862 and 629 are in links; 555 is not; 862 twice (the Kaggle file has duplicates)
    tm = read_tmdb(write_tmdb(tmp_path / "t.csv", [(862, "Toy Story"), (629, "Suspects"), (555, "X"), (862, "Dup")]))
    frame, report = join_tmdb(ds, tm)
    assert frame.height == ds.n_items
    assert frame.get_column("item").to_list() == list(range(ds.n_items))
    assert (report.matched, report.total, report.with_key) == (2, 5, 4)
    assert report.match_rate == pytest.approx(2 / 5)
    assert frame.get_column("tmdb_title").to_list()[0] == "Toy Story"
    assert frame.get_column("tmdb_genres").to_list()[2] == ["Animation", "Comedy"]


def test_tmdb_needs_links(tmp_path):
    ds = load_movielens(write_ml1m(tmp_path))
    with pytest.raises(DataFormatError, match="links"):
        join_tmdb(ds, read_tmdb(write_tmdb(tmp_path / "t.csv", [(1, "a")])))


def test_tmdb_bad_json(tmp_path):
    p = write_tmdb(tmp_path / "t.csv", [(862, "Toy Story")])
    p.write_text(p.read_text().replace('""name""', '""name', 1))
    with pytest.raises(DataFormatError, match="genres"):
        read_tmdb(p)


def test_tmdb_wrong_file(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DataFormatError, match="tmdb_5000_movies"):
        read_tmdb(p)


@pytest.mark.realdata
def test_real_tmdb_join(data_home):
    ds = load_dataset("ml-latest-small", data_home, progress=False)
    tm = read_tmdb(data_home / "tmdb_5000_movies.csv")
    assert tm.height == 3000
    frame, report = join_tmdb(ds, tm)
    assert frame.height == 9_742
    assert 2_000 < report.matched <= 3_000


# ---- IMDb --------------------------------------------------------------------------------
def _tsv_gz(path: Path, header: str, rows: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(("\n".join([header, *rows]) + "\n").encode()))
    return path


def write_imdb(folder: Path) -> Path:
    """Small files in the documented IMDb layout (tab-separated, \\N null, no quoting)."""
    _tsv_gz(
        folder / "title.basics.tsv.gz",
        "tconst\ttitleType\tprimaryTitle\toriginalTitle\tisAdult\tstartYear\tendYear\truntimeMinutes\tgenres",
        [
            "tt0114709\tmovie\tToy Story\tToy Story\t0\t1995\t\\N\t81\tAdventure,Animation,Comedy",
            'tt0112346\tmovie\tThe "American" President\tThe American President\t0\t1995\t\\N\t114\tComedy,Drama',
            "tt9999999\tmovie\tUnrelated\tUnrelated\t0\t2020\t\\N\t\\N\t\\N",
        ],
    )
    _tsv_gz(
        folder / "title.ratings.tsv.gz",
        "tconst\taverageRating\tnumVotes",
        ["tt0114709\t8.3\t1083563", "tt0112346\t6.8\t60000", "tt9999999\t5.0\t10"],
    )
    _tsv_gz(
        folder / "title.crew.tsv.gz",
        "tconst\tdirectors\twriters",
        ["tt0114709\tnm0005124\tnm0005124,nm0004056", "tt0112346\tnm0001661\t\\N"],
    )
    _tsv_gz(
        folder / "name.basics.tsv.gz",
        "nconst\tprimaryName\tbirthYear\tdeathYear\tprimaryProfession\tknownForTitles",
        [
            "nm0005124\tJohn Lasseter\t1957\t\\N\twriter,director\ttt0114709",
            "nm0001661\tRob Reiner\t1947\t\\N\tactor,director\ttt0112346",
        ],
    )
    _tsv_gz(
        folder / "title.principals.tsv.gz",
        "tconst\tordering\tnconst\tcategory\tjob\tcharacters",
        ['tt0114709\t1\tnm0000158\tactor\t\\N\t["Woody"]', "tt0112346\t1\tnm0000134\tactor\t\\N\t\\N"],
    )
    return folder


def test_tconst_format():
    out = pl.DataFrame({"x": [114709, 1234567, 12345678, None]}).select(tconst(pl.col("x")))
    assert out.to_series().to_list() == ["tt0114709", "tt1234567", "tt12345678", None]


@pytest.mark.parametrize("block", [16, 1 << 20])
def test_read_imdb_streams_and_filters(tmp_path, block):
    folder = write_imdb(tmp_path / "imdb")
    df = read_imdb(folder / "title.basics.tsv.gz", keys=["tt0114709", "tt0112346"], block_bytes=block)
    assert sorted(df.get_column("tconst").to_list()) == ["tt0112346", "tt0114709"]
    row = df.filter(pl.col("tconst") == "tt0112346").row(0, named=True)
    assert row["primaryTitle"] == 'The "American" President'  # quotes are data, not quoting
    assert row["startYear"] == 1995 and row["endYear"] is None
    assert row["genres"] == ["Comedy", "Drama"]
    everything = read_imdb(folder / "title.basics.tsv.gz", block_bytes=block)
    assert everything.height == 3 and everything.get_column("runtimeMinutes").to_list()[2] is None


def test_read_imdb_plain_tsv_is_scanned(tmp_path):
    folder = write_imdb(tmp_path / "imdb")
    plain = tmp_path / "title.principals.tsv"
    plain.write_bytes(gzip.decompress((folder / "title.principals.tsv.gz").read_bytes()))
    df = read_imdb(plain, keys=["tt0114709"])
    assert df.height == 1 and df.row(0, named=True)["characters"] == '["Woody"]'
    assert df.schema["ordering"] == pl.Int32


def test_read_imdb_wrong_header(tmp_path):
    p = _tsv_gz(tmp_path / "title.ratings.tsv.gz", "id\trating\tvotes", ["tt1\t1\t1"])
    with pytest.raises(DataFormatError, match="header"):
        read_imdb(p)


def test_read_imdb_truncated_gzip(tmp_path):
    folder = write_imdb(tmp_path / "imdb")
    p = folder / "title.basics.tsv.gz"
    p.write_bytes(p.read_bytes()[:-20])
    with pytest.raises(DataFormatError, match="gzip"):
        read_imdb(p)


def test_join_imdb(tmp_path):
    ds = load_movielens(write_csv_release(tmp_path))
    frame, report = join_imdb(ds, write_imdb(tmp_path / "imdb"))
    assert frame.height == ds.n_items
    assert (report.matched, report.total, report.with_key) == (2, 5, 5)
    toy = frame.row(0, named=True)
    assert toy["imdb_tconst"] == "tt0114709"
    assert toy["imdb_averageRating"] == pytest.approx(8.3) and toy["imdb_numVotes"] == 1083563
    assert toy["imdb_director_names"] == ["John Lasseter"]
    assert toy["imdb_writers"] == ["nm0005124", "nm0004056"]
    assert frame.row(3, named=True)["imdb_primaryTitle"] is None


def test_join_imdb_missing_files(tmp_path):
    ds = load_movielens(write_csv_release(tmp_path))
    with pytest.raises(DatasetUnavailable, match="title.basics"):
        join_imdb(ds, tmp_path / "nothing")
