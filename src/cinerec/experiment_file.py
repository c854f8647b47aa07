"""Experiments as files: ``cinerec run configs/X.toml``.

An experiment file (TOML, validated by `ExperimentFile`; ``cinerec run --schema`` prints
its JSON schema) names the data, the split (spec and seed), the models with their
hyper-parameters and optional compression steps, the cut-off K and metrics, and the
output folder::

    name = "quick"
    output = "runs/quick"
    [data]
    name = "ml-latest-small"
    [split]
    spec = "random:0.9"
    seed = 42
    [evaluation]
    k = 10
    [[models]]
    name = "svd"
    params = { n_factors = 100 }
    compress = ["int8"]

`run` fits and evaluates every model on one split, writes each as an artifact folder
(``OUTPUT/LABEL``, compressed ones as ``OUTPUT/LABEL+METHOD``) and ``OUTPUT/results.json``
(metrics, and the loss per epoch of torch models; ``cinerec report OUTPUT`` draws it)
after each one, so an interrupted run keeps what finished: run it again and the models
whose artifact and result are there, with the same model, hyper-parameters, data and
split, are read back instead of retrained.
"""

from __future__ import annotations

import json
import time
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cinerec import artifacts, experiment
from cinerec._util import fs
from cinerec.errors import ConfigError
from cinerec.models.registry import available_models, model_class

RESULTS = "results.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    name: str = Field("ml-latest-small", description="a data set name or a folder of MovieLens files")


class SplitSpec(_Strict):
    spec: str = Field("random:0.9", description="split spec (docs/splits.md), e.g. user-temporal:0.8")
    seed: int = Field(42, ge=0, le=2**32 - 1)


class EvaluationSpec(_Strict):
    k: int = Field(10, ge=1, le=1000)
    metrics: list[str] | None = Field(None, description="report keys or groups; None: everything")


class ModelSpec(_Strict):
    name: str = Field(description="registered model name (`cinerec models`)")
    label: str | None = Field(None, description="unique name in the results (default: name)")
    params: dict[str, Any] = Field(default_factory=dict, description="hyper-parameters")
    compress: list[str] = Field(default_factory=list, description="compression methods applied to the fitted model")

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        if v not in available_models():
            raise ValueError(f"unknown model {v!r}; registered: {', '.join(available_models())}")
        return v

    @model_validator(mode="after")
    def _valid_params(self) -> ModelSpec:
        try:
            model_class(self.name)(self.params)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self

    @property
    def key(self) -> str:
        return self.label or self.name


class PaperCell(_Strict):
    """One number of a paper's table and what cinerec measures for it (`cinerec.reproduce`)."""

    table: str = Field(description="the paper's table, as it names it")
    row: str = Field(description="the row label of the paper's table")
    metric: str = Field(description="the metric as the paper prints it (RMSE, Precision@10 ...)")
    claimed: float | str | None = Field(
        None, description="the paper's number; or a claim about an order: '>LABEL' / '<LABEL' (better or "
        "lower than that model on the same key); or any other text (shown, not checked)")
    model: str | None = Field(None, description="label of the run's model that measures it (LABEL+METHOD "
                              "for a compressed one); none for data measurements (variance:...)")
    key: str | None = Field(None, description="what is measured: a results.json metric (rmse, ndcg@10 ...) "
                            "or a derived key (`cinerec.reproduce.DERIVED`)")
    reason: str = Field("", description="one line: why ours differs (protocol, data, an implausible claim)")
    not_run: str | None = Field(None, description="why this cell cannot be measured here (then no key)")
    tolerance: float = Field(0.01, ge=0, description="relative difference still counted as agreement")

    @model_validator(mode="after")
    def _measured_or_not_run(self) -> PaperCell:
        if (self.key is None) == (self.not_run is None):
            raise ValueError(f"cell {self.table}/{self.row}/{self.metric}: give exactly one of key and not_run")
        if self.key is not None and self.model is None and not self.key.startswith("variance:"):
            raise ValueError(f"cell {self.table}/{self.row}/{self.metric}: key {self.key!r} needs a model label")
        return self


class PaperSpec(_Strict):
    """A paper reproduction: the paper's tables as cells, each tied to what the run measures."""

    id: str = Field(description="paper-NNN, the name `cinerec reproduce` takes")
    title: str
    file: str | None = Field(None, description="the paper's text file, for the reader")
    notes: list[str] = Field(default_factory=list, description="lines printed under the table")
    cells: list[PaperCell] = Field(min_length=1)


class ExperimentFile(_Strict):
    name: str
    output: str = Field(description="folder for the artifacts and results.json (relative: to the file)")
    data: DataSpec = DataSpec()
    split: SplitSpec = SplitSpec()
    evaluation: EvaluationSpec = EvaluationSpec()
    models: list[ModelSpec] = Field(min_length=1)
    paper: PaperSpec | None = Field(None, description="the paper this file reproduces (`cinerec reproduce`)")

    @model_validator(mode="after")
    def _unique_labels(self) -> ExperimentFile:
        keys = self.labels()
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"labels must be unique, repeated: {dup} (give the models a label)")
        return self

    @model_validator(mode="after")
    def _cells_name_models(self) -> ExperimentFile:
        known = set(self.labels())
        for cell in self.paper.cells if self.paper else []:
            refs = [cell.model] if cell.model else []
            if isinstance(cell.claimed, str) and cell.claimed[:1] in "<>" and cell.claimed[1:].strip():
                refs.append(cell.claimed[1:].strip())
            missing = [r for r in refs if r not in known]
            if missing:
                raise ValueError(f"paper cell {cell.table}/{cell.row}/{cell.metric} names {missing}, "
                                 f"not a model of this file ({', '.join(sorted(known))})")
        return self

    def labels(self) -> list[str]:
        """Every result label of the run: each model's, then each compressed copy's."""
        return [m.key for m in self.models] + [f"{m.key}+{c}" for m in self.models for c in m.compress]


