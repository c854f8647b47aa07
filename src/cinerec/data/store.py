"""Where data lives and how it gets there: data home, cache dir, releases, downloads.

Side effects (network, files) live here and nowhere else in the data layer.

* Data home: ``$CINEREC_DATA``, else ``~/.cache/cinerec``. It may be read-only (CI reads
  the shared data folder), so nothing but explicit downloads is ever written there.
* Cache dir (parsed arrays): ``$CINEREC_CACHE``, else ``~/.cache/cinerec/cache``; when
  that is not writable, a per-user folder in the system temp dir.
* Downloads stream to a temporary file beside the target, are checked (length and the
  published MD5) and only then renamed into place, so an interrupted or corrupt transfer
  never leaves a file that a later load would trust.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinerec._util import console, fs
from cinerec.errors import ChecksumMismatch, CinerecError, DatasetUnavailable

MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens"
IMDB_URL = "https://datasets.imdbws.com"
_CHUNK = 1 << 20
_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Release:
    """One official MovieLens release as GroupLens publishes it."""

    name: str
    url: str
    files: tuple[str, ...]
    description: str
    folder: str  # top-level folder inside the zip
    size_mb: float  # approximate zip size, for `cinerec data list`

    def __getitem__(self, key: str) -> Any:
        # Mapping-style access (RELEASES[name]["url"]) for callers that expect a dict.
        return getattr(self, key)


def _release(
    name: str, files: tuple[str, ...], desc: str, size_mb: float, folder: str = ""
) -> Release:
    return Release(name, f"{MOVIELENS_URL}/{name}.zip", files, desc, folder or name, size_mb)


_CSV = ("ratings.csv", "movies.csv", "tags.csv", "links.csv")

RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        _release(
            "ml-100k",
            ("u.data", "u.item", "u.user", "u.genre", "u.occupation"),
            "100,000 ratings (1-5) from 943 users on 1,682 movies, demographics, 1998",
            4.9,
        ),
        _release(
            "ml-1m",
            ("ratings.dat", "movies.dat", "users.dat"),
            "1,000,209 ratings (1-5) from 6,040 users on 3,900 movies, demographics, 2003",
            5.9,
        ),
        _release(
            "ml-10m",
            ("ratings.dat", "movies.dat", "tags.dat"),
            "10,000,054 ratings (0.5-5) and 95,580 tags, 71,567 users, 10,681 movies, 2009",
            63.0,
            folder="ml-10M100K",
        ),
        _release(
            "ml-20m",
            _CSV,
            "20,000,263 ratings, 465,564 tags, 138,493 users, 27,278 movies, 2016",
            190.0,
        ),
        _release(
            "ml-25m",
            _CSV,
            "25,000,095 ratings, 1,093,360 tags, 162,541 users, 62,423 movies, 2019",
            250.0,
        ),
        _release(
            "ml-32m",
            _CSV,
            "32,000,204 ratings, 2,000,072 tags, 200,948 users, 87,585 movies, 2023",
            239.0,
        ),
        _release(
            "ml-latest-small",
            _CSV,
            "100,836 ratings, 3,683 tags, 610 users, 9,742 movies (development set, changes over time)",
            1.0,
        ),
        _release(
            "ml-latest",
            _CSV,
            "full latest release (development set, changes over time, ~33M ratings)",
            335.0,
        ),
    )
}

#: IMDb non-commercial data sets (https://developer.imdb.com/non-commercial-datasets/).
IMDB_FILES: tuple[str, ...] = (
    "title.basics",
    "title.ratings",
    "title.crew",
    "title.principals",
    "name.basics",
)


# ---- locations -----------------------------------------------------------------------
def data_home(data_home: str | Path | None = None) -> Path:
    """The data home: the argument, else ``$CINEREC_DATA``, else ``~/.cache/cinerec``."""
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get("CINEREC_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cinerec"


def cache_dir() -> Path | None:
    """A writable folder for parsed-array caches, or None when none can be made.

    ``$CINEREC_CACHE``, else ``~/.cache/cinerec/cache``; falls back to a per-user folder
    in the temp dir because the home may be read-only (containers, CI).
    """
    env = os.environ.get("CINEREC_CACHE")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(Path.home() / ".cache" / "cinerec" / "cache")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    candidates.append(Path(tempfile.gettempdir()) / f"cinerec-cache-{uid}")
    for c in candidates:
        try:
            c.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(c, os.W_OK | os.X_OK):
            return c
    return None


def movielens_base_url(base_url: str | None = None) -> str:
    """Base URL for MovieLens zips: the argument, ``$CINEREC_MOVIELENS_URL``, or GroupLens."""
    return (base_url or os.environ.get("CINEREC_MOVIELENS_URL") or MOVIELENS_URL).rstrip("/")


def get_release(name: str) -> Release:
    """The release called ``name``; `DatasetUnavailable` listing the known ones otherwise."""
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise DatasetUnavailable(
            f"unknown MovieLens release {name!r}; known releases: {known}"
        ) from None


def find_local(name: str, home: str | Path | None = None) -> Path | None:
    """An extracted folder or zip for ``name`` already in the data home, else None.

    The folder wins over the zip (no decompression needed). The zip's own folder name is
    accepted too (ml-10m extracts to ``ml-10M100K/``).
    """
    root = data_home(home)
    names = [name]
    if name in RELEASES and RELEASES[name].folder != name:
        names.append(RELEASES[name].folder)
    for n in names:
        d = root / n
        if d.is_dir():
            # `ml-100k.zip` extracted in place gives ml-100k/ml-100k/; accept that too.
            inner = d / n
            return inner if inner.is_dir() and not any(d.glob("*.csv")) else d
    z = root / f"{name}.zip"
    return z if z.is_file() else None


def is_present(name: str, home: str | Path | None = None) -> bool:
    """Whether a release is available locally (folder or zip in the data home)."""
    return find_local(name, home) is not None


# ---- downloads -----------------------------------------------------------------------
@contextmanager
def _progress(enabled: bool, description: str, total: int | None) -> Iterator[Any]:
    """A download progress bar (`console.progress`), or a no-op updater when disabled."""
    with console.progress(enabled, unit="bytes", transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.update(task, advance=n)


def _unavailable(url: str, dest: Path, reason: object) -> DatasetUnavailable:
    return DatasetUnavailable(
        f"could not download {url} ({reason}). If this machine is offline, download it by "
        f"hand and save it as {dest} (or set CINEREC_DATA to the folder holding it)."
    )


def _open(url: str, dest: Path) -> Any:
    try:
        return urllib.request.urlopen(url, timeout=_TIMEOUT_S)  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as e:
        raise _unavailable(url, dest, f"HTTP {e.code} {e.reason}") from e
    except (TimeoutError, urllib.error.URLError, OSError) as e:
        raise _unavailable(url, dest, getattr(e, "reason", e)) from e


def fetch_md5(url: str, dest: Path) -> str | None:
    """The MD5 GroupLens publishes at ``url + '.md5'``; None when none is published (404)."""
    md5_url = url + ".md5"
    try:
        with urllib.request.urlopen(md5_url, timeout=_TIMEOUT_S) as r:  # noqa: S310
            text = r.read(4096).decode("ascii", "replace")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise _unavailable(md5_url, dest, f"HTTP {e.code} {e.reason}") from e
    except (TimeoutError, urllib.error.URLError, OSError) as e:
        raise _unavailable(md5_url, dest, getattr(e, "reason", e)) from e
    # Both `md5sum` ("HEX  name") and BSD ("MD5 (name) = HEX") layouts occur.
    m = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    if not m:
        raise ChecksumMismatch(f"{md5_url} does not contain an MD5 checksum (got {text[:80]!r})")
    return m.group(1).lower()


def download(url: str, dest: str | Path, *, md5: str | None = None, progress: bool = True) -> Path:
    """Stream ``url`` to ``dest`` atomically; verify length and (if given) MD5.

    The bytes go to a temporary file beside ``dest`` (`fs.atomic_file`), which is renamed
    onto ``dest`` only after every check passed; on any failure it is removed, and one
    left by a killed process is removed by the next write into that folder.
    """
    dest = Path(dest)
    digest = hashlib.md5()  # noqa: S324 (GroupLens publishes MD5; integrity, not security)
    received = 0
    try:
        with fs.atomic_file(dest) as tmp, open(tmp, "wb") as out, _open(url, dest) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with _progress(progress, f"{dest.name}", total) as advance:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except (OSError, ValueError) as e:  # IncompleteRead, reset, timeout
                        raise _unavailable(url, dest, f"transfer interrupted: {e!r}") from e
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    advance(len(chunk))
            if total is not None and received != total:
                raise _unavailable(url, dest, f"truncated transfer: got {received} of {total} bytes")
            if md5 is not None and digest.hexdigest() != md5.lower():
                raise ChecksumMismatch(
                    f"{url}: MD5 {digest.hexdigest()} does not match the published {md5}; the "
                    "download is corrupt and was discarded. Run the fetch again."
                )
    except OSError as e:  # the folder cannot be made or written (network errors are converted above)
        raise CinerecError(
            f"cannot write to {dest.parent} ({e.strerror or e}); set CINEREC_DATA to a writable "
            "folder to download data sets"
        ) from e
    return dest


def fetch_movielens(
    name: str,
    home: str | Path | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Make release ``name`` available in the data home; return its folder or zip path.

    Uses what is already there (no network); otherwise downloads ``NAME.zip`` from
    ``base_url`` (default ``$CINEREC_MOVIELENS_URL`` or GroupLens) and checks it against
    the published ``NAME.zip.md5``.
    """
    release = get_release(name)
    if not force:
        local = find_local(name, home)
        if local is not None:
            return local
    dest = data_home(home) / f"{name}.zip"
    url = f"{movielens_base_url(base_url)}/{name}.zip"
    md5 = fetch_md5(url, dest)
    if md5 is None and progress:
        console.console(stderr=True).print(f"[yellow]warning:[/] no checksum published for {url}")
    download(url, dest, md5=md5, progress=progress)
    try:
        with zipfile.ZipFile(dest) as z:
            names = z.namelist()
    except zipfile.BadZipFile as e:
        dest.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{url} is not a valid zip archive; it was discarded") from e
    if not any(n.rsplit("/", 1)[-1] == release.files[0] for n in names):
        raise DatasetUnavailable(
            f"{dest} does not contain {release.files[0]}; is {url} the right file?"
        )
    return dest


