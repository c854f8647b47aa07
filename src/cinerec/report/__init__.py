"""All rendering of evaluation `Report`s: comparison tables, one report as markdown,
value formatting (tables.py) and plots (plots.py)."""

from cinerec.report.tables import (
    best_rows,
    columns,
    format_value,
    render,
    report_markdown,
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
    "format_value",
    "render",
    "report_markdown",
    "rich_table",
    "rows",
    "to_csv",
    "to_json",
    "to_markdown",
    "to_text",
]