def schema() -> dict[str, Any]:
    return ExperimentFile.model_json_schema()


def load(path: str | Path, output: str | Path | None = None) -> tuple[ExperimentFile, Path]:
    """The validated experiment and its output folder (relative paths: to the file;
    ``output`` given: that folder instead of the file's)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read experiment file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    try:
        exp = ExperimentFile.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:10])
        raise ConfigError(f"{path}: {problems}") from None
    if output is not None:
        return exp, Path(output)
    out = Path(exp.output)
    return exp, out if out.is_absolute() else path.parent / out


def run(path: str | Path, progress: bool = True, options: Any = None,
        output: str | Path | None = None) -> dict[str, Any]:
    """Run (or finish) the experiment in ``path``; the results dict also written to
    ``OUTPUT/results.json`` (``output``: another folder than the file's)."""
    exp, out = load(path, output)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / RESULTS
    done = _finished(results_path, exp)
    ctx = experiment.load_context(exp.data.name, exp.split.spec, exp.split.seed, progress=progress)
    results = {"experiment": exp.name, "data": exp.data.name, "split": exp.split.spec, "seed": exp.split.seed,
               "k": exp.evaluation.k, "fingerprint": ctx.dataset.fingerprint, "models": {}}
    for spec in exp.models:
        entries = [(spec.key, None)] + [(f"{spec.key}+{c}", c) for c in spec.compress]
        if all(_reusable(done.get(key), spec, out / key, experiment.provenance(ctx)) for key, _ in entries):
            for key, _ in entries:
                results["models"][key] = done[key] | {"reused": True}
            continue
        model, report = experiment.train(spec.name, ctx, spec.params, out=out / spec.key, evaluate_after=True,
                                         k=exp.evaluation.k, progress=progress, options=options, overwrite=True)
        results["models"][spec.key] = _entry(spec, None, report, out / spec.key, getattr(model, "history_", None))
        _write(results_path, results)
        for method in spec.compress:
            key = f"{spec.key}+{method}"
            squeezed = _compressed(spec, ctx, exp, method, out / key, progress)
            results["models"][key] = _entry(spec, method, squeezed, out / key)
            _write(results_path, results)
    _write(results_path, results)
    return results


def _compressed(spec: ModelSpec, ctx: Any, exp: ExperimentFile, method: str, folder: Path, progress: bool) -> Any:
    """The artifact of ``spec`` loaded again, compressed with ``method``, evaluated, saved."""
    from cinerec.compress.api import compress_model
    from cinerec.evaluation.protocol import evaluate

    model = artifacts.load_model(folder.parent / spec.key)
    compress_model(model, method, train=ctx.split.train, valid=ctx.split.valid)
    report = evaluate(model, ctx.split, k=exp.evaluation.k, fit=False, progress=progress,
                      metrics=exp.evaluation.metrics)
    artifacts.save_model(model, folder, metrics=report.metrics, overwrite=True)
    return report


def _entry(spec: ModelSpec, method: str | None, report: Any, folder: Path, history: Any = None) -> dict[str, Any]:
    """One model's line of results.json (with its loss per epoch when the Trainer fitted it)."""
    entry = {"model": spec.name, "params": spec.params, "compress": method, "artifact": folder.name,
             "metrics": report.metrics, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if history is not None:
        entry["history"] = {"epoch": list(history.epoch), "train_loss": list(history.train_loss),
                            "valid_loss": list(history.valid_loss)}
    return entry


def _finished(results_path: Path, exp: ExperimentFile) -> dict[str, dict[str, Any]]:
    if not results_path.exists():
        return {}
    try:
        old = json.loads(results_path.read_text())
    except (OSError, ValueError):
        return {}  # unreadable: everything is run again
    same_setup = (old.get("data"), old.get("split"), old.get("seed"), old.get("k")) == (
        exp.data.name, exp.split.spec, exp.split.seed, exp.evaluation.k)
    return dict(old.get("models", {})) if same_setup else {}


def _reusable(entry: dict[str, Any] | None, spec: ModelSpec, folder: Path, provenance: dict[str, Any]) -> bool:
    """A finished result whose artifact was trained on this very data and split."""
    if not entry or entry.get("model") != spec.name or entry.get("params") != spec.params:
        return False
    if not artifacts.is_artifact(folder):
        return False
    return artifacts.read_manifest(folder).get("provenance") == provenance


def _write(path: Path, results: dict[str, Any]) -> None:
    fs.write_text(path, json.dumps(results, indent=2, default=_jsonable) + "\n")


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return str(v)
