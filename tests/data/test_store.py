"""Downloads against a local HTTP server: good file, bad checksum, truncation, offline."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import socket
import threading
from pathlib import Path

import pytest

from cinerec.data import load_dataset, store
from cinerec.errors import ChecksumMismatch, CinerecError, DatasetUnavailable
from tests.data.test_movielens import write_csv_release, zip_folder


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes: /good/, /badsum/, /trunc/, /nomd5/ + NAME.zip[.md5]; /imdb/NAME.tsv.gz."""

    files: dict[str, bytes] = {}
    hits: list[str] = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.hits.append(self.path)
        mode, _, name = self.path.strip("/").partition("/")
        if name.endswith(".md5"):
            body = self.files.get(name[:-4])
            if body is None or mode == "nomd5":
                self.send_error(404)
                return
            digest = hashlib.md5(body).hexdigest()
            if mode == "badsum":
                digest = "0" * 32
            self._send(f"{digest}  {name[:-4]}\n".encode())
            return
        body = self.files.get(name)
        if body is None:
            self.send_error(404)
            return
        if mode == "trunc":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self._send(body)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A local server with a small generated ml-latest-small.zip and an IMDb file."""
    src = tmp_path_factory.mktemp("src")
    z = zip_folder(write_csv_release(src, "ml-latest-small"), src / "ml-latest-small.zip")
    _Handler.files = {
        "ml-latest-small.zip": z.read_bytes(),
        "title.ratings.tsv.gz": gzip.compress(b"tconst\taverageRating\tnumVotes\ntt0114709\t8.3\t1000\n"),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CINEREC_MOVIELENS_URL", raising=False)
    monkeypatch.delenv("CINEREC_IMDB_URL", raising=False)


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_good(server, tmp_path):
    home = tmp_path / "home"
    path = store.fetch_movielens("ml-latest-small", home, base_url=f"{server}/good", progress=False)
    assert path == home / "ml-latest-small.zip"
    assert _leftovers(home) == ["ml-latest-small.zip"]  # no temp file left
    assert path.read_bytes() == _Handler.files["ml-latest-small.zip"]
    ds = load_dataset("ml-latest-small", home, progress=False)
    assert ds.n_ratings == 5


def test_present_file_needs_no_network(server, tmp_path):
    home = tmp_path / "home"
    store.fetch_movielens("ml-latest-small", home, base_url=f"{server}/good", progress=False)
    again = store.fetch_movielens("ml-latest-small", home, base_url=_closed_port_url(), progress=False)
    assert again == home / "ml-latest-small.zip"


def test_env_base_url_and_load_with_download(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_MOVIELENS_URL", f"{server}/good/")
    _Handler.hits.clear()
    ds = load_dataset("ml-latest-small", tmp_path / "home", download=True, progress=False)
    assert ds.n_items == 5
    assert "/good/ml-latest-small.zip" in _Handler.hits and "/good/ml-latest-small.zip.md5" in _Handler.hits


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    home = tmp_path / "home"
    with pytest.raises(ChecksumMismatch, match="does not match"):
        store.fetch_movielens("ml-latest-small", home, base_url=f"{server}/badsum", progress=False)
    assert _leftovers(home) == []
    with pytest.raises(DatasetUnavailable):
        load_dataset("ml-latest-small", home)


def test_truncated_transfer_leaves_nothing(server, tmp_path):
    home = tmp_path / "home"
    with pytest.raises(DatasetUnavailable, match="truncated|interrupted"):
        store.fetch_movielens("ml-latest-small", home, base_url=f"{server}/trunc", progress=False)
    assert _leftovers(home) == []


def test_missing_md5_still_downloads(server, tmp_path):
    path = store.fetch_movielens("ml-latest-small", tmp_path, base_url=f"{server}/nomd5", progress=False)
    assert path.is_file()


def test_unreachable_names_url_and_destination(tmp_path):
    base = _closed_port_url()
    with pytest.raises(DatasetUnavailable) as e:
        store.fetch_movielens("ml-1m", tmp_path, base_url=base, progress=False)
    msg = str(e.value)
    assert f"{base}/ml-1m.zip" in msg and str(tmp_path / "ml-1m.zip") in msg
    assert _leftovers(tmp_path) == []


def test_unknown_release():
    with pytest.raises(DatasetUnavailable, match="ml-25m"):
        store.get_release("ml-7m")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_home_is_a_clear_error(server, tmp_path):
    home = tmp_path / "ro"
    home.mkdir()
    home.chmod(0o555)
    try:
        with pytest.raises(CinerecError, match="CINEREC_DATA"):
            store.fetch_movielens("ml-latest-small", home, base_url=f"{server}/good", progress=False)
    finally:
        home.chmod(0o755)


def test_imdb_download(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_IMDB_URL", f"{server}/imdb")
    path = store.fetch_imdb("title.ratings", tmp_path, progress=False)
    assert path == tmp_path / "imdb" / "title.ratings.tsv.gz"
    assert gzip.decompress(path.read_bytes()).startswith(b"tconst\t")
    with pytest.raises(DatasetUnavailable, match="title.basics"):
        store.fetch_imdb("title.nope", tmp_path, progress=False)


def test_find_local_prefers_folder(tmp_path):
    zip_folder(write_csv_release(tmp_path / "src", "ml-20m"), tmp_path / "ml-20m.zip")
    assert store.find_local("ml-20m", tmp_path) == tmp_path / "ml-20m.zip"
    write_csv_release(tmp_path, "ml-20m")
    assert store.find_local("ml-20m", tmp_path) == tmp_path / "ml-20m"
    assert store.find_local("ml-25m", tmp_path) is None
    (tmp_path / "ml-10M100K").mkdir()  # ml-10m's own folder name is accepted
    assert store.find_local("ml-10m", tmp_path) == tmp_path / "ml-10M100K"


def test_data_home_and_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CINEREC_DATA", str(tmp_path / "d"))
    assert store.data_home() == tmp_path / "d"
    assert store.data_home(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "c"))
    assert store.cache_dir() == tmp_path / "c"
    # an unusable cache setting falls back to another writable folder
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("CINEREC_CACHE", str(tmp_path / "file" / "sub"))
    fallback = store.cache_dir()
    assert fallback is not None and fallback != tmp_path / "file" / "sub"


def test_fingerprint_tracks_changes(tmp_path):
    f = tmp_path / "a.zip"
    f.write_bytes(b"x")
    fp1 = store.fingerprint(f)
    assert store.fingerprint(f) == fp1
    f.write_bytes(b"xy")
    assert store.fingerprint(f) != fp1
