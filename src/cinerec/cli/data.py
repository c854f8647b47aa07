"""`cinerec data ...`: list, fetch, info and synth. Thin: parse, call the package, print."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import typer

from cinerec.errors import ConfigError

data_app = typer.Typer(
    help="MovieLens releases: list, fetch, inspect, generate synthetic ones.",
    no_args_is_help=True,
)

_SUFFIX = {"": 1, "K": 1_000, "M": 1_000_000, "G": 1_000_000_000}


def parse_count(text: str) -> int:
    """``"25M"`` -> 25_000_000, ``"162k"`` -> 162_000, ``"2.5M"``, ``"1_000"``."""
    m = re.fullmatch(r"\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    if not m:
        raise ConfigError(f"cannot read {text!r} as a count; use e.g. 100000, 162k or 25M")
    value = float(m.group(1).replace("_", "")) * _SUFFIX[m.group(2).upper()]
    if value != int(value) or value <= 0:
        raise ConfigError(f"{text!r} is not a positive whole count")
    return int(value)


def _console():  # noqa: ANN202 (rich import kept lazy for CLI start-up time)
    from rich.console import Console

    return Console()


@data_app.command("list")
def list_releases() -> None:
    """List the MovieLens releases, their size and whether they are in the data home."""
    from rich.table import Table

    from cinerec.data.store import RELEASES, data_home, find_local

    home = data_home()
    table = Table(title=f"MovieLens releases (data home: {home})")
    for col in ("name", "size", "local", "description"):
        table.add_column(col, justify="right" if col == "size" else "left")
    for name, rel in RELEASES.items():
        local = find_local(name, home)
        table.add_row(
            name,
            f"{rel.size_mb:,.0f} MB" if rel.size_mb >= 1 else "<1 MB",
            f"[green]{local.name}[/]" if local else "[dim]-[/]",
            rel.description,
        )
    _console().print(table)


@data_app.command("fetch")
def fetch(
    name: str = typer.Argument(..., help="Release (ml-25m ...) or IMDb file (title.basics ...)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    force: bool = typer.Option(False, "--force", help="Download even if present."),
) -> None:
    """Download a release into the data home (checksum-verified, atomic)."""
    from cinerec.data.store import IMDB_FILES, fetch_imdb, fetch_movielens

    if name in IMDB_FILES:
        path = fetch_imdb(name, progress=not quiet, force=force)
    else:
        path = fetch_movielens(name, progress=not quiet, force=force)
    if not quiet:
        _console().print(f"{name}: [green]{path}[/]")


def _histogram(ratings) -> list[tuple[float, int]]:  # noqa: ANN001
    import numpy as np

    values, counts = np.unique(ratings, return_counts=True)
    return [(float(v), int(c)) for v, c in zip(values, counts, strict=True)]


@data_app.command("info")
def info(
    name_or_path: str = typer.Argument(..., help="Release name or path to a folder/zip."),
    split: str | None = typer.Option(None, "--split", help="Split spec to report cold-start shares for."),
    seed: int = typer.Option(42, "--seed", help="Seed of the split (as for train/compare)."),
    tmdb: Path | None = typer.Option(None, "--tmdb", help="TMDB file (tmdb_5000_movies.csv format)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Counts, density, rating histogram, time span, cold-start share, TMDB match rate."""
    from rich.table import Table

    from cinerec.data import load_dataset
    from cinerec.data.store import data_home

    ds = load_dataset(name_or_path, progress=not quiet)
    d = ds.describe()
    con = _console()
    t = Table(title=f"{ds.name} ({ds.source.get('format', '?')})", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("ratings", f"{d['ratings']:,}")
    t.add_row("users", f"{d['users']:,}")
    t.add_row("rated movies", f"{d['rated_items']:,}")
    t.add_row("movies", f"{d['items']:,}")
    t.add_row("density", f"{d['density']:.4%}")
    t.add_row("rating scale", f"{ds.rating_scale[0]:g}-{ds.rating_scale[1]:g}")
    if d["ratings"]:
        t.add_row("mean rating", f"{d['rating_mean']:.3f}")
        t0 = datetime.fromtimestamp(d["time_min"], UTC).date()
        t1 = datetime.fromtimestamp(d["time_max"], UTC).date()
        t.add_row("time span", f"{t0} .. {t1}")
    if ds.genre_names:
        t.add_row("genres", f"{len(ds.genre_names)}")
    if ds.tags is not None:
        t.add_row("tag applications", f"{ds.tags.height:,}")
    con.print(t)

    if d["ratings"]:
        h = Table(title="rating histogram")
        h.add_column("rating", justify="right")
        h.add_column("count", justify="right")
        h.add_column("share", justify="right")
        h.add_column("")
        hist = _histogram(ds.ratings)
        top = max(c for _, c in hist)
        for v, c in hist:
            h.add_row(f"{v:g}", f"{c:,}", f"{c / d['ratings']:.1%}", "#" * max(1, round(30 * c / top)))
        con.print(h)

    if split:
        from cinerec.data.splits import make_split

        sp = make_split(ds, split, seed)
        share = sp.cold_share()
        seeded = f" (seed {sp.seed})" if sp.seed is not None else ""
        s = Table(title=f"split {sp.spec!r}{seeded}")
        for col in ("part", "ratings", "share"):
            s.add_column(col, justify="right" if col != "part" else "left")
        for part, sub in (("train", sp.train), ("valid", sp.valid), ("test", sp.test)):
            if sub is not None:
                s.add_row(part, f"{sub.n_ratings:,}", f"{sub.n_ratings / max(d['ratings'], 1):.1%}")
        s.add_row("test rows, cold user", "", f"{share['cold_user_rows']:.2%}")
        s.add_row("test rows, cold item", "", f"{share['cold_item_rows']:.2%}")
        con.print(s)

    tmdb_path = tmdb if tmdb is not None else data_home() / "tmdb_5000_movies.csv"
    if tmdb is not None or tmdb_path.is_file():
        from cinerec.data.metadata.tmdb import join_tmdb, read_tmdb

        if ds.items_meta is None or "tmdbId" not in ds.items_meta.columns:
            con.print(f"TMDB: {ds.name} has no links.csv, no join possible")
        else:
            _, report = join_tmdb(ds, read_tmdb(tmdb_path))
            con.print(
                f"TMDB join ({tmdb_path.name}): matched {report.matched:,} of {report.total:,} "
                f"movies ({report.match_rate:.1%}); {report.with_key:,} have a tmdbId"
            )


@data_app.command("synth")
def synth(
    ratings: str = typer.Option("25M", "--ratings", help="Number of ratings (suffixes K, M)."),
    users: str = typer.Option("162k", "--users", help="Number of users."),
    items: str = typer.Option("62k", "--items", help="Number of movies."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(..., "--out", help="Folder to write the release to."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    fmt: str = typer.Option(
        "ml-25m", "--format", help="File format: ml-25m, or ml-100k / ml-1m (with user demographics)."
    ),
) -> None:
    """Generate a synthetic release in the ml-25m (default), ml-100k or ml-1m file format."""
    from cinerec.data import synthetic

    extra = {} if fmt == "ml-25m" else {"format": fmt}
    path = synthetic.generate(
        out, parse_count(ratings), parse_count(users), parse_count(items), seed=seed, progress=not quiet,
        **extra,
    )
    if not quiet:
        _console().print(f"synthetic release: [green]{path}[/]")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(data_app, name="data")
