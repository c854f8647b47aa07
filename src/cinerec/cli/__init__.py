"""The `cinerec` command line: thin wrappers that parse, call the package, print.

Each area registers its commands from its own module (data, models, stats,
compress), so the CLI stays small per file and areas do not step on each other.
"""

from __future__ import annotations

import os
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
    from cinerec.cli import compress, data, experiments, models, serve, stats

    for module in (data, models, stats, compress, serve, experiments):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one clear line and exit 2, never a traceback.

    ``--debug`` (anywhere on the command line) or ``CINEREC_DEBUG=1`` re-raises them
    with the traceback instead.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("CINEREC_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        app(args=args, prog_name="cinerec", standalone_mode=True)
    except CinerecError as e:
        if debug:
            raise
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(2)
