"""Rendering of evaluation reports: comparison tables (tables.py) and plots (plots.py)."""

from cinerec.report.tables import (
    best_rows,
    columns,
    render,
    rich_table,
    rows,
    to_csv,
    to_json,
    to_markdown,
    to_text,
)

__all__ = [
    "best_rows",
    "columns",
    "render",
    "rich_table",
    "rows",
    "to_csv",
    "to_json",
    "to_markdown",
    "to_text",
]
