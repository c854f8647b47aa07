"""Parsing one member of a release into a typed, validated polars frame.

The fast path reads a file in one polars call and checks every value rule at once
(`formats.Col.valid`: a rating is finite and within the scale, a timestamp is not
negative). Only when that fails (a parse error, a null, a bad value) does the slower,
line-aware pass run, to name the first bad line (`DataFormatError` with file, 1-based
line number and the bad value) or, with ``on_bad_lines="skip"``, to drop and count bad
lines. Both paths are vectorised polars except for quoted CSV, whose quoting rules
only Python's ``csv`` knows (movies, links and tags; never the ratings).

Text decoding follows the format: latin-1 files (ml-100k, ml-1m) decode as latin-1;
UTF-8 files decode strictly, and a byte that is not UTF-8 is replaced (U+FFFD) on its
own line only; those lines are counted in the `LoadReport`.
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from cinerec.data.movielens.archive import Source
from cinerec.data.movielens.formats import Col, Encoding, FileSpec, OnBadLines
from cinerec.errors import DataFormatError

_SEP = "\x1f"  # stands in for a multi-byte separator ("::"), which polars cannot take


@dataclass
class LoadReport:
    """What a load dropped, repaired or merged (kept in ``Dataset.source``)."""

    skipped_lines: dict[str, int] = field(default_factory=dict)
    replaced_lines: dict[str, int] = field(default_factory=dict)  # non-UTF-8 bytes replaced
    first_replaced: dict[str, list[int]] = field(default_factory=dict)  # their line numbers
    duplicates: str = "latest"
    duplicates_merged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "skipped_lines": dict(self.skipped_lines),
            "replaced_lines": dict(self.replaced_lines),
            "first_replaced_lines": {k: list(v) for k, v in self.first_replaced.items()},
            "duplicates": self.duplicates,
            "duplicates_merged": int(self.duplicates_merged),
        }

    @staticmethod
    def warnings_of(report: dict[str, Any]) -> list[str]:
        """One warning line per kind of repair in a report dict (empty when clean)."""
        out = []
        skipped = report.get("skipped_lines") or {}
        if skipped:
            out.append(
                f"skipped {sum(skipped.values())} malformed line(s): "
                + ", ".join(f"{k}: {v}" for k, v in skipped.items())
            )
        replaced = report.get("replaced_lines") or {}
        if replaced:
            first = report.get("first_replaced_lines") or {}
            out.append(
                f"replaced bytes that are not UTF-8 on {sum(replaced.values())} line(s): "
                + ", ".join(f"{k}: {v} (lines {', '.join(map(str, first.get(k, [])))})" for k, v in replaced.items())
            )
        merged = report.get("duplicates_merged") or 0
        if merged:
            out.append(
                f"merged {merged} duplicate (user, movie) rating(s) "
                f"(duplicates={report.get('duplicates')!r})"
            )
        return out


# ---- decoding ---------------------------------------------------------------------------
_marks = threading.local()


def _mark(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    _marks.positions.append(err.start)
    return "\ufffd", err.end


codecs.register_error("cinerec-mark", _mark)


def decode(data: bytes, encoding: Encoding, label: str, report: LoadReport) -> str:
    """Text of a member in its format's encoding (module doc); repairs are reported."""
    if encoding == "latin-1":
        return data.decode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if encoding == "auto":
            return data.decode("latin-1")
    _marks.positions = []
    try:
        text = data.decode("utf-8", errors="cinerec-mark")
        pos = np.asarray(_marks.positions, dtype=np.int64)
    finally:
        _marks.positions = []
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    lines = np.unique(np.searchsorted(newlines, pos) + 1)
    report.replaced_lines[label] = report.replaced_lines.get(label, 0) + int(lines.size)
    report.first_replaced[label] = [int(x) for x in lines[:5]]
    return text


# ---- the fast path -----------------------------------------------------------------------
def _schema(cols: tuple[Col, ...]) -> dict[str, Any]:
    return {c.name: c.dtype for c in cols}


