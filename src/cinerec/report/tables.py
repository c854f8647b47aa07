"""One comparison table from several `Report`s: terminal (rich), markdown, CSV, JSON.

The best value of each quality/efficiency column is marked (bold, and a trailing
``*`` so it survives a plain-text terminal): lower is better for errors, times and
size, higher for everything else. Counts (``n_test``...) are descriptive, never marked.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from cinerec.evaluation.metrics import EvaluationError
from cinerec.evaluation.report import Report, metric_keys

#: Lower is better for these columns (errors, time, size).
LOWER_IS_BETTER = frozenset(
    {"rmse", "mae", "rmse_warm", "mae_warm", "fit_s", "topk_p50_ms", "topk_p99_ms", "model_bytes"}
)
#: Descriptive columns: no "best".
UNRANKED = frozenset({"n_test", "n_test_cold_user", "n_test_cold_item", "n_rank_users"})
FORMATS = ("table", "markdown", "csv", "json")


def format_value(key: str, v: Any) -> str:
    """Human formatting of one metric value (every table and report uses it)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key.startswith("n_") or key == "model_bytes":
        return f"{int(v):,}"
    if key == "predict_per_s":
        return f"{float(v):,.0f}"
    if key in ("fit_s", "topk_p50_ms", "topk_p99_ms"):
        return f"{float(v):.3g}" if float(v) < 100 else f"{float(v):,.0f}"
    return f"{float(v):.4f}"


def _lead(k: int) -> list[str]:
    return ["rmse", "mae", "r2", f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"hit@{k}", "fit_s"]


def terminal_columns(k: int) -> list[str]:
    """The default, narrower column set of the terminal table (the markdown, CSV and
    JSON outputs carry every metric)."""
    return [*_lead(k)[:3], "rmse_warm", *_lead(k)[3:], "topk_p50_ms"]


def columns(reports: Sequence[Report]) -> list[str]:
    """Metric columns of all reports: the headline ones first, then the rest, no repeats."""
    seen: dict[str, None] = {}
    for r in reports:
        for key in [*_lead(r.k), *metric_keys(r.k), *r.metrics]:
            seen.setdefault(key, None)
    return list(seen)


def rows(reports: Sequence[Report]) -> list[dict[str, Any]]:
    """One flat record per report: ``model``, every metric column, then identification."""
    cols = columns(reports)
    out = []
    for r in reports:
        rec = r.row()
        d: dict[str, Any] = {"model": r.model}
        d |= {c: rec.get(c) for c in cols}
        d |= {"dataset": r.dataset, "split": r.split, "seed": r.seed, "k": r.k}
        out.append(d)
    return out


def best_rows(records: Sequence[dict[str, Any]], cols: Sequence[str]) -> dict[str, set[int]]:
    """Per column, the indices of the records holding the best value (ties all marked).

    A column is ranked only when at least two records have a value for it.
    """
    best: dict[str, set[int]] = {}
    for c in cols:
        if c in UNRANKED or c == "model":
            continue
        vals = [(i, rec.get(c)) for i, rec in enumerate(records)]
        vals = [(i, float(v)) for i, v in vals if isinstance(v, (int, float)) and v == v]
        if len(vals) < 2:
            continue
        pick = min if c.split("@")[0] in LOWER_IS_BETTER else max
        target = pick(v for _, v in vals)
        best[c] = {i for i, v in vals if v == target}
    return best


def _check(reports: Sequence[Report]) -> None:
    if not reports:
        raise EvaluationError("no reports to tabulate: evaluate at least one model")


def rich_table(
    reports: Sequence[Report], cols: Sequence[str] | None = None, title: str | None = None
) -> Table:
    """A rich Table (best per column in bold with ``*``)."""
    _check(reports)
    cols = list(cols) if cols is not None else terminal_columns(reports[0].k)
    recs = rows(reports)
    best = best_rows(recs, cols)
    if title is None:
        r0 = reports[0]
        title = f"{r0.dataset} · {r0.split or 'split'} · K={r0.k} · threshold {r0.threshold:g}"
    table = Table(title=title)
    table.add_column("model", style="cyan", no_wrap=True)
    for c in cols:
        table.add_column(c, justify="right")
    for i, rec in enumerate(recs):
        cells = [str(rec["model"])]
        for c in cols:
            text = format_value(c, rec.get(c))
            cells.append(f"[bold]{text}*[/bold]" if i in best.get(c, ()) else text)
        table.add_row(*cells)
    return table


def to_text(reports: Sequence[Report], cols: Sequence[str] | None = None, width: int = 200) -> str:
    """The rich table rendered to plain text (for logs and tests)."""
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(rich_table(reports, cols))
    return console.export_text()


def to_markdown(reports: Sequence[Report], cols: Sequence[str] | None = None) -> str:
    """A GitHub markdown table, best per column in bold."""
    _check(reports)
    cols = list(cols) if cols is not None else columns(reports)
    recs = rows(reports)
    best = best_rows(recs, cols)
    lines = [
        "| model | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for i, rec in enumerate(recs):
        cells = []
        for c in cols:
            text = format_value(c, rec.get(c))
            cells.append(f"**{text}**" if i in best.get(c, ()) else text)
        lines.append(f"| {rec['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(reports: Sequence[Report]) -> str:
    """CSV with a header; raw numbers, empty cells for missing values."""
    _check(reports)
    recs = rows(reports)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(recs[0]), lineterminator="\n")
    w.writeheader()
    for rec in recs:
        w.writerow({key: "" if v is None else v for key, v in rec.items()})
    return buf.getvalue()


def to_json(reports: Sequence[Report], indent: int | None = 2) -> str:
    """JSON list of objects: model, rmse, mae, r2, precision@K, recall@K, ndcg@K, hit@K,
    fit_s, then every other metric and dataset/split/seed/k (null where missing); ``seed``
    is the split's seed."""
    _check(reports)
    return json.dumps(rows(reports), indent=indent)


def report_markdown(report: Report) -> str:
    """One report as a metric | value table with a title line (split and its seed)."""
    lines = [
        f"### {report.model} on {report.dataset} ({report.split or 'split'}, seed {report.seed})",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {format_value(key, v)} |" for key, v in report.metrics.items()]
    fb = report.info.get("fallback")
    if fb:
        lines += ["", "Test rows by prediction source: " + ", ".join(f"{n}: {c}" for n, c in fb.items())]
    return "\n".join(lines) + "\n"


def render(reports: Sequence[Report], fmt: str = "table", cols: Sequence[str] | None = None) -> str:
    """Render in ``fmt`` (table, markdown, csv, json) as a string."""
    if fmt == "table":
        return to_text(reports, cols)
    if fmt == "markdown":
        return to_markdown(reports, cols)
    if fmt == "csv":
        return to_csv(reports)
    if fmt == "json":
        return to_json(reports)
    raise EvaluationError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
