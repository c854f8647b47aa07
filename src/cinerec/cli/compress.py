"""`cinerec compress`: compress a saved torch model's embedding tables into a new artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cinerec.errors import ConfigError

_NEEDS_DATA = ("qat-int8", "qat-int4", "hash", "qr")


def _train_valid(model: Any, data: str | None, split: str | None, seed: int | None) -> tuple[Any, Any]:
    """Rebuild the train/valid part of the split the model was trained on (provenance)."""
    prov = getattr(model, "provenance", {}) or {}
    name = data or prov.get("data") or prov.get("dataset") or prov.get("data_name")
    spec = split or prov.get("split") or prov.get("split_spec")
    seed = seed if seed is not None else prov.get("seed", prov.get("split_seed"))
    if not name or not spec:
        raise ConfigError(
            "this method retrains the model and the artifact's provenance does not say which "
            "data/split it was trained on; pass --data NAME --split SPEC [--seed N]"
        )
    from cinerec.data import load_dataset
    from cinerec.data import splits as splits_mod

    make_split = getattr(splits_mod, "make_split", None)
    if make_split is None:  # pragma: no cover - written by the data area
        raise ConfigError("cinerec.data.splits.make_split is not available in this install")
    sp = make_split(load_dataset(name), spec, seed=int(seed) if seed is not None else 42)
    return sp.train, sp.valid


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""

    @app.command("compress")
    def compress(
        model_dir: Path = typer.Argument(..., help="A saved torch model folder (mf-torch, ncf, autorec)."),
        method: str = typer.Option(..., "--method", help="int8|int4|qat-int8|qat-int4|pq|rq|hash|qr"),
        out: Path = typer.Option(..., "--out", help="Folder for the compressed artifact."),
        bits: int | None = typer.Option(None, "--bits", help="4 or 8 (int/qat methods)."),
        subvectors: int = typer.Option(8, "--subvectors", help="PQ sub-vectors M per row."),
        stages: int = typer.Option(4, "--stages", help="RQ stages L."),
        centroids: int = typer.Option(256, "--centroids", help="PQ/RQ centroids per codebook (<=256)."),
        epochs: int = typer.Option(5, "--epochs", help="QAT / hashing retraining epochs; PQ/RQ codebook fine-tuning epochs (0 = none)."),
        buckets: int | None = typer.Option(None, "--buckets", help="hash/qr rows per table (default n/4)."),
        lr: float | None = typer.Option(None, "--lr", help="Learning rate of the fine-tuning stage."),
        data: str | None = typer.Option(None, "--data", help="Override the data set of the provenance."),
        split: str | None = typer.Option(None, "--split", help="Override the split spec of the provenance."),
        seed: int | None = typer.Option(None, "--seed", help="Override the split seed of the provenance."),
    ) -> None:
        """Compress MODEL_DIR's embedding tables and save the result to --out."""
        from cinerec.compress.api import compress_model, embedding_bytes
        from cinerec.models.artifact import artifact_bytes
        from cinerec.models.base import Recommender

        model = Recommender.load(model_dir)
        opts: dict[str, Any] = {}
        if bits is not None:
            opts["bits"] = bits
        if lr is not None:
            opts["lr"] = lr
        if method in ("pq", "rq"):
            opts |= {"centroids": centroids, "finetune_epochs": epochs}
            opts |= {"subvectors": subvectors} if method == "pq" else {"stages": stages}
        elif method in _NEEDS_DATA:
            opts["epochs"] = epochs
            if buckets is not None:
                opts["buckets"] = buckets
        train = valid = None
        if method in _NEEDS_DATA or (method in ("pq", "rq") and epochs > 0):
            train, valid = _train_valid(model, data, split, seed)
        compress_model(model, method, train=train, valid=valid, **opts)
        model.save(out)
        sizes = embedding_bytes(model)
        before, after = artifact_bytes(model_dir), artifact_bytes(out)
        typer.echo(
            f"embedding tables: {sizes['fp32_bytes']:,} -> {sizes['compressed_bytes']:,} bytes "
            f"({sizes['ratio']:.2f}x)\n"
            f"artifact on disk: {before:,} -> {after:,} bytes ({before / max(after, 1):.2f}x)\n"
            f"saved to {out}"
        )
