"""The files of one release, in a folder or a zip: format detection and safe reading.

A zip is untrusted input. Every zip operation turns `zipfile.BadZipFile`, ``zlib.error``,
``EOFError`` and read errors into one `DataFormatError` that names the archive and the
fix (delete it and download it again). Members are read in a stream of chunks against
`ArchiveLimits`: the declared and the actual decompressed size, and the longest line,
so a zip bomb or a 200 MB line fails after reading at most the limit, not gigabytes.

(Downloads, checksums of downloads and the data home live in ``cinerec.data.store``.)
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from cinerec._util import validate
from cinerec.data.movielens.formats import FORMATS, MARKERS, Format
from cinerec.errors import DataFormatError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on what one zip member may expand to.

    The defaults leave ample room for the largest real files (ml-32m's ratings.csv is
    ~0.9 GB with lines under 100 bytes; no MovieLens line reaches 1 KiB)."""

    max_member_bytes: int = 8 << 30
    max_line_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        validate.integer("max_member_bytes", self.max_member_bytes, lo=1)
        validate.integer("max_line_bytes", self.max_line_bytes, lo=1)


DEFAULT_LIMITS = ArchiveLimits()


def _damaged(path: Path, what: str, err: BaseException) -> DataFormatError:
    return DataFormatError(
        f"{path}: {what} ({type(err).__name__}: {err}). The archive is damaged or incomplete; "
        f"delete {path} and download it again (`cinerec data fetch NAME --force`)"
    )


