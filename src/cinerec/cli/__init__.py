"""The `cinerec` command line: thin wrappers that parse, call the package, print.

Each area registers its commands from its own module (data, models, stats,
compress), so the CLI stays small per file and areas do not step on each other.
"""

from __future__ import annotations

import sys

import typer

from cinerec.errors import CinerecError

app = typer.Typer(
    name="cinerec",
    help="Movie recommendation you can study, trust and run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the cinerec version."""
    from cinerec import __version__

    typer.echo(__version__)


def _register_all() -> None:
    from cinerec.cli import compress, data, models, stats

    for module in (data, models, stats, compress):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one clear line and exit 2, never a traceback."""
    try:
        app(args=argv, prog_name="cinerec")
    except CinerecError as e:
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {e}", highlight=False)
        sys.exit(2)
