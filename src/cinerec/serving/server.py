"""Running the service as a process: the store, the service, REST on uvicorn, gRPC
beside it, hot reload on SIGHUP and a graceful stop on SIGTERM/SIGINT.

`ServerSettings` holds what `cinerec serve` takes from flags or the environment
(``CINEREC_API_KEY``, ``CINEREC_DB``, ``CINEREC_INDEX``, ...); `run` blocks until the
process is told to stop, finishing the requests in flight first.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinerec.serving.service import RecommendationService, ServiceConfig

log = logging.getLogger("cinerec.serving")


@dataclass
class ServerSettings:
    artifacts: dict[str, Path]
    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int | None = None
    db: str | None = None  # None: feedback.db next to the first artifact; "none": no store
    api_key: str | None = None
    index: str = "exact"
    index_params: dict[str, Any] = field(default_factory=dict)
    pipelines: dict[str, tuple[str, int]] = field(default_factory=dict)
    default_model: str | None = None
    max_body_bytes: int = 1 << 20
    access_log: bool = True
    workers_threads: int = 64
    log_level: str = "info"

    def store_url(self) -> str | None:
        db = self.db if self.db is not None else os.environ.get("CINEREC_DB")
        if db is not None and db.lower() == "none":
            return None
        if db:
            return db
        first = next(iter(self.artifacts.values()))
        return str(Path(first).resolve().parent / "feedback.db")


def build_service(settings: ServerSettings) -> RecommendationService:
    from cinerec.serving.store import FeedbackStore

    url = settings.store_url()
    store = FeedbackStore.open(url) if url else None
    config = ServiceConfig(
        artifacts=settings.artifacts,
        index=settings.index,
        index_params=settings.index_params,
        pipelines=settings.pipelines,
        default_model=settings.default_model,
    )
    return RecommendationService(config, store=store)


def _one_math_thread_per_request() -> None:
    """Requests run in parallel threads: BLAS and torch each spinning up a pool per
    request oversubscribes the cores (measured: 15 ms instead of 0.5 ms per svd list on
    2 busy cores), so each request's maths runs on its own thread."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    if "torch" in sys.modules or any(m.startswith("cinerec.models.torch") for m in sys.modules):
        import torch

        torch.set_num_threads(1)


def _freeze_loaded_objects() -> None:
    """Move everything loaded so far (models, catalogues, item cards: millions of
    objects) out of the garbage collector's sight: a full collection otherwise walks
    them all, a pause of tens of milliseconds in the middle of requests."""
    gc.collect()
    gc.freeze()


def _exit_cleanly(*_: Any) -> None:
    raise SystemExit(0)


def run(settings: ServerSettings, service: RecommendationService | None = None) -> None:
    """Serve until SIGTERM/SIGINT; SIGHUP reloads the models."""
    import uvicorn

    from cinerec.serving.rest import configure_logging, create_app

    configure_logging(settings.log_level.upper())
    service = service or build_service(settings)
    _freeze_loaded_objects()
    _one_math_thread_per_request()
    app = create_app(service, api_key=settings.api_key, max_body_bytes=settings.max_body_bytes,
                     access_log=settings.access_log, threads=settings.workers_threads)
    grpc_server = None
    if settings.grpc_port is not None:
        from cinerec.serving.grpc.server import start_grpc_server

        grpc_server = start_grpc_server(service, settings.host, settings.grpc_port, api_key=settings.api_key,
                                        max_workers=settings.workers_threads)

    def reload_in_background(*_: Any) -> None:
        def work() -> None:
            try:
                info = service.reload()
                log.info(f"reloaded {len(info['models'])} model(s) on SIGHUP")
            except Exception as e:  # a broken artifact: keep serving the old models
                log.error(f"reload on SIGHUP failed, still serving the old models: {e}")

        threading.Thread(target=work, name="cinerec-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, reload_in_background)
    # uvicorn finishes the requests in flight on SIGTERM/SIGINT, then raises the signal
    # again under the handler it found: make that a clean exit (status 0) after cleanup.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    names = ", ".join(m["name"] for m in service.models())
    log.info(f"serving {names} on http://{settings.host}:{settings.port}"
             + (f" and grpc {settings.host}:{grpc_server.cinerec_port}" if grpc_server else ""))

    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=10, lifespan="on")
    try:
        uvicorn.Server(config).run()
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=5).wait()
        service.close()
