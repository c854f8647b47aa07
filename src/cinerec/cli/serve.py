"""`cinerec serve` (REST + gRPC over saved models) and `cinerec feedback export`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cinerec.errors import ConfigError


def _need_serve_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import sqlalchemy  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            f"serving needs the 'serve' extra ({e.name} is missing): pip install 'cinerec[serve]'"
        ) from None


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        run_dirs: Annotated[list[str], typer.Argument(help="model folders to serve, RUN_DIR or NAME=RUN_DIR")],
        host: Annotated[str, typer.Option(envvar="CINEREC_HOST")] = "127.0.0.1",
        port: Annotated[int, typer.Option(envvar="CINEREC_PORT")] = 8000,
        grpc_port: Annotated[int | None, typer.Option("--grpc-port", envvar="CINEREC_GRPC_PORT",
                                                      help="also serve gRPC on this port")] = None,
        db: Annotated[str | None, typer.Option(
            envvar="CINEREC_DB",
            help="feedback store: a SQLite path or URL, postgresql://...; default feedback.db "
                 "next to the first model; 'none' for no store")] = None,
        api_key: Annotated[str | None, typer.Option(
            envvar="CINEREC_API_KEY", help="key for the write endpoints (ratings, reload)")] = None,
        index: Annotated[str, typer.Option(
            envvar="CINEREC_INDEX", help="retrieval: exact (default), hnsw, ivfpq or flat (faiss)")] = "exact",
        pipeline: Annotated[list[str] | None, typer.Option(
            help="two-stage ranking RANKER=RETRIEVER:N, e.g. ncf=svd:500 (repeatable)")] = None,
        default_model: Annotated[str | None, typer.Option(help="model used when a request names none")] = None,
        max_body: Annotated[int, typer.Option(help="largest request body in bytes")] = 1 << 20,
        threads: Annotated[int, typer.Option(help="threads waiting on requests (REST thread pool, gRPC)")] = 64,
        access_log: Annotated[bool, typer.Option(help="one JSON line per request on stderr")] = True,
    ) -> None:
        """Serve saved models over REST (and gRPC with --grpc-port), with the web page at /.

        SIGHUP or POST /v1/admin/reload reloads the models; SIGTERM stops after the
        requests in flight."""
        _need_serve_extra()
        from cinerec._util import validate
        from cinerec.serving.server import ServerSettings, run
        from cinerec.serving.service import parse_artifact_args, parse_pipeline

        settings = ServerSettings(
            artifacts=parse_artifact_args(run_dirs),
            host=host,
            port=validate.integer("--port", port, lo=0, hi=65535),
            grpc_port=None if grpc_port is None else validate.integer("--grpc-port", grpc_port, lo=0, hi=65535),
            db=db,
            api_key=api_key,
            index=index,
            pipelines=dict(parse_pipeline(p) for p in pipeline or []),
            default_model=default_model,
            max_body_bytes=validate.integer("--max-body", max_body, lo=1024),
            access_log=access_log,
            workers_threads=validate.integer("--threads", threads, lo=1, hi=256),
        )
        run(settings)

    feedback = typer.Typer(help="The feedback store of `cinerec serve`.", no_args_is_help=True)
    app.add_typer(feedback, name="feedback")

    @feedback.command("export")
    def export_cmd(
        out: Annotated[Path, typer.Argument(help="CSV to write (MovieLens ratings.csv format)")],
        db: Annotated[str | None, typer.Option(envvar="CINEREC_DB", help="SQLite path or database URL")] = None,
    ) -> None:
        """Write the stored ratings as userId,movieId,rating,timestamp, for `cinerec train`."""
        _need_serve_extra()
        from cinerec.serving.store import FeedbackStore

        if not db:
            raise ConfigError("give --db (the path or URL `cinerec serve` stored feedback in)")
        if "://" not in db and not os.path.exists(db):
            raise ConfigError(f"--db {db}: no such file")
        with FeedbackStore.open(db) as store:
            n = store.export_csv(out)
        typer.echo(f"wrote {n:,} ratings to {out}")
