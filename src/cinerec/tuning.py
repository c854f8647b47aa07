"""Hyper-parameter search with Optuna: ``cinerec tune MODEL``.

`tune` searches a model's declared space (`cinerec.models.search`, next to its config)
with TPE, on a validation part carved from the *training* part of the split (the split
spec applied again to train, same seed): the test part is never read. Each trial fits
the model on the rest of train and scores the validation part (``rmse``, minimised, or
a ranking metric such as ``ndcg@10``, maximised, full catalogue). Models trained by the
`Trainer` report their validation loss after every epoch, and Optuna's median pruner
stops a trial that is worse than the median of the earlier ones at the same epoch.

The first trial of a new study is the model's defaults (when they lie in the space), so
the best trial is never worse than the defaults on the validation part. The study lives
in SQLite (``--storage``), so an interrupted search resumes where it
stopped and ``--trials N`` means N trials in all. The best hyper-parameters (with the
ones held fixed) are written as a JSON file that ``cinerec train --config`` reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cinerec._util import fs, validate
from cinerec.data.splits import make_split
from cinerec.data.splits.core import Split
from cinerec.errors import ConfigError
from cinerec.experiment import Context
from cinerec.models.registry import create_model, model_class
from cinerec.models.search import Choice, FloatRange, IntRange, MemberWeights, Param, check_space

#: Metrics `tune` can optimise, and their direction.
DIRECTIONS = {"rmse": "minimize", "mae": "minimize"}


@dataclass
class TuneResult:
    model: str
    metric: str
    direction: str
    best_value: float
    best_params: dict[str, Any]
    config: dict[str, Any]
    trials: int
    complete: int
    pruned: int
    failed: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def direction_of(metric: str) -> str:
    if metric in DIRECTIONS:
        return DIRECTIONS[metric]
    name, _, k = metric.partition("@")
    if name in ("ndcg", "precision", "recall", "hit", "map", "mrr") and k.isdigit() and int(k) > 0:
        return "maximize"
    raise ConfigError(f"--metric {metric!r}: use rmse, mae or a ranking metric such as ndcg@10 or recall@20")


def validation_split(ctx: Context, spec: str | None = None) -> Split:
    """(fit part, validation part) of ``ctx``'s *train* part: ``spec`` (default: the
    context's own split spec, random:0.9 for a predefined one) applied to train."""
    spec = spec or ctx.split.spec or "random:0.9"
    if spec.startswith("predefined"):
        spec = "random:0.9"
    inner = make_split(ctx.split.train, spec, seed=ctx.seed)
    return Split(train=inner.train, test=inner.test, spec=f"{spec} of train", seed=ctx.seed)


def tune(
    model_name: str,
    ctx: Context,
    trials: int = 20,
    metric: str = "rmse",
    storage: str | Path | None = None,
    study_name: str | None = None,
    fixed: dict[str, Any] | None = None,
    valid_spec: str | None = None,
    seed: int = 0,
    timeout: float | None = None,
    progress: bool = True,
) -> TuneResult:
    """Run (or continue) a study until it holds ``trials`` finished trials."""
    import optuna

    trials = validate.integer("--trials", trials, lo=1, hi=100_000)
    direction = direction_of(metric)
    cls = model_class(model_name)
    fixed = dict(fixed or {})
    cls(fixed)  # a bad fixed value fails now, not in every trial
    space = {k: v for k, v in check_space(cls).items() if k not in fixed}
    if not space:
        raise ConfigError(f"{model_name} has nothing left to search (no search_space, or every field fixed)")
    if metric in ("rmse", "mae") and not cls.predicts_ratings:
        raise ConfigError(f"{model_name} ranks without predicting ratings: tune it on a ranking metric (ndcg@10)")
    parts = validation_split(ctx, valid_spec)
    k = int(metric.partition("@")[2] or 10)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name or f"{model_name}-{ctx.data}-{ctx.split.spec}-{metric}",
        storage=_storage_url(storage),
        load_if_exists=True,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)

    n_members = len(getattr(cls.Config(**fixed), "members", ()) or ())

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, p, n_members) for name, p in space.items()}
        model = create_model(model_name, {**fixed, **params})
        callbacks = [_PruneOnEpoch(trial, direction)] if cls.table_backend == "torch" else []
        model.fit(parts.train, parts.test, options={"progress": False}, callbacks=callbacks)
        return _score(model, parts, metric, k)

    start = time.perf_counter()
    if not study.trials:
        baseline = default_point(cls, space, fixed)
        if baseline:
            study.enqueue_trial(baseline, user_attrs={"defaults": True})
    left = trials - sum(t.state in finished for t in study.trials)
    if left > 0:
        study.optimize(objective, n_trials=left, timeout=timeout, show_progress_bar=progress,
                       catch=(ConfigError, FloatingPointError))
    states = [t.state for t in study.trials]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ConfigError(f"no trial of {model_name} finished (pruned or failed: see the study in {storage})")
    best = study.best_trial
    best_params = decode(best.params, space, n_members)
    return TuneResult(
        model=model_name, metric=metric, direction=direction, best_value=float(best.value),
        best_params=best_params, config={**fixed, **best_params}, trials=len(study.trials),
        complete=len(done), pruned=states.count(optuna.trial.TrialState.PRUNED),
        failed=states.count(optuna.trial.TrialState.FAIL), seconds=time.perf_counter() - start,
        history=[{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params}
                 for t in study.trials],
    )


