"""Experiments end to end: data + split + model -> fitted model, report, artifact.

The CLI (`cinerec train | evaluate | recommend | compare`), the demo and the
benchmarks all go through these functions, so an artifact trained from the command
line and one trained from Python carry the same provenance and can be re-evaluated
the same way: `evaluate_artifact` rebuilds the exact test part from the manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinerec.data.dataset import Dataset
from cinerec.data.splits import Split
from cinerec.errors import ArtifactError, ConfigError
from cinerec.models.base import Recommender, create_model


@dataclass
class Context:
    """A data set and its split, rebuilt from names so they can be recorded."""

    data: str
    dataset: Dataset
    split: Split
    seed: int


def load_context(data: str, split_spec: str, seed: int = 42, progress: bool = True) -> Context:
    from cinerec.data import load_dataset
    from cinerec.data.splits import make_split

    dataset = load_dataset(data, progress=progress)
    return Context(data=data, dataset=dataset, split=make_split(dataset, split_spec, seed=seed), seed=seed)


def parse_overrides(pairs: list[str] | None, config_file: str | Path | None = None) -> dict[str, Any]:
    """Model hyper-parameters from a JSON file and ``key=value`` pairs (values are
    parsed as JSON when they can be: ``n_factors=64``, ``similarity="pearson"``)."""
    out: dict[str, Any] = {}
    if config_file:
        path = Path(config_file)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        try:
            out.update(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


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
):
    """Fit ``model_name`` on ``ctx``; evaluate on its test part; save when ``out``."""
    from cinerec.evaluation.protocol import evaluate

    model = create_model(model_name, config or {})
    model.provenance = provenance(ctx)
    if evaluate_after:
        report = evaluate(model, ctx.split, k=k, fit=True, progress=progress)
        metrics = report.metrics
    else:
        model.fit(ctx.split.train, ctx.split.valid)
        report, metrics = None, {}
    if out is not None:
        model.save(out, metrics=metrics)
    return model, report


def load_artifact(path: str | Path, progress: bool = True) -> tuple[Recommender, Context]:
    """Load a model folder and rebuild the data set and split it was trained on."""
    model = Recommender.load(path)
    prov = model.provenance
    missing = [key for key in ("data", "split", "seed") if key not in prov]
    if missing:
        raise ArtifactError(
            f"{path}: the manifest does not record {', '.join(missing)}; "
            "re-train with `cinerec train` so the test part can be rebuilt"
        )
    ctx = load_context(prov["data"], prov["split"], prov["seed"], progress=progress)
    recorded = prov.get("data_fingerprint")
    if recorded and recorded != ctx.dataset.fingerprint:
        raise ArtifactError(
            f"{path} was trained on {prov['data']!r} with fingerprint {recorded}, but the data "
            f"set found now has fingerprint {ctx.dataset.fingerprint}: the files changed"
        )
    return model, ctx


def evaluate_artifact(path: str | Path, k: int = 10, progress: bool = True):
    """Re-evaluate a saved model on the exact test part of its manifest."""
    from cinerec.evaluation.protocol import evaluate

    model, ctx = load_artifact(path, progress=progress)
    return evaluate(model, ctx.split, k=k, fit=False, progress=progress)


def compare(
    model_names: list[str],
    ctx: Context,
    configs: dict[str, dict[str, Any]] | None = None,
    k: int = 10,
    progress: bool = True,
    fitted: dict[str, Recommender] | None = None,
):
    """Fit and evaluate several models on one split; a list of Reports.

    Pass a dict as ``fitted`` to get the fitted models back (name -> model).
    """
    from cinerec.evaluation.protocol import evaluate

    configs = configs or {}
    reports = []
    for name in model_names:
        model = create_model(name, configs.get(name, {}))
        model.provenance = provenance(ctx)
        reports.append(evaluate(model, ctx.split, k=k, fit=True, progress=progress))
        if fitted is not None:
            fitted[name] = model
    return reports


def resolve_user(dataset: Dataset, raw_user: str | int) -> int:
    """Index of a raw user id, or -1 when the data set does not know it."""
    ids = dataset.user_ids.ids
    try:
        value = ids.dtype.type(raw_user)
    except (TypeError, ValueError):
        return -1
    return int(dataset.user_ids.lookup([value])[0])