def imdb_url(name: str, base_url: str | None = None) -> str:
    """URL of one IMDb TSV (``title.basics`` -> ``.../title.basics.tsv.gz``)."""
    base = (base_url or os.environ.get("CINEREC_IMDB_URL") or IMDB_URL).rstrip("/")
    return f"{base}/{name}.tsv.gz"


def fetch_imdb(
    name: str,
    home: str | Path | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
    force: bool = False,
) -> Path:
    """Download one IMDb TSV into ``<data home>/imdb/NAME.tsv.gz`` (atomically).

    IMDb publishes no checksum, so only the transfer length is verified (and the gzip
    stream is checked to open); the file is replaced whenever ``force`` is set.
    """
    if name not in IMDB_FILES:
        raise DatasetUnavailable(f"unknown IMDb file {name!r}; known: {', '.join(IMDB_FILES)}")
    dest = data_home(home) / "imdb" / f"{name}.tsv.gz"
    if dest.is_file() and not force:
        return dest
    download(imdb_url(name, base_url), dest, md5=None, progress=progress)
    return dest


# ---- fingerprints --------------------------------------------------------------------
def fingerprint(path: str | Path, files: tuple[str, ...] | None = None) -> str:
    """Cheap identity of a source: resolved path, size and mtime of the file(s).

    For a folder, every regular file in it or one level below (where a release's files
    may sit), or only those named in ``files``, contributes. Changing, replacing or
    touching the source changes the fingerprint.
    """
    p = Path(path).resolve()
    h = hashlib.blake2b(digest_size=12)
    h.update(str(p).encode())
    if p.is_file():
        members = [p]
    else:
        level1 = list(p.iterdir())
        candidates = level1 + [c for d in level1 if d.is_dir() for c in d.iterdir()]
        members = sorted(
            (c for c in candidates if c.is_file() and (files is None or c.name in files)),
            key=lambda c: str(c),
        )
    for m in members:
        st = m.stat()
        h.update(
            f"{m.relative_to(p) if m != p else m.name}:{st.st_size}:{st.st_mtime_ns};".encode()
        )
    return h.hexdigest()