def default_point(cls: Any, space: dict[str, Param], fixed: dict[str, Any]) -> dict[str, Any]:
    """The model's default values of the searched fields, when every one lies in its
    range: the first trial of a new study, so that the best trial is never worse than
    the defaults on the validation part ({} when a default is outside the space)."""
    defaults = cls.Config(**fixed).model_dump()
    point: dict[str, Any] = {}
    for name, p in space.items():
        v = defaults.get(name)
        if isinstance(p, MemberWeights):
            if not (isinstance(v, list) and v and v[0] == 1.0 and all(p.lo <= w <= p.hi for w in v[1:])):
                return {}
            point |= {_weight_key(name, j): w for j, w in enumerate(v) if j}
            continue
        inside = (
            (isinstance(p, (IntRange, FloatRange)) and isinstance(v, (int, float)) and not isinstance(v, bool)
             and p.lo <= v <= p.hi and (not isinstance(p, IntRange) or (v - p.lo) % p.step == 0))
            or (isinstance(p, Choice) and v in p.values)
        )
        if not inside:
            return {}
        point[name] = v
    return point


def write_config(result: TuneResult, path: str | Path) -> Path:
    """The best hyper-parameters as the JSON object ``cinerec train --config`` reads."""
    path = Path(path)
    fs.write_text(path, json.dumps(result.config, indent=2, sort_keys=True) + "\n")
    return path


def _storage_url(storage: str | Path | None) -> str | None:
    if storage is None:
        return None  # in memory: nothing to resume
    text = str(storage)
    if "://" in text:
        return text
    Path(text).parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(text).resolve()}"


def _weight_key(name: str, j: int) -> str:
    return f"{name}[{j}]"


def decode(raw: dict[str, Any], space: dict[str, Param], n_members: int) -> dict[str, Any]:
    """A trial's Optuna parameters as config fields (``weights[1]`` .. back into the
    ``weights`` list, the first member's weight 1)."""
    out = {k: v for k, v in raw.items() if "[" not in k}
    for name, p in space.items():
        if isinstance(p, MemberWeights):
            out[name] = [1.0] + [float(raw[_weight_key(name, j)]) for j in range(1, n_members)]
    return out


def _suggest(trial: Any, name: str, p: Param, n_members: int = 0) -> Any:
    if isinstance(p, MemberWeights):
        return [1.0] + [trial.suggest_float(_weight_key(name, j), p.lo, p.hi, log=p.log) for j in range(1, n_members)]
    if isinstance(p, IntRange):
        return trial.suggest_int(name, p.lo, p.hi, log=p.log, step=p.step)
    if isinstance(p, FloatRange):
        return trial.suggest_float(name, p.lo, p.hi, log=p.log)
    if isinstance(p, Choice):
        return trial.suggest_categorical(name, list(p.values))
    raise ConfigError(f"search_space[{name!r}]: {p!r} is not an IntRange, FloatRange, Choice or MemberWeights")


def _score(model: Any, parts: Split, metric: str, k: int) -> float:
    from cinerec.evaluation.protocol import evaluate

    report = evaluate(model, parts, k=k, fit=False, metrics=[metric], progress=False)
    value = report.metrics.get(metric)
    if value is None:
        raise ConfigError(f"metric {metric!r} was not computed for {model.name}")
    return float(value)


class _PruneOnEpoch:
    """Trainer callback: report the epoch's watched loss to the trial, prune when the
    median pruner says so (the loss is negated for a maximised metric, so that better
    is higher on both sides)."""

    def __init__(self, trial: Any, direction: str):
        self.trial, self.sign = trial, (1.0 if direction == "minimize" else -1.0)

    def on_train_begin(self, state: Any) -> None:
        pass

    def on_epoch_end(self, state: Any) -> None:
        import optuna

        h = state.history
        loss = h.valid_loss[-1] if h.valid_loss[-1] is not None else h.train_loss[-1]
        self.trial.report(self.sign * float(loss), state.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {state.epoch}: loss {loss:.4f} below the median")

    def on_train_end(self, state: Any) -> None:
        pass

