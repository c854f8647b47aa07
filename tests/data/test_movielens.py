"""MovieLens loaders on tiny files written in each release's documented format."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import cinerec.data as cdata
from cinerec.data import load_dataset, read_ml100k_ratings
from cinerec.data.movielens import ML100K_GENRES, load_movielens, split_title
from cinerec.errors import DataFormatError, DatasetUnavailable

# ---- writers for every format (layouts per the GroupLens READMEs) ------------------------


def write_ml100k(root: Path) -> Path:
    """ml-100k: u.data (tab), u.item (pipe, latin-1, 19 flags), u.user, u.genre, u1.base."""
    d = root / "ml-100k"
    d.mkdir(parents=True)
    rows = [(1, 1, 5, 874965758), (1, 2, 3, 876893171), (2, 1, 4, 888550871), (3, 3, 1, 889237269)]
    (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    (d / "u1.base").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows[:2]))

    def flags(*names: str) -> str:
        return "|".join("1" if g in names else "0" for g in ML100K_GENRES)

    toy = flags("Animation", "Children's", "Comedy")
    items = [
        f"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|{toy}",
        f"2|Misérables, Les (1995)|01-Jan-1995||http://us.imdb.com/M/x|{flags('Drama')}",
        f"3|Four Rooms (1995) |01-Jan-1995||http://us.imdb.com/M/y|{flags('Thriller')}",
        f"267|unknown||||{flags('unknown')}",  # the real file's no-title row
    ]
    (d / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    users = ["1|24|M|technician|85711", "2|53|F|other|94043", "3|23|M|writer|32067", "4|24|M|technician|43537"]
    (d / "u.user").write_text("\n".join(users) + "\n")
    (d / "u.genre").write_text("".join(f"{g}|{j}\n" for j, g in enumerate(ML100K_GENRES)) + "\n")
    return d


def write_ml1m(root: Path) -> Path:
    """ml-1m: '::'-separated ratings.dat, movies.dat (latin-1), users.dat."""
    d = root / "ml-1m"
    d.mkdir(parents=True)
    (d / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    movies = [
        "1::Toy Story (1995)::Animation|Children's|Comedy",
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama",
        "3952::Contender, The (2000)::Drama|Thriller",  # unrated
        "2000::Année: the story (1999)::Drama",  # latin-1 + colon in title
    ]
    (d / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    (d / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return d


def write_ml10m(root: Path) -> Path:
    """ml-10m (folder ml-10M100K): half-star ratings.dat, movies.dat, tags.dat."""
    d = root / "ml-10M100K"
    d.mkdir(parents=True)
    (d / "ratings.dat").write_text("1::122::5::838985046\n1::185::4.5::838983525\n7::122::0.5::1049764563\n")
    (d / "movies.dat").write_text(
        "122::Boomerang (1992)::Comedy|Romance\n185::Net, The (1995)::Action|Crime|Thriller\n"
        "999::Unrated Thing (2001)::(no genres listed)\n"
    )
    (d / "tags.dat").write_text("15::4973::excellent!::1215184630\n7::122::funny, dry::1188263867\n")
    return d


def write_csv_release(root: Path, name: str = "ml-tiny") -> Path:
    """A CSV release (ml-20m+ / ml-latest layout): headers, quoted titles, links, tags."""
    d = root / name
    d.mkdir(parents=True)
    (d / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
        "5,1,0.5,847434962\n5,50,3.0,847435238\n9,3,5.0,1106635946\n"
    )
    (d / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '3,"American President, The (1995)",Comedy|Drama|Romance\n'
        '50,"Usual Suspects, The (1995) ",Crime|Mystery|Thriller\n'
        "40697,Babylon 5,Sci-Fi\n"  # no year, never rated
        '193609,"Andrew Dice Clay: Dice Rules (1991)",(no genres listed)\n'
    )
    (d / "tags.csv").write_text(
        'userId,movieId,tag,timestamp\n2,3,"funny, smart",1445714994\n5,50,twist ending,1445714996\n'
    )
    (d / "links.csv").write_text(
        "movieId,imdbId,tmdbId\n1,0114709,862\n3,0112346,9087\n50,0114814,629\n40697,0105946,\n"
        "193609,0101726,37891\n"
    )
    (d / "genome-tags.csv").write_text("tagId,tag\n1,007\n")  # ignored
    return d


def zip_folder(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.iterdir()):
            z.write(p, f"{folder.name}/{p.name}")
    return dest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))


# ---- titles ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("Father of the Bride Part II (1995) ", "Father of the Bride Part II", 1995),
        ("Babylon 5", "Babylon 5", None),
        ("Fawlty Towers (1975-1979)", "Fawlty Towers", 1975),
        ("2001: A Space Odyssey (1968)", "2001: A Space Odyssey", 1968),
        ("Big (Big) (1988)", "Big (Big)", 1988),
    ],
)
def test_split_title(raw, title, year):
    out = pl.DataFrame({"t": [raw]}).select(split_title(pl.col("t")))
    assert out.row(0) == (title, year)


# ---- formats -----------------------------------------------------------------------------
def test_csv_release(tmp_path):
    ds = load_movielens(write_csv_release(tmp_path))
    assert ds.source["format"] == "csv"
    assert (ds.n_ratings, ds.n_active_users, ds.n_rated_items, ds.n_items) == (5, 3, 3, 5)
    assert ds.rating_scale == (0.5, 5.0)
    assert ds.item_ids.ids.tolist() == [1, 3, 50, 40697, 193609]
    meta = ds.items_meta
    assert meta.get_column("item").to_list() == list(range(5))
    assert meta.get_column("title").to_list()[:4] == [
        "Toy Story", "American President, The", "Usual Suspects, The", "Babylon 5",
    ]  # fmt: skip
    assert meta.get_column("year").to_list()[3] is None
    assert meta.get_column("imdbId").to_list()[0] == 114709
    assert meta.get_column("tmdbId").to_list()[3] is None
    assert "(no genres listed)" not in ds.genre_names
    assert meta.get_column("genres").to_list()[4] == []
    g = {name: j for j, name in enumerate(ds.genre_names)}
    assert ds.item_genres.shape == (5, len(ds.genre_names))
    assert ds.item_genres[0, g["Animation"]] and not ds.item_genres[1, g["Animation"]]
    assert ds.item_genres[4].sum() == 0
    # every rating row maps back to its raw ids
    assert ds.user_ids.raw(ds.users).tolist() == [1, 1, 5, 5, 9]
    assert ds.item_ids.raw(ds.items).tolist() == [1, 3, 1, 50, 3]
    assert ds.ratings.tolist() == [4.0, 4.5, 0.5, 3.0, 5.0]
    assert ds.tags.get_column("tag").to_list() == ["funny, smart", "twist ending"]
    # user 2 tagged but never rated: no user index, raw id kept
    assert ds.tags.get_column("user").to_list() == [None, 1]
    assert ds.tags.get_column("item").to_list() == [1, 2]


def test_ml100k(tmp_path):
    ds = load_movielens(write_ml100k(tmp_path))
    assert ds.source["format"] == "ml-100k"
    assert ds.rating_scale == (1.0, 5.0)
    assert ds.n_items == 4 and ds.n_rated_items == 3
    assert ds.n_users == 4  # u.user lists a user without ratings
    meta = ds.items_meta
    assert meta.get_column("title").to_list() == ["Toy Story", "Misérables, Les", "Four Rooms", "unknown"]
    assert meta.get_column("year").to_list() == [1995, 1995, 1995, None]
    assert "unknown" not in ds.genre_names
    assert ds.genre_names == tuple(g for g in ML100K_GENRES if g in ds.genre_names)  # file order
    assert meta.get_column("genres").to_list()[0] == ["Animation", "Children's", "Comedy"]
    assert ds.item_genres[3].sum() == 0
    um = ds.users_meta
    assert um.columns[:2] == ["user", "userId"]
    assert um.get_column("occupation").to_list() == ["technician", "other", "writer", "technician"]
    assert um.get_column("age").to_list() == [24, 53, 23, 24]


def test_read_ml100k_ratings(tmp_path):
    d = write_ml100k(tmp_path)
    full = read_ml100k_ratings(d / "u.data")
    assert full.columns == ["userId", "movieId", "rating", "timestamp"]
    assert full.height == 4 and full.get_column("rating").to_list() == [5, 3, 4, 1]
    fold = read_ml100k_ratings(d, member="u1.base")
    assert fold.height == 2
    zipped = read_ml100k_ratings(zip_folder(d, tmp_path / "ml-100k.zip"), member="u1.base")
    assert zipped.equals(fold)


def test_ml1m(tmp_path):
    ds = load_movielens(write_ml1m(tmp_path))
    assert ds.source["format"] == "ml-1m"
    assert ds.rating_scale == (1.0, 5.0)
    assert ds.n_items == 5 and ds.n_rated_items == 2
    titles = dict(zip(ds.items_meta["movieId"], ds.items_meta["title"], strict=True))
    assert titles[2000] == "Année: the story"
    assert titles[3952] == "Contender, The"
    um = ds.users_meta
    assert um.get_column("gender").to_list() == ["F", "M"]
    assert um.get_column("occupation").to_list() == ["K-12 student", "self-employed"]
    assert ds.tags is None


def test_ml10m(tmp_path):
    ds = load_movielens(write_ml10m(tmp_path))
    assert ds.source["format"] == "ml-10m"
    assert ds.rating_scale == (0.5, 5.0)
    assert sorted(ds.ratings.tolist()) == [0.5, 4.5, 5.0]
    assert ds.n_items == 3  # movie 4973 is only tagged: not in the catalogue
    assert ds.tags.get_column("item").to_list()[0] is None
    assert ds.tags.get_column("tag").to_list() == ["excellent!", "funny, dry"]
    assert ds.tags.get_column("item").to_list()[1] == ds.item_ids.index(122)
    assert ds.items_meta.filter(pl.col("movieId") == 999).get_column("genres").to_list() == [[]]


def test_zip_and_folder_agree(tmp_path):
    folder = write_csv_release(tmp_path)
    z = zip_folder(folder, tmp_path / "ml-tiny.zip")
    a, b = load_movielens(folder), load_movielens(z)
    assert a.fingerprint == b.fingerprint
    assert a.items_meta.equals(b.items_meta)
    assert b.source["root"] == str(z)


def test_not_movielens(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("hello")
    with pytest.raises(DataFormatError, match="ratings"):
        load_movielens(tmp_path / "x")


# ---- malformed input ---------------------------------------------------------------------
def _break(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text().splitlines()
    if line_no > len(lines):
        lines.append(text)
    else:
        lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("writer", "file", "bad"),
    [
        (write_csv_release, "ratings.csv", "1,abc,4.0,964982703"),
        (write_csv_release, "ratings.csv", "1,3,4.0"),
        (write_csv_release, "ratings.csv", "1,3,4.0,5,6"),
        (write_ml1m, "ratings.dat", "1::1193::five::978300760"),
        (write_ml100k, "u.data", "1\t2"),
        (write_csv_release, "movies.csv", "x,Bad (1999),Drama"),
        (write_ml10m, "tags.dat", "garbage line"),
    ],
)
def test_bad_line_named(tmp_path, capsys, writer, file, bad):
    d = writer(tmp_path)
    _break(d / file, 3, bad)
    with pytest.raises(DataFormatError) as e:
        load_movielens(d)
    assert f"{file} line 3" in str(e.value)
    capsys.readouterr()
    ds = load_movielens(d, on_bad_lines="skip")
    assert "skipped 1 malformed" in capsys.readouterr().err
    assert list(ds.source["skipped_lines"].values()) == [1]


def test_skip_keeps_good_rows(tmp_path):
    d = write_csv_release(tmp_path)
    _break(d / "ratings.csv", 2, "oops")
    ds = load_movielens(d, on_bad_lines="skip")
    assert ds.n_ratings == 4
    assert ds.ratings.tolist() == [4.5, 0.5, 3.0, 5.0]


def test_wrong_header(tmp_path):
    d = write_csv_release(tmp_path)
    _break(d / "ratings.csv", 1, "user,item,rating,ts")
    with pytest.raises(DataFormatError, match="ratings.csv line 1"):
        load_movielens(d)


def test_bad_on_bad_lines_value(tmp_path):
    with pytest.raises(DataFormatError, match="on_bad_lines"):
        load_dataset(str(write_csv_release(tmp_path)), on_bad_lines="ignore")


# ---- load_dataset and the cache ----------------------------------------------------------
def test_load_by_name_from_data_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    zip_folder(write_csv_release(tmp_path / "src", "ml-latest-small"), home / "ml-latest-small.zip")
    ds = load_dataset("ml-latest-small", home, progress=False)
    assert ds.name == "ml-latest-small" and ds.n_ratings == 5
    src = ds.source
    assert src["format"] == "csv" and src["root"] == str(home / "ml-latest-small.zip")
    assert len(src["fingerprint"]) == 24


def test_missing_release_says_how_to_fetch(tmp_path):
    with pytest.raises(DatasetUnavailable) as e:
        load_dataset("ml-25m", tmp_path)
    msg = str(e.value)
    assert "cinerec data fetch ml-25m" in msg and "files.grouplens.org" in msg
    assert str(tmp_path / "ml-25m.zip") in msg


def test_cache_hit_skips_parsing(tmp_path, monkeypatch):
    folder = write_csv_release(tmp_path)
    calls = []
    real = cdata.load_movielens

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(cdata, "load_movielens", counting)
    first = load_dataset(str(folder), progress=False)
    second = load_dataset(str(folder), progress=False)
    assert len(calls) == 1
    assert second.fingerprint == first.fingerprint
    assert second.items_meta.equals(first.items_meta)
    assert second.tags.equals(first.tags)
    assert np.array_equal(second.item_genres, first.item_genres)
    assert second.genre_names == first.genre_names and second.rating_scale == first.rating_scale
    assert second.source["fingerprint"] == first.source["fingerprint"]
    # cache=False always parses
    load_dataset(str(folder), cache=False, progress=False)
    assert len(calls) == 2
    # a changed source is a different entry: parsed again, with the new content
    with open(folder / "ratings.csv", "a") as f:
        f.write("9,1,2.0,1106635947\n")
    st = (folder / "ratings.csv").stat()
    os.utime(folder / "ratings.csv", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = load_dataset(str(folder), progress=False)
    assert len(calls) == 3 and third.n_ratings == first.n_ratings + 1
    entries = [p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]
    assert len(entries) == 2


def test_cache_is_keyed_by_bad_line_mode(tmp_path):
    d = write_csv_release(tmp_path)
    _break(d / "ratings.csv", 2, "oops")
    load_dataset(str(d), on_bad_lines="skip", progress=False)
    with pytest.raises(DataFormatError):  # a cached "skip" result must not hide the error
        load_dataset(str(d), progress=False)


def test_corrupt_cache_entry_is_reparsed(tmp_path):
    folder = write_csv_release(tmp_path)
    load_dataset(str(folder), progress=False)
    (entry,) = [p for p in (tmp_path / "cache").iterdir()]
    (entry / "ratings.npy").write_bytes(b"junk")
    ds = load_dataset(str(folder), progress=False)
    assert ds.n_ratings == 5


@pytest.mark.realdata
def test_real_ml_latest_small(data_home):
    ds = load_dataset("ml-latest-small", data_home, progress=False)
    assert (ds.n_ratings, ds.n_active_users, ds.n_rated_items, ds.n_items) == (100_836, 610, 9_724, 9_742)
    assert ds.rating_scale == (0.5, 5.0)
    assert ds.items_meta.height == 9_742
    assert ds.tags.height == 3_683
    assert ds.items_meta.get_column("tmdbId").null_count() < 20
    assert ds.item_genres.any(axis=1).sum() > 9_600