class Source:
    """The files of one MovieLens release, in a folder or a zip; detects the format."""

    def __init__(self, path: str | Path, limits: ArchiveLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or DEFAULT_LIMITS
        if not self.path.exists():
            raise DataFormatError(f"{self.path} does not exist")
        self._zip: zipfile.ZipFile | None = None
        if self.path.is_file():
            self._zip = self._open_zip()
            try:
                names = [n for n in self._zip.namelist() if not n.endswith("/")]
            except (zipfile.BadZipFile, ValueError) as e:
                raise _damaged(self.path, "cannot list the archive", e) from None
        else:
            level1 = list(self.path.iterdir())
            names = [
                str(p.relative_to(self.path).as_posix())
                for p in level1 + [c for d in level1 if d.is_dir() for c in d.iterdir()]
                if p.is_file()
            ]
        # The shallowest marker file decides the format and the root folder.
        best: tuple[int, str, str] | None = None
        for n in names:
            pp = PurePosixPath(n)
            if pp.name in MARKERS and not pp.name.startswith("._"):
                cand = (len(pp.parts), str(pp.parent), pp.name)
                if best is None or cand < best:
                    best = cand
        if best is None:
            self.close()
            raise DataFormatError(
                f"{self.path} holds no MovieLens ratings file (looked for u.data, ratings.dat, "
                "ratings.csv); pass the release folder or its zip"
            )
        self.prefix = "" if best[1] == "." else best[1] + "/"
        self._names = set(names)
        marker = MARKERS[best[2]]
        if marker == "dat":
            marker = "ml-1m" if self.has("users.dat") else "ml-10m"
        self.format: str = marker

    def _open_zip(self) -> zipfile.ZipFile:
        try:
            if not zipfile.is_zipfile(self.path):
                if self.path.suffix.lower() == ".zip":
                    raise zipfile.BadZipFile("no zip directory found; truncated or not a zip")
                raise DataFormatError(
                    f"{self.path} is neither a folder nor a zip archive of a MovieLens release"
                )
            return zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RuntimeError) as e:
            raise _damaged(self.path, "not a readable zip archive", e) from None
        except OSError as e:
            raise DataFormatError(f"cannot read {self.path}: {e.strerror or e}") from None

    @property
    def spec(self) -> Format:
        return FORMATS[self.format]

    @property
    def root(self) -> Path:
        """The extracted folder holding the files, or the zip path."""
        if self._zip is not None:
            return self.path
        return self.path / self.prefix if self.prefix else self.path

    @property
    def is_zip(self) -> bool:
        return self._zip is not None

    def has(self, name: str) -> bool:
        return self.prefix + name in self._names

    def label(self, name: str) -> str:
        """Human-readable location of a member, for error messages."""
        if self._zip is not None:
            return f"{self.path}:{self.prefix}{name}"
        return str(self.path / (self.prefix + name))

    def file_path(self, name: str) -> Path | None:
        """The member's path on disk (folders), None in a zip."""
        return None if self._zip is not None else self.path / (self.prefix + name)

    def head(self, name: str, n: int = 4096) -> bytes:
        """The first ``n`` bytes of a member (for the header check)."""
        if self._zip is None:
            with open(self.path / (self.prefix + name), "rb") as f:
                return f.read(n)
        try:
            with self._zip.open(self.prefix + name) as f:
                return f.read(n)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as e:
            raise _damaged(self.path, f"cannot read {self.prefix}{name}", e) from None

    def read_bytes(self, name: str) -> bytes:
        """The whole member, read in chunks against the limits (zips) or from disk."""
        if self._zip is None:
            return (self.path / (self.prefix + name)).read_bytes()
        member = self.prefix + name
        try:
            info = self._zip.getinfo(member)
            lim = self.limits
            if info.file_size > lim.max_member_bytes:
                raise DataFormatError(
                    f"{self.label(name)} declares {info.file_size:,} bytes decompressed, more "
                    f"than the limit of {lim.max_member_bytes:,} (ArchiveLimits.max_member_bytes). "
                    "Raise the limit if the file is genuine; otherwise delete the archive"
                )
            with self._zip.open(member) as f:
                return _read_capped(f, self.label(name), lim)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError, RuntimeError) as e:
            raise _damaged(self.path, f"cannot decompress {member}", e) from None

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _read_capped(f, label: str, lim: ArchiveLimits) -> bytes:  # noqa: ANN001 (a binary stream)
    """Read a stream to the end; stop at the first limit exceeded (total or line length)."""
    parts: list[bytes] = []
    total = 0
    run = 0  # length of the line still open at the end of the previous chunk
    lines = 0  # newlines seen so far
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > lim.max_member_bytes:
            raise DataFormatError(
                f"{label} expands beyond {lim.max_member_bytes:,} bytes "
                "(ArchiveLimits.max_member_bytes); the archive is damaged or not a MovieLens release"
            )
        first = chunk.find(b"\n")
        if first < 0:
            run += len(chunk)
            longest, where = run, lines
        else:
            # The line crossing from the previous chunk, and (only when lines may be
            # shorter than a chunk) the longest line inside this chunk.
            longest, where = run + first, lines
            if longest <= lim.max_line_bytes and lim.max_line_bytes < len(chunk):
                nl = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
                over = np.flatnonzero(np.diff(nl) - 1 > lim.max_line_bytes)
                if over.size:  # the first too-long line inside this chunk
                    j = int(over[0])
                    longest, where = int(nl[j + 1] - nl[j] - 1), lines + j + 1
            run = len(chunk) - chunk.rfind(b"\n") - 1
        if longest > lim.max_line_bytes:
            raise DataFormatError(
                f"{label} line {where + 1} is longer than {lim.max_line_bytes:,} bytes "
                "(ArchiveLimits.max_line_bytes); MovieLens lines are short, so the file is "
                "damaged or not a MovieLens file"
            )
        if first >= 0:
            lines += chunk.count(b"\n")
        parts.append(chunk)
    if run > lim.max_line_bytes:  # the last line, when no newline follows it
        raise DataFormatError(
            f"{label} line {lines + 1} is longer than {lim.max_line_bytes:,} bytes "
            "(ArchiveLimits.max_line_bytes); the file is damaged or not a MovieLens file"
        )
    return b"".join(parts)
