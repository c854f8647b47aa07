"""The data layer under hostile input, on real files: bad values, duplicates, bad bytes,
damaged caches, corrupt or oversized zips, and the invariants every Dataset keeps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import cinerec.data as cdata
from cinerec.data import ArchiveLimits, Dataset, IdMap, check_invariants, load_dataset
from cinerec.data import cache as dcache
from cinerec.data.movielens import load_movielens
from cinerec.errors import ConfigError, DataFormatError
from tests.data.test_movielens import write_csv_release, write_ml1m, write_ml100k, zip_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))


def _set_line(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text(encoding="latin-1").splitlines()
    lines[line_no - 1] = text
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))


def _entries(tmp_path: Path) -> list[Path]:
    root = tmp_path / "cache"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []


# ---- 1. bad rating values ----------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1.0", "0.0", "5.5", "1e9"])
def test_bad_rating_named_with_file_line_and_value(tmp_path, value):
    d = write_csv_release(tmp_path)
    _set_line(d / "ratings.csv", 3, f"1,3,{value},964981247")
    with pytest.raises(DataFormatError) as e:
        load_movielens(d)
    msg = str(e.value)
    assert "ratings.csv line 3" in msg and "rating" in msg and value.lower() in msg.lower()
    assert 'on_bad_lines="skip"' in msg


@pytest.mark.parametrize(("writer", "file", "bad"), [
    (write_ml1m, "ratings.dat", "1::661::0::978302109"),  # ml-1m is 1-5: 0 is off the scale
    (write_ml1m, "ratings.dat", "1::661::6::978302109"),
    (write_ml100k, "u.data", "1\t2\t0\t876893171"),
    (write_csv_release, "ratings.csv", "1,3,4.0,-5"),  # negative timestamp
])  # fmt: skip
def test_bad_values_per_release_scale(tmp_path, writer, file, bad):
    d = writer(tmp_path)
    _set_line(d / file, 2 if file != "ratings.csv" else 3, bad)
    with pytest.raises(DataFormatError, match=rf"{file} line \d"):
        load_movielens(d)


def test_bad_value_in_zip_is_named_too(tmp_path):
    d = write_csv_release(tmp_path)
    _set_line(d / "ratings.csv", 4, "5,1,nan,847434962")
    z = zip_folder(d, tmp_path / "ml-tiny.zip")
    with pytest.raises(DataFormatError, match=r"ml-tiny.zip:ml-tiny/ratings.csv line 4"):
        load_movielens(z)


def test_unparsable_field_names_field_and_value(tmp_path):
    d = write_csv_release(tmp_path)
    _set_line(d / "ratings.csv", 2, "1,x7,4.0,964982703")
    with pytest.raises(DataFormatError, match=r"line 2: field movieId = 'x7' is not an integer"):
        load_movielens(d)


def test_skip_drops_bad_values_and_reports(tmp_path, capsys):
    d = write_csv_release(tmp_path)
    _set_line(d / "ratings.csv", 2, "1,1,nan,964982703")
    _set_line(d / "ratings.csv", 4, "5,1,7.5,847434962")
    capsys.readouterr()
    ds = load_dataset(str(d), on_bad_lines="skip", progress=False)
    assert ds.n_ratings == 3 and np.isfinite(ds.ratings).all() and ds.ratings.max() <= 5.0
    label = str(d / "ratings.csv")
    assert ds.source["skipped_lines"] == {label: 2}
    assert ds.source["load_report"]["skipped_lines"] == {label: 2}
    assert "skipped 2 malformed line(s)" in capsys.readouterr().err
    # the cached result says so again
    again = load_dataset(str(d), on_bad_lines="skip", progress=False)
    assert again.source["skipped_lines"] == {label: 2}
    assert "skipped 2" in capsys.readouterr().err


# ---- 2. duplicate (user, movie) rows ---------------------------------------------------------
def _dup_release(tmp_path: Path) -> Path:
    d = write_csv_release(tmp_path)
    (d / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,1,2.0,300\n"  # newest of the pair (1, 1)
        "1,3,4.5,100\n"
        "1,1,4.0,200\n"
        "5,50,1.0,500\n"
        "5,50,3.0,500\n"  # tie on time: the later line wins
        "9,3,5.0,100\n"
    )
    return d


def test_duplicates_latest_is_default(tmp_path, capsys):
    ds = load_movielens(_dup_release(tmp_path))
    pairs = {
        (int(ds.user_ids.raw(u)), int(ds.item_ids.raw(i))): (float(r), int(t))
        for u, i, r, t in zip(ds.users, ds.items, ds.ratings, ds.timestamps, strict=True)
    }
    assert ds.n_ratings == 4
    assert pairs[(1, 1)] == (2.0, 300) and pairs[(5, 50)] == (3.0, 500)
    assert ds.source["load_report"]["duplicates_merged"] == 2
    assert "merged 2 duplicate" in capsys.readouterr().err
    # kept rows stay in file order, and a sparse matrix no longer sums duplicates
    assert ds.timestamps.tolist() == [300, 100, 500, 100]
    assert ds.to_csr()[ds.user_ids.index(1), ds.item_ids.index(1)] == 2.0


def test_duplicates_mean(tmp_path):
    ds = load_movielens(_dup_release(tmp_path), duplicates="mean")
    u, i = ds.user_ids.index(1), ds.item_ids.index(1)
    row = np.flatnonzero((ds.users == u) & (ds.items == i))
    assert row.size == 1 and ds.ratings[row[0]] == pytest.approx(3.0)
    assert ds.timestamps[row[0]] == 300


def test_duplicates_error_names_the_pair(tmp_path):
    with pytest.raises(DataFormatError, match=r"userId 1, movieId 1.*duplicates=\"latest\""):
        load_movielens(_dup_release(tmp_path), duplicates="error")


def test_duplicates_option_checked_and_keys_the_cache(tmp_path):
    d = _dup_release(tmp_path)
    with pytest.raises(DataFormatError, match="duplicates must be"):
        load_dataset(str(d), duplicates="sum", progress=False)
    load_dataset(str(d), progress=False)
    with pytest.raises(DataFormatError):  # a cached "latest" result must not hide the error
        load_dataset(str(d), duplicates="error", progress=False)
    assert load_dataset(str(d), duplicates="mean", progress=False).n_ratings == 4


# ---- 3. bytes that are not UTF-8 ---------------------------------------------------------------
def test_one_bad_byte_does_not_garble_the_movies_file(tmp_path):
    d = write_csv_release(tmp_path)
    movies = (d / "movies.csv").read_bytes().replace(b"Babylon 5", b"Babylon \xe9 5")
    movies = movies.replace(b"Toy Story", "Les Misérables".encode())
    (d / "movies.csv").write_bytes(movies)
    ds = load_movielens(d)
    titles = ds.items_meta.get_column("title").to_list()
    assert titles[0] == "Les Misérables"  # UTF-8 elsewhere in the file stays intact
    assert titles[3] == "Babylon \ufffd 5"  # only the bad byte is replaced
    report = ds.source["load_report"]
    assert report["replaced_lines"] == {str(d / "movies.csv"): 1}
    assert report["first_replaced_lines"] == {str(d / "movies.csv"): [5]}


def test_latin1_releases_stay_latin1(tmp_path):
    ds = load_movielens(write_ml1m(tmp_path))
    titles = dict(zip(ds.items_meta["movieId"], ds.items_meta["title"], strict=True))
    assert titles[2000] == "Année: the story"
    assert ds.source["load_report"]["replaced_lines"] == {}


# ---- 4. the parsed-array cache ---------------------------------------------------------------
def _refresh_manifest(entry: Path) -> None:
    """Bring the manifest up to date so damage reaches the deeper checks."""
    man = json.loads((entry / "manifest.json").read_text())
    man["files"] = {
        p.name: {"bytes": p.stat().st_size, "crc32": dcache.crc32_file(p)}
        for p in entry.iterdir()
        if p.name != "manifest.json"
    }
    (entry / "manifest.json").write_text(json.dumps(man))


def _damage(entry: Path, kind: str) -> None:
    users = np.load(entry / "users.npy")
    if kind == "index-out-of-range":
        users[0] = len(np.load(entry / "user_ids.npy"))
        np.save(entry / "users.npy", users)
    elif kind == "negative-index":
        users[1] = -1
        np.save(entry / "users.npy", users)
    elif kind == "wrong-dtype":
        np.save(entry / "ratings.npy", np.load(entry / "ratings.npy").astype(np.float64))
    elif kind == "wrong-shape":
        np.save(entry / "items.npy", np.load(entry / "items.npy")[:-1])
    elif kind == "two-d":
        np.save(entry / "timestamps.npy", np.load(entry / "timestamps.npy").reshape(-1, 1))
    elif kind == "missing-file":
        (entry / "timestamps.npy").unlink()
    elif kind == "empty-npy":
        (entry / "ratings.npy").write_bytes(b"")
    elif kind == "nan-rating":
        r = np.load(entry / "ratings.npy")
        r[2] = np.nan
        np.save(entry / "ratings.npy", r)
    elif kind == "duplicate-pair":
        items = np.load(entry / "items.npy")
        users[1], items[1] = users[0], items[0]
        np.save(entry / "users.npy", users)
        np.save(entry / "items.npy", items)
    elif kind == "unsorted-ids":
        ids = np.load(entry / "item_ids.npy")
        np.save(entry / "item_ids.npy", ids[::-1].copy())
    elif kind.startswith("meta-"):
        body = {"meta-list": "[]", "meta-null": "null", "meta-junk": "{not json"}.get(kind)
        if body is None:  # right keys, wrong types
            meta = json.loads((entry / "meta.json").read_text())
            meta["name"], meta["rating_scale"] = 5, "0.5-5"
            body = json.dumps(meta)
        (entry / "meta.json").write_text(body)
    elif kind == "genres-shape":
        np.save(entry / "item_genres.npy", np.load(entry / "item_genres.npy")[:, :2])
    elif kind == "object-array":
        np.save(entry / "ratings.npy", np.array([object()] * len(users)), allow_pickle=True)
    else:
        raise AssertionError(kind)


_DAMAGE = [
    "index-out-of-range", "negative-index", "wrong-dtype", "wrong-shape", "two-d", "missing-file",
    "empty-npy", "nan-rating", "duplicate-pair", "unsorted-ids", "meta-list", "meta-null",
    "meta-junk", "meta-types", "genres-shape", "object-array",
]  # fmt: skip


@pytest.mark.parametrize("refresh", [False, True], ids=["checksum", "deep"])
@pytest.mark.parametrize("kind", _DAMAGE)
def test_damaged_cache_entry_is_rebuilt(tmp_path, monkeypatch, kind, refresh):
    folder = write_csv_release(tmp_path)
    fresh = load_dataset(str(folder), progress=False)
    (entry,) = _entries(tmp_path)
    _damage(entry, kind)
    if refresh:
        _refresh_manifest(entry)
    assert dcache.load(entry) is None  # never trusted
    calls = []
    real = cdata.load_movielens
    monkeypatch.setattr(cdata, "load_movielens", lambda *a, **k: calls.append(1) or real(*a, **k))
    healed = load_dataset(str(folder), progress=False)
    assert calls == [1]  # parsed from the source again
    assert healed.fingerprint == fresh.fingerprint
    assert healed.items_meta.equals(fresh.items_meta)
    # the entry was rewritten whole: it loads again, without parsing
    assert dcache.read(entry).fingerprint == fresh.fingerprint
    load_dataset(str(folder), progress=False)
    assert calls == [1]


def test_manifest_missing_or_garbage(tmp_path):
    folder = write_csv_release(tmp_path)
    load_dataset(str(folder), progress=False)
    (entry,) = _entries(tmp_path)
    for body in (None, b"", b"[]", b'{"version": 2, "files": []}', b'{"version": 2, "files": {"../x": {}}}'):
        if body is None:
            (entry / "manifest.json").unlink()
        else:
            (entry / "manifest.json").write_bytes(body)
        with pytest.raises(dcache.CacheMiss):
            dcache.read(entry)
    assert load_dataset(str(folder), progress=False).n_ratings == 5
    assert dcache.load(entry) is not None


def test_a_file_at_the_entry_path_is_left_alone(tmp_path, capsys):
    folder = write_csv_release(tmp_path)
    load_dataset(str(folder), progress=False)
    (entry,) = _entries(tmp_path)
    import shutil

    shutil.rmtree(entry)
    entry.write_text("not ours")
    ds = load_dataset(str(folder), progress=False)
    assert ds.n_ratings == 5 and entry.read_text() == "not ours"
    assert "data cache not written" in capsys.readouterr().err


_CHILD = """
import sys
from cinerec.data import load_dataset
load_dataset(sys.argv[1], progress=False)
"""


def _load_in_child(folder: Path, cache: Path, fault: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CINEREC_CACHE=str(cache), CINEREC_FAULT_AT=fault)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", _CHILD, str(folder)], env=env, capture_output=True, timeout=120)


def test_kill_during_cache_write_leaves_nothing_trusted(tmp_path):
    folder = write_csv_release(tmp_path)
    cache = tmp_path / "cache"
    proc = _load_in_child(folder, cache, "dir-filled")
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert _entries(tmp_path) == []  # no entry a later load could trust
    temps = [p for p in cache.iterdir() if ".cinerec-tmp-" in p.name]
    assert len(temps) == 1 and (temps[0] / "manifest.json").exists()
    ds = load_dataset(str(folder), progress=False)  # parses, writes, removes the dead temporary
    assert ds.n_ratings == 5
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []
    (entry,) = _entries(tmp_path)
    assert dcache.read(entry).fingerprint == ds.fingerprint


def test_kill_while_healing_keeps_it_healable(tmp_path):
    folder = write_csv_release(tmp_path)
    fresh = load_dataset(str(folder), progress=False)
    (entry,) = _entries(tmp_path)
    _damage(entry, "index-out-of-range")
    proc = _load_in_child(folder, tmp_path / "cache", "before-exchange")
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert dcache.load(entry) is None  # still the damaged one, still refused
    assert load_dataset(str(folder), progress=False).fingerprint == fresh.fingerprint
    assert dcache.load(entry) is not None
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")] == []


# ---- 5. corrupt and oversized zips --------------------------------------------------------------
def _zip(tmp_path: Path, name: str = "ml-tiny") -> Path:
    return zip_folder(write_csv_release(tmp_path / "src", name), tmp_path / f"{name}.zip")


@pytest.mark.parametrize("cut", [0.5, 0.95])
def test_truncated_zip(tmp_path, cut):
    z = _zip(tmp_path)
    data = z.read_bytes()
    z.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(DataFormatError) as e:
        load_dataset(str(z), progress=False)
    assert str(z) in str(e.value) and "download it again" in str(e.value)


def test_not_a_zip_named_zip(tmp_path):
    z = tmp_path / "ml-x.zip"
    z.write_bytes(b"PK\x03\x04" + os.urandom(300))
    with pytest.raises(DataFormatError, match=r"ml-x.zip.*delete"):
        load_movielens(z)


def test_corrupt_member_data(tmp_path):
    src = write_csv_release(tmp_path / "src")
    rows = "".join(f"{u},{m},{(u * m) % 9 * 0.5 + 0.5},{1000 + u * m}\n" for u in range(1, 200) for m in range(1, 40))
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + rows)
    z = zip_folder(src, tmp_path / "r.zip")
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("ml-tiny/ratings.csv")
    data = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 50, start + info.compress_size - 50, 97):
        data[k] ^= 0x5A
    z.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"r.zip.*(damaged|decompress)"):
        load_movielens(z)


def test_member_size_limit(tmp_path):
    z = _zip(tmp_path)
    with pytest.raises(DataFormatError, match=r"ratings.csv declares .*max_member_bytes"):
        load_movielens(z, limits=ArchiveLimits(max_member_bytes=100))
    assert load_movielens(z, limits=ArchiveLimits(max_member_bytes=10_000)).n_ratings == 5


def test_line_length_limit_names_the_line(tmp_path):
    src = write_csv_release(tmp_path / "src")
    _set_line(src / "movies.csv", 3, '3,"' + "A" * 300 + ' (1995)",Comedy')
    z = zip_folder(src, tmp_path / "long.zip")
    with pytest.raises(DataFormatError, match=r"movies.csv line 3 is longer than 200 bytes"):
        load_movielens(z, limits=ArchiveLimits(max_line_bytes=200))


def test_huge_single_line_fails_early_in_bounded_memory(tmp_path):
    z = tmp_path / "bomb.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb/ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n")
        with zf.open("bomb/movies.csv", "w") as f:
            f.write(b"movieId,title,genres\n")
            for _ in range(64):
                f.write(b"1" * (1 << 20))  # one 64 MiB line
    tracemalloc.start()
    try:
        with pytest.raises(DataFormatError, match=r"movies.csv line 2 is longer than 1,048,576 bytes"):
            load_movielens(z)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # a few 1 MiB chunks, not the 64 MiB line


def test_limits_are_validated():
    with pytest.raises(ConfigError, match="max_line_bytes"):
        ArchiveLimits(max_line_bytes=0)
    with pytest.raises(ConfigError, match="max_member_bytes"):
        ArchiveLimits(max_member_bytes=float("nan"))


# ---- 6. invariants ---------------------------------------------------------------------------
def _ds(**kw) -> Dataset:
    base = dict(
        name="t",
        users=np.array([0, 0, 1], np.int32),
        items=np.array([0, 1, 1], np.int32),
        ratings=np.array([4.0, 3.5, 5.0], np.float32),
        timestamps=np.array([1, 2, 3], np.int64),
        user_ids=IdMap(np.array([10, 20])),
        item_ids=IdMap(np.array([7, 9])),
    )
    base.update(kw)
    return Dataset(**base)


@pytest.mark.parametrize(("kw", "what"), [
    ({"ratings": np.array([4.0, np.nan, 5.0], np.float32)}, "rating nan"),
    ({"ratings": np.array([4.0, np.inf, 5.0], np.float32)}, "rating inf"),
    ({"ratings": np.array([4.0, 0.0, 5.0], np.float32)}, "rating 0.0"),
    ({"ratings": np.array([4.0, 5.5, 5.0], np.float32)}, "rating 5.5"),
    ({"items": np.array([0, 0, 1], np.int32)}, "appears more than once"),
    ({"users": np.array([0, 2, 1], np.int32)}, "users indices"),
    ({"items": np.array([0, -1, 1], np.int32)}, "items indices"),
    ({"timestamps": np.array([1, -2, 3], np.int64)}, "negative"),
    ({"item_ids": IdMap(np.array([9, 7]))}, "item_ids is not strictly increasing"),
    ({"rating_scale": (5.0, 0.5)}, "rating scale"),
    ({"item_genres": np.zeros((3, 1), bool), "genre_names": ("Drama",)}, "item_genres"),
    ({"items_meta": pl.DataFrame({"item": [0]})}, "items_meta"),
])  # fmt: skip
def test_check_invariants_names_what_failed(kw, what):
    check_invariants(_ds())  # the base is sound
    with pytest.raises(DataFormatError, match=f"invariant failed: .*{what}"):
        check_invariants(_ds(**kw), "here")


def test_unsorted_rows_still_checked_for_duplicates():
    ds = _ds(users=np.array([1, 0, 1], np.int32), items=np.array([1, 0, 1], np.int32))
    with pytest.raises(DataFormatError, match="more than once"):
        check_invariants(ds)


def test_synthetic_data_keeps_the_invariants():
    from cinerec.data.synthetic import generate_dataset

    check_invariants(generate_dataset(20_000, 200, 300, seed=1, progress=False))


# ---- 7. the package layout and old import paths ---------------------------------------------------
def test_the_package_paths_import():
    from cinerec.data import metadata, movielens, synthetic

    assert callable(metadata.tmdb.read_tmdb) and callable(metadata.imdb.read_imdb)
    assert callable(movielens.Source)
    assert callable(synthetic.generate) and callable(synthetic.generate_dataset)
    assert movielens.load_movielens is cdata.load_movielens


# ---- 8. the real data does not move ---------------------------------------------------------------
@pytest.mark.realdata
def test_ml_latest_small_fingerprint_is_unchanged(data_home):
    cold = load_dataset("ml-latest-small", data_home, cache=False, progress=False)
    assert cold.fingerprint == "de49b41cf219d2d67e2beed1217d46d0"
    assert cold.source["load_report"]["duplicates_merged"] == 0
    assert cold.source["load_report"]["skipped_lines"] == {}
    warm1 = load_dataset("ml-latest-small", data_home, progress=False)
    warm2 = load_dataset("ml-latest-small", data_home, progress=False)
    for ds in (warm1, warm2):
        assert ds.fingerprint == cold.fingerprint
        assert ds.items_meta.equals(cold.items_meta) and ds.tags.equals(cold.tags)