def _all_valid(df: pl.DataFrame, cols: tuple[Col, ...]) -> bool:
    required = [c.name for c in cols if not c.nullable]
    checks = [c.valid(pl.col(c.name)) for c in cols]
    exprs = [e for e in checks if e is not None]
    if required:
        exprs.append(~pl.any_horizontal(pl.col(required).is_null()))
    if not exprs or df.height == 0:
        return True
    return bool(df.select(pl.all_horizontal(exprs).all()).item())


def fast_read(data: str | bytes, spec: FileSpec, sep: str) -> pl.DataFrame | None:
    """One polars call; None when anything looks off (then the line pass diagnoses)."""
    try:
        df = pl.read_csv(
            data,
            has_header=spec.header,
            schema=_schema(spec.cols),
            separator=sep,
            quote_char='"' if spec.quoted else None,
            encoding="utf8",
            raise_if_empty=False,
        )
    except (Exception, pl.exceptions.PanicException):  # polars raises several types for malformed input
        return None
    return df if _all_valid(df, spec.cols) else None


# ---- the line pass -----------------------------------------------------------------------
def _split_lines(text: str) -> pl.DataFrame:
    """Non-blank lines with their 1-based line number."""
    lines = pl.Series("line", [text]).str.split("\n").explode()
    return (
        pl.DataFrame(lines)
        .with_row_index("lineno", offset=1)
        .with_columns(pl.col("line").str.strip_suffix("\r"))
        .filter(pl.col("line").str.strip_chars() != "")
    )


def _quoted_fields(text: str, spec: FileSpec) -> pl.DataFrame:
    names = [c.name for c in spec.cols]
    k = len(names)
    reader = csv.reader(io.StringIO(text))
    linenos: list[int] = []
    rows: list[list[str] | None] = []
    texts: list[str] = []
    first = True
    try:
        for row in reader:
            if first and spec.header:
                first = False
                continue
            first = False
            if not row:
                continue
            linenos.append(reader.line_num)
            rows.append(row if len(row) == k else None)
            texts.append(",".join(row))
    except csv.Error as e:  # e.g. a NUL byte, or a quote left open at the end
        raise DataFormatError(f"line {reader.line_num + 1}: {e}") from None
    fields = pl.DataFrame(
        {n: [r[j] if r is not None else None for r in rows] for j, n in enumerate(names)},
        schema={n: pl.String for n in names},
    )
    raw = pl.Series(texts, dtype=pl.String)
    ok_len = pl.Series([r is not None for r in rows], dtype=pl.Boolean)
    return fields.with_columns(lineno=pl.Series(linenos, dtype=pl.UInt32), line=raw, ok_len=ok_len)


def _fields(text: str, spec: FileSpec) -> pl.DataFrame:
    """Each non-blank data line split into string fields, with lineno, line and ok_len."""
    names = [c.name for c in spec.cols]
    if spec.quoted:
        return _quoted_fields(text, spec)
    lines = _split_lines(text)
    if spec.header and lines.height:
        lines = lines.filter(pl.col("lineno") > lines.get_column("lineno").min())
    if spec.pattern is not None:
        frame = lines.with_columns(pl.col("line").str.extract_groups(spec.pattern).alias("_p")).unnest("_p")
        frame = frame.rename({str(j + 1): n for j, n in enumerate(names)})
        return frame.with_columns(ok_len=pl.col(names[0]).is_not_null())
    split = pl.col("line").str.split(spec.sep)
    return lines.with_columns(
        [split.list.get(j, null_on_oob=True).alias(n) for j, n in enumerate(names)]
        + [(split.list.len() == len(names)).alias("ok_len")]
    )


# Problem codes per field, in the order a message reports them.
_OK, _EMPTY, _UNPARSABLE, _OUT_OF_RANGE = 0, 1, 2, 3


