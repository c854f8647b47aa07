"""Experiments end to end: data + split + model -> fitted model, report, artifact.

The CLI (`cinerec train | evaluate | recommend | compare`), the demo and the
benchmarks all go through these functions, so an artifact trained from the command
line and one trained from Python carry the same provenance and can be re-evaluated
the same way: `evaluate_artifact` rebuilds the exact test part from the manifest and
checks it is the same data (fingerprint and id maps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cinerec import artifacts
from cinerec._util import validate
from cinerec.data.catalogue import Catalogue
from cinerec.data.dataset import Dataset
from cinerec.data.splits import Split
from cinerec.errors import ArtifactError, ConfigError
from cinerec.models.base import Recommender
from cinerec.models.query import History
from cinerec.models.registry import create_model
from cinerec.train.options import FitOptions, fit_options


@dataclass
class Context:
    """A data set and its split, rebuilt from names so they can be recorded."""

    data: str
    dataset: Dataset
    split: Split
    seed: int


#: Data names that are no MovieLens release but a task built from another file of the
#: data home: ``tmdb-votes`` is paper 003's (`cinerec.data.metadata.tmdb_vote_dataset`).
DERIVED_DATA = ("tmdb-votes",)


def load_data(data: str, progress: bool = True) -> Dataset:
    """A MovieLens release or folder (`cinerec.data.load_dataset`), or a `DERIVED_DATA` name."""
    from cinerec.data import load_dataset

    if data == "tmdb-votes":
        from cinerec.data.metadata import read_tmdb, tmdb_vote_dataset
        from cinerec.data.metadata.enrich import TMDB_FILE
        from cinerec.data.store import data_home
        from cinerec.errors import DatasetUnavailable

        path = data_home() / TMDB_FILE
        if not path.is_file():
            raise DatasetUnavailable(f"data 'tmdb-votes' is built from {path}, which does not exist; "
                                     f"save the Kaggle '{TMDB_FILE}' there")
        return tmdb_vote_dataset(read_tmdb(path))
    return load_dataset(data, progress=progress)


def load_context(data: str, split_spec: str, seed: int = 42, progress: bool = True) -> Context:
    from cinerec.data.splits import make_split

    seed = validate.seed(seed)
    dataset = load_data(data, progress=progress)
    return Context(data=data, dataset=dataset, split=make_split(dataset, split_spec, seed=seed), seed=seed)


def parse_overrides(pairs: list[str] | None, config_file: str | Path | None = None) -> dict[str, Any]:
    """Model hyper-parameters from a JSON file (an object) and ``key=value`` pairs
    (values parsed as JSON when they can be: ``n_factors=64``, ``similarity="pearson"``).
    NaN and infinities are refused here, whatever the model."""
    out: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {path} must hold a JSON object of hyper-parameters "
                f'(e.g. {{"n_factors": 64}}), got a {type(loaded).__name__}'
            )
        out.update(loaded)
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value, parse_constant=_refuse_constant)
        except ValueError as e:
            if "not a finite number" in str(e):
                raise ConfigError(f"--set {pair!r}: {e}") from None
            out[key.strip()] = value
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def with_model_metadata(ctx: Context, model: Recommender) -> Context:
    """``ctx`` with the metadata sources the model's features need (TMDB, IMDb) joined
    onto the item table of the data set and of every split part; unchanged when none
    is needed or all are there."""
    import dataclasses

    from cinerec.data.metadata import has_metadata, with_metadata

    need = getattr(model, "required_metadata", lambda: ())()
    missing = [s for s in need if not has_metadata(ctx.dataset, s)]
    if not missing:
        return ctx
    dataset = with_metadata(ctx.dataset, missing)

    def part(d: Dataset | None) -> Dataset | None:
        return None if d is None else dataclasses.replace(d, items_meta=dataset.items_meta)

    split = dataclasses.replace(ctx.split, train=part(ctx.split.train), test=part(ctx.split.test), valid=part(ctx.split.valid))
    return dataclasses.replace(ctx, dataset=dataset, split=split)


def provenance(ctx: Context) -> dict[str, Any]:
    return {
        "data": ctx.data,
        "data_fingerprint": ctx.dataset.fingerprint,
        "split": ctx.split.spec,
        "seed": ctx.seed,
    }


def train(
    model_name: str,
    ctx: Context,
    config: dict[str, Any] | None = None,
    out: str | Path | None = None,
    evaluate_after: bool = True,
    k: int = 10,
    progress: bool = True,
    options: FitOptions | dict[str, Any] | None = None,
    overwrite: bool = False,
):
    """Fit ``model_name`` on ``ctx``; evaluate on its test part; save when ``out``.

    ``out`` is checked before fitting (`artifacts.check_output`), so a path that would
    be refused costs no training time."""
    from cinerec.evaluation.protocol import evaluate

    if out is not None:
        artifacts.check_output(out, overwrite=overwrite)
    model = create_model(model_name, config or {})
    ctx = with_model_metadata(ctx, model)
    model.provenance = provenance(ctx)
    opts = fit_options(options, progress=progress) if options is None or isinstance(options, dict) else options
    if evaluate_after:
        report = evaluate(model, ctx.split, k=k, fit=True, progress=progress, options=opts)
        metrics = report.metrics
    else:
        model.fit(ctx.split.train, ctx.split.valid, options=opts)
        report, metrics = None, {}
    if out is not None:
        artifacts.save_model(
            model, out, catalogue=Catalogue.from_dataset(ctx.dataset), metrics=metrics, overwrite=overwrite
        )
    return model, report


def load_artifact(path: str | Path, progress: bool = True) -> tuple[Recommender, Context]:
    """Load a model folder and rebuild the data set and split it was trained on.

    The data found now must be the data the model saw: the recorded fingerprint must
    match, and so must the id maps stored in the artifact."""
    model = artifacts.load_model(path)
    prov = model.provenance
    missing = [key for key in ("data", "split", "seed", "data_fingerprint") if key not in prov]
    if missing:
        raise ArtifactError(
            f"{path}: the manifest does not record {', '.join(missing)}, so the data it was "
            "trained on cannot be rebuilt and verified; re-train with `cinerec train`"
        )
    ctx = load_context(prov["data"], prov["split"], prov["seed"], progress=progress)
    if prov["data_fingerprint"] != ctx.dataset.fingerprint:
        raise ArtifactError(
            f"{path} was trained on {prov['data']!r} with fingerprint {prov['data_fingerprint']}, "
            f"but the data set found now has fingerprint {ctx.dataset.fingerprint}: the files changed"
        )
    cat = model.catalogue
    if cat is not None and (cat.user_ids != ctx.dataset.user_ids or cat.item_ids != ctx.dataset.item_ids):
        raise ArtifactError(f"{path}: the stored id maps differ from those of {prov['data']!r} now")
    return model, ctx


def evaluate_artifact(path: str | Path, k: int = 10, progress: bool = True):
    """Re-evaluate a saved model on the exact test part of its manifest."""
    from cinerec.evaluation.protocol import evaluate

    model, ctx = load_artifact(path, progress=progress)
    return evaluate(model, ctx.split, k=k, fit=False, progress=progress)


def upgrade(path: str | Path, progress: bool = True) -> Path:
    """Rewrite a format-1 artifact as format 2 (ids, item table, training ratings),
    rebuilding its data from the provenance (the data home must hold it)."""
    manifest = artifacts.read_manifest(path)
    if manifest["format"] == artifacts.FORMAT_VERSION:
        raise ConfigError(f"{path} is already a format-{artifacts.FORMAT_VERSION} artifact")
    model, ctx = load_artifact(path, progress=progress)
    train_csr = ctx.split.train.to_csr()
    if not np.array_equal(train_csr.indices, model.seen_indices_):
        raise ArtifactError(f"{path}: the rebuilt training part does not match the artifact's seen items")
    return artifacts.upgrade_artifact(path, Catalogue.from_dataset(ctx.dataset), train_csr.data)


def compare(
    models: list[str | Recommender],
    ctx: Context,
    configs: dict[str, dict[str, Any]] | None = None,
    k: int = 10,
    progress: bool = True,
    fitted: dict[str, Recommender] | None = None,
    options: FitOptions | dict[str, Any] | None = None,
):
    """Fit and evaluate several models (names or unfitted instances) on one split;
    a list of Reports. Pass a dict as ``fitted`` to get the fitted models back."""
    from cinerec.evaluation.protocol import evaluate

    configs = configs or {}
    opts = fit_options(options, progress=progress) if options is None or isinstance(options, dict) else options
    reports = []
    for item in models:
        model = create_model(item, configs.get(item, {})) if isinstance(item, str) else item
        model.provenance = provenance(ctx)
        reports.append(evaluate(model, ctx.split, k=k, fit=True, progress=progress, options=opts))
        if fitted is not None:
            fitted[model.name] = model
    return reports


def resolve_user(catalogue: Catalogue | Dataset, raw_user: str | int) -> int:
    """Index of a raw user id, or -1 when the data set does not know it; `ConfigError`
    when ``raw_user`` cannot be an id at all (not an integer, or beyond 64 bits)."""
    cat = catalogue if isinstance(catalogue, Catalogue) else Catalogue.from_dataset(catalogue)
    text = str(raw_user).strip()
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--user {raw_user!r} is not a user id (ids are integers)") from None
    validate.integer("--user", value, lo=-validate.INT64_MAX, hi=validate.INT64_MAX)
    return cat.user_index(value)


def parse_history(catalogue: Catalogue, text: str) -> History:
    """``"movieId:rating,movieId:rating,..."`` -> a `History` of item indices.

    Unknown movie ids and malformed pairs are a `ConfigError` naming them."""
    items, ratings = [], []
    for part in [p for p in text.replace(";", ",").split(",") if p.strip()]:
        mid, sep, value = part.strip().partition(":")
        if not sep:
            raise ConfigError(f"--history expects movieId:rating pairs, got {part.strip()!r}")
        try:
            raw = int(mid)
            rating = validate.number(f"rating of movie {mid}", float(value))
        except ValueError:
            raise ConfigError(f"--history pair {part.strip()!r} is not movieId:rating") from None
        idx = _item_index(catalogue, raw)
        items.append(idx)
        ratings.append(rating)
    if not items:
        raise ConfigError("--history is empty; give movieId:rating pairs, e.g. 1:5,318:4.5")
    return History(np.asarray(items, dtype=np.int64), np.asarray(ratings, dtype=np.float64))


def _item_index(catalogue: Catalogue, raw_item: int) -> int:
    idx = catalogue.item_index(raw_item)
    if idx < 0:
        raise ConfigError(f"movie {raw_item} is not in this model's catalogue")
    return idx
