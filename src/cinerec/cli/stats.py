"""`cinerec` commands for the stats area: ``cinerec stats DATASET --out DIR``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("stats")
    def stats(
        dataset: str = typer.Argument(..., help="Data set name (e.g. ml-latest-small) or path."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for markdown, CSV and PNGs."),
        min_count: int = typer.Option(
            10, "--min-count", min=1, help="Minimum ratings per movie/user to be included."
        ),
        ddof: int = typer.Option(
            0, "--ddof", min=0, max=1, help="0: population sd (paper 000), 1: sample sd."
        ),
        holiday: str = typer.Option(
            "dec15-jan5", "--holiday", help="Holiday window: dec15-jan5 or december."
        ),
        figures: bool = typer.Option(True, "--figures/--no-figures", help="Write PNG figures."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the output paths."),
    ) -> None:
        """Variance analysis of paper 000: tiers, genres, correlation, users, holidays."""
        from rich.console import Console

        from cinerec.data import load_dataset
        from cinerec.stats.analysis import analyze
        from cinerec.stats.report import print_tables, write_analysis, write_figures
        console = Console(quiet=quiet)
        with console.status(f"loading {dataset}"):
            ds = load_dataset(dataset)
        with console.status(f"analysing {ds.n_ratings:,} ratings"):
            result = analyze(ds, min_count=min_count, ddof=ddof, holiday_window=holiday)
        paths = write_analysis(result, out)
        if figures:
            paths += write_figures(result, out)
        print_tables(result, console)
        for p in paths:
            typer.echo(str(p)) if quiet else console.print(f"wrote {p}")
