"""`cinerec compress`: compress a saved model's factor/embedding tables into a new artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cinerec.errors import ArtifactError, ConfigError

_NEEDS_DATA = ("qat-int8", "qat-int4", "hash", "qr")


def _train_valid(
    model_dir: Path, data: str | None, split: str | None, seed: int | None
) -> tuple[Any, Any, Any]:
    """(model, train, valid): the artifact and the train/valid parts of the split it was
    trained on, rebuilt from its provenance (``--data/--split/--seed`` override it)."""
    from cinerec import artifacts, experiment

    if data is None and split is None and seed is None:
        try:
            model, ctx = experiment.load_artifact(model_dir, progress=False)
        except ArtifactError as e:
            raise ConfigError(
                f"this method retrains the model and {model_dir}'s provenance cannot rebuild "
                f"its training data ({e}); pass --data NAME --split SPEC [--seed N]"
            ) from None
        return model, ctx.split.train, ctx.split.valid
    model = artifacts.load_model(model_dir)
    prov = getattr(model, "provenance", {}) or {}
    name, spec = data or prov.get("data"), split or prov.get("split")
    if not name or not spec:
        raise ConfigError(
            "this method retrains the model and the artifact's provenance does not say which "
            "data/split it was trained on; pass --data NAME --split SPEC [--seed N]"
        )
    seed = seed if seed is not None else int(prov.get("seed", 42))
    ctx = experiment.load_context(name, spec, seed, progress=False)
    return model, ctx.split.train, ctx.split.valid


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("compress")
    def compress(
        model_dir: Path = typer.Argument(..., help="A saved model folder (svd, svdpp, als, ials, mf-torch, ncf, autorec)."),
        method: str = typer.Option(..., "--method", help="int8|int4|qat-int8|qat-int4|pq|rq|hash|qr"),
        out: Path = typer.Option(..., "--out", help="Folder for the compressed artifact."),
        bits: int | None = typer.Option(None, "--bits", help="4 or 8 (int/qat methods)."),
        subvectors: int = typer.Option(8, "--subvectors", help="PQ sub-vectors M per row."),
        stages: int = typer.Option(4, "--stages", help="RQ stages L."),
        centroids: int = typer.Option(256, "--centroids", help="PQ/RQ centroids per codebook (<=256)."),
        min_rows: int | None = typer.Option(
            None, "--min-rows",
            help="PQ/RQ: tables with fewer rows are quantized row-wise instead (default 8 x centroids).",
        ),
        small_table_bits: int = typer.Option(8, "--small-table-bits", help="PQ/RQ: 8 or 4 bits for those tables."),
        epochs: int = typer.Option(5, "--epochs", help="QAT / hashing retraining epochs; PQ/RQ codebook fine-tuning epochs (0 = none)."),
        buckets: int | None = typer.Option(None, "--buckets", help="hash/qr rows per table (default n/4)."),
        lr: float | None = typer.Option(None, "--lr", help="Learning rate of the fine-tuning stage."),
        data: str | None = typer.Option(None, "--data", help="Override the data set of the provenance."),
        split: str | None = typer.Option(None, "--split", help="Override the split spec of the provenance."),
        seed: int | None = typer.Option(None, "--seed", help="Override the split seed of the provenance."),
        force: bool = typer.Option(False, "--force", help="Replace an existing artifact at --out."),
    ) -> None:
        """Compress MODEL_DIR's embedding tables and save the result to --out."""
        from cinerec import artifacts
        from cinerec.compress.api import compress_model, embedding_bytes

        opts: dict[str, Any] = {}
        if bits is not None:
            opts["bits"] = bits
        if lr is not None:
            opts["lr"] = lr
        if method in ("pq", "rq"):
            opts |= {"centroids": centroids, "finetune_epochs": epochs, "small_table_bits": small_table_bits}
            if min_rows is not None:
                opts["min_rows"] = min_rows
            opts |= {"subvectors": subvectors} if method == "pq" else {"stages": stages}
        elif method in _NEEDS_DATA:
            opts["epochs"] = epochs
            if buckets is not None:
                opts["buckets"] = buckets
        artifacts.check_output(out, overwrite=force)  # before any work
        train = valid = None
        if method in _NEEDS_DATA or (method in ("pq", "rq") and epochs > 0):
            model, train, valid = _train_valid(model_dir, data, split, seed)
        else:
            model = artifacts.load_model(model_dir)
        compress_model(model, method, train=train, valid=valid, **opts)
        metrics = artifacts.read_manifest(model_dir).get("metrics") or {}
        artifacts.save_model(model, out, overwrite=force, metrics={"before_compression": metrics})
        sizes = embedding_bytes(model)
        before, after = artifacts.artifact_bytes(model_dir), artifacts.artifact_bytes(out)
        typer.echo(
            f"embedding tables: {sizes['fp32_bytes']:,} -> {sizes['compressed_bytes']:,} bytes "
            f"({sizes['ratio']:.2f}x)\n"
            f"artifact on disk: {before:,} -> {after:,} bytes ({before / max(after, 1):.2f}x)\n"
            f"saved to {out}"
        )