def line_read(
    text: str, spec: FileSpec, *, label: str, on_bad_lines: OnBadLines, report: LoadReport
) -> pl.DataFrame:
    """Line-aware parse: raise on, or skip, malformed lines and bad values."""
    try:
        frame = _fields(text, spec)
    except DataFormatError as e:
        raise DataFormatError(f"{label} {e}") from None
    casts, codes = [], []
    for c in spec.cols:
        raw = pl.col(c.name) if c.dtype == pl.String else pl.col(c.name).str.strip_chars()
        empty = raw.is_null() | (raw == "") if c.dtype != pl.String else raw.is_null()
        val = raw if c.dtype == pl.String else pl.when(empty).then(None).otherwise(raw).cast(c.dtype, strict=False)
        rule = c.valid(val)
        code = (
            pl.when(empty & pl.lit(not c.nullable)).then(_EMPTY)
            .when(val.is_null() & ~empty).then(_UNPARSABLE)
            .when(~rule if rule is not None else pl.lit(False)).then(_OUT_OF_RANGE)
            .otherwise(_OK)
        )  # fmt: skip
        casts.append(val.alias(c.name))
        codes.append(code.alias(f"_code_{c.name}"))
    frame = frame.with_columns(codes).with_columns(
        _bad=~pl.col("ok_len") | pl.any_horizontal([pl.col(f"_code_{c.name}") != _OK for c in spec.cols])
    )
    n_bad = int(frame.get_column("_bad").sum())
    if n_bad:
        if on_bad_lines == "error":
            first = frame.filter(pl.col("_bad")).row(0, named=True)
            raise DataFormatError(f"{label} line {first['lineno']}: {_problem(first, spec)}. " + _FIX)
        report.skipped_lines[label] = report.skipped_lines.get(label, 0) + n_bad
        frame = frame.filter(~pl.col("_bad"))
    return frame.with_columns(casts).select([c.name for c in spec.cols])


_FIX = 'Fix the file, or pass on_bad_lines="skip" to drop bad lines'


def _problem(row: dict[str, Any], spec: FileSpec) -> str:
    """What is wrong with one line, naming the field and its value."""
    names = [c.name for c in spec.cols]
    if not row["ok_len"]:
        return f"expected {len(names)} fields ({', '.join(names)}), got {str(row['line'])[:120]!r}"
    for c in spec.cols:
        code, value = row[f"_code_{c.name}"], row[c.name]
        if code == _EMPTY:
            return f"field {c.name} is empty in {str(row['line'])[:120]!r}"
        if code == _UNPARSABLE:
            kind = "an integer" if c.dtype in (pl.Int64, pl.Int32, pl.Int8) else "a number"
            return f"field {c.name} = {str(value)[:60]!r} is not {kind}"
        if code == _OUT_OF_RANGE:
            return f"{c.name} {str(value).strip()[:60]} is invalid (must be {c.rule_text()})"
    return f"cannot parse {str(row['line'])[:120]!r}"  # pragma: no cover


# ---- one member --------------------------------------------------------------------------
def read_member(
    src: Source,
    spec: FileSpec,
    *,
    encoding: Encoding,
    on_bad_lines: OnBadLines,
    report: LoadReport,
) -> pl.DataFrame:
    """Read one member: fast polars path, then the line pass when that fails."""
    label = src.label(spec.member)
    text: str | None = None
    multi = len(spec.sep) > 1
    # Small members are read once; the big ratings file only when a path needs it.
    whole = None if spec.big else src.read_bytes(spec.member)
    if spec.header:
        head = src.head(spec.member) if whole is None else whole[:4096]
        got = head.decode("utf-8", "replace").split("\n", 1)[0].strip().lstrip("\ufeff")
        want = spec.sep.join(c.name for c in spec.cols)
        if got.replace('"', "") != want:
            raise DataFormatError(f"{label} line 1: expected the header {want!r}, got {got[:120]!r}")
    if spec.pattern is None:
        data: str | bytes
        path = src.file_path(spec.member)
        if spec.big and not multi and path is not None:
            data = str(path)  # polars memory-maps the file
        elif spec.big:
            # Ratings are ASCII digits: no decoding, and "::" swapped as bytes.
            data = src.read_bytes(spec.member)
            if multi:
                data = data.replace(spec.sep.encode(), _SEP.encode())
        else:
            text = decode(whole if whole is not None else src.read_bytes(spec.member), encoding, label, report)
            data = (text.replace(spec.sep, _SEP) if multi else text).encode()
        df = fast_read(data, spec, _SEP if multi else spec.sep)
        if df is not None:
            return df
    if text is None:
        text = decode(whole if whole is not None else src.read_bytes(spec.member), encoding, label, report)
    return line_read(text, spec, label=label, on_bad_lines=on_bad_lines, report=report)
