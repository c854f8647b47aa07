"""Run a `Recommender` on a `Split` and collect every metric in one `Report`.

Protocol (see docs/evaluation.md):

- rating metrics over ALL test rows and over WARM rows (user and item rated in
  train), with the number of cold rows and which fallback the model used for them;
- ranking metrics over the FULL catalogue minus the items the user rated in train
  (and valid), for every test user with at least one relevant test rating
  (``rating >= threshold``), scored in user batches so memory stays bounded;
- efficiency: fit time, prediction throughput, single-user top-K latency, model size.

`evaluate` runs the stages below in order; each fills its keys of the report.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from cinerec._util import console
from cinerec.data.splits import Split
from cinerec.evaluation.metrics import (
    RANKING_KEYS,
    EvaluationError,
    mean_metrics,
    r2,
    ranking_metrics,
    relevance_matrix,
    topk_from_scores,
)
from cinerec.evaluation.report import (
    COUNT_KEYS,
    EFFICIENCY_KEYS,
    FALLBACK_NAMES,
    RANKING_NAMES,
    RATING_KEYS,
    Report,
    metric_keys,
)
from cinerec.models.base import Recommender

#: Test rows per `predict` call: bounds memory on 25M-row data sets.
PREDICT_CHUNK = 1_000_000
#: Upper bound on score-matrix cells per ranking batch (users x items): the batch of
#: scores plus argpartition's int64 indices stay under ~200 MB even for ML-25M's 62k items.
MAX_BATCH_CELLS = 1 << 24

Metrics = dict[str, float | int | None]


def evaluate(
    model: Recommender,
    split: Split,
    k: int = 10,
    threshold: float = 4.0,
    metrics: list[str] | None = None,
    fit: bool = True,
    batch_users: int = 1024,
    latency_samples: int = 200,
    latency_seed: int = 0,
    progress: bool = True,
    options: Any = None,
) -> Report:
    """Fit (optionally) and evaluate ``model`` on ``split``; see the module docstring.

    ``metrics`` selects what to compute: report keys (``"rmse"``, ``"ndcg@10"``),
    bare ranking names (``"ndcg"``) or groups (``"rating"``, ``"ranking"``,
    ``"efficiency"``); None computes everything. Keys not computed are None.
    ``options`` (`FitOptions` or a dict: device, checkpoints...) go to ``model.fit``;
    ``latency_seed`` draws the users whose single top-K calls are timed.
    """
    if k <= 0:
        raise EvaluationError(f"k must be a positive integer, got {k}")
    if batch_users <= 0:
        raise EvaluationError(f"batch_users must be positive, got {batch_users}")
    if split.test.n_ratings == 0:
        raise EvaluationError(f"the test set of split {split.spec or '(unnamed)'} is empty")
    wanted = _select_metrics(metrics, k)
    out: Metrics = dict.fromkeys(metric_keys(k))
    info: dict[str, Any] = {
        "n_items": int(split.train.n_items),
        "n_train": int(split.train.n_ratings),
        "split_seed": split.seed,
        "latency_seed": latency_seed,
        "batch_users": batch_users,
    }
    per_user: dict[str, np.ndarray] = {}
    per_row: dict[str, np.ndarray] = {}

    if fit:
        t0 = time.perf_counter()
        model.fit(split.train, split.valid, options=options)
        out["fit_s"] = time.perf_counter() - t0 if "fit_s" in wanted else None
    elif not getattr(model, "fitted_", False):
        raise EvaluationError(f"model {model.name!r} is not fitted: pass fit=True or call fit()/load() first")

    _counts(model, split, out, info, per_row)
    if wanted & {*RATING_KEYS, "predict_per_s"} and model.predicts_ratings:
        _rating_metrics(model, split, wanted, out, per_row)
    if wanted & {f"{n}@{k}" for n in RANKING_NAMES}:
        per_user = _ranking_metrics(model, split, k, threshold, batch_users, progress, wanted, out, info)
    if wanted & {"topk_p50_ms", "topk_p99_ms"}:
        _latency(model, split, k, latency_samples, latency_seed, out)
    if "model_bytes" in wanted:
        _model_bytes(model, out, info)

    return Report(
        model=model.name or type(model).__name__,
        config=model.config.model_dump(mode="json"),
        dataset=split.train.name,
        split=split.spec,
        seed=split.seed,
        k=k,
        threshold=threshold,
        metrics=out,
        info=info,
        per_user=per_user,
        per_row=per_row,
    )


def _select_metrics(metrics: list[str] | None, k: int) -> set[str]:
    """Resolve user metric names / groups to the set of report keys to compute."""
    all_keys = metric_keys(k)
    if metrics is None:
        return set(all_keys)
    groups = {
        "rating": [*RATING_KEYS],
        "ranking": [f"{n}@{k}" for n in RANKING_NAMES],
        "efficiency": [*EFFICIENCY_KEYS],
    }
    out: set[str] = set(COUNT_KEYS)
    for name in metrics:
        if name in groups:
            out.update(groups[name])
        elif name in all_keys:
            out.add(name)
        elif f"{name}@{k}" in all_keys:
            out.add(f"{name}@{k}")
        else:
            raise EvaluationError(
                f"unknown metric {name!r}; use one of {', '.join(groups)} or {', '.join(all_keys)}"
            )
    return out


def _counts(model: Recommender, split: Split, out: Metrics, info: dict[str, Any], per_row: dict[str, np.ndarray]) -> None:
    test = split.test
    out["n_test"] = int(test.n_ratings)
    out["n_test_cold_user"] = int(split.cold_user_rows.sum())
    out["n_test_cold_item"] = int(split.cold_item_rows.sum())
    info["cold_share"] = split.cold_share()
    info["n_test_warm"] = int(split.warm_rows.sum())
    kinds = model.fallback_kind(test.users, test.items)
    counts = np.bincount(kinds, minlength=4)
    info["fallback"] = {FALLBACK_NAMES[j]: int(counts[j]) for j in range(4)}
    per_row["warm"] = split.warm_rows
    per_row["fallback"] = kinds


def _rating_metrics(model: Recommender, split: Split, wanted: set[str], out: Metrics, per_row: dict[str, np.ndarray]) -> None:
    test = split.test
    pred = np.empty(test.n_ratings, dtype=np.float32)
    t0 = time.perf_counter()
    for s in range(0, test.n_ratings, PREDICT_CHUNK):
        e = s + PREDICT_CHUNK
        pred[s:e] = model.predict(test.users[s:e], test.items[s:e])
    dt = time.perf_counter() - t0
    if "predict_per_s" in wanted:
        out["predict_per_s"] = test.n_ratings / dt if dt > 0 else None
    truth = test.ratings.astype(np.float64)
    sq = (pred.astype(np.float64) - truth) ** 2
    ab = np.sqrt(sq)
    per_row["sq_err"] = sq
    cold_item = split.cold_item_rows & ~split.cold_user_rows
    for suffix, rows in (("", slice(None)), ("_warm", split.warm_rows), ("_cold_item", cold_item)):
        n = int(sq[rows].size)
        vals = {
            "rmse": float(np.sqrt(sq[rows].mean())) if n else None,
            "mae": float(ab[rows].mean()) if n else None,
            "r2": r2(truth[rows], pred[rows]) if n else None,
        }
        for name, v in vals.items():
            if f"{name}{suffix}" in wanted:
                out[f"{name}{suffix}"] = v


def _ranking_metrics(
    model: Recommender, split: Split, k: int, threshold: float, batch_users: int, progress: bool,
    wanted: set[str], out: Metrics, info: dict[str, Any],
) -> dict[str, np.ndarray]:  # fmt: skip
    train, test = split.train, split.test
    rel = relevance_matrix(test.users, test.items, test.ratings, train.n_users, train.n_items, threshold)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    # Items a user already rated outside test are not candidates (they cannot be
    # relevant, and a model that knows them must not be penalised for it).
    known = train.to_csr(values=None)
    if split.valid is not None and split.valid.n_ratings:
        known = known + split.valid.to_csr(values=None)
    known = sp.csr_matrix(known)
    covered = np.zeros(train.n_items, dtype=bool)
    batch_users = max(1, min(batch_users, MAX_BATCH_CELLS // max(train.n_items, 1)))
    info["batch_users"] = batch_users
    chunks: dict[str, list[np.ndarray]] = {key: [] for key in (*RANKING_KEYS, "n_rel")}
    with console.progress(progress) as bar:
        task = bar.add_task(f"ranking ({model.name or type(model).__name__})", total=users.size)
        for s in range(0, users.size, batch_users):
            batch = users[s : s + batch_users]
            scores = np.asarray(model.score(batch), dtype=np.float32)
            if scores.shape != (batch.size, train.n_items):
                raise EvaluationError(
                    f"model {model.name!r} returned scores of shape {scores.shape} for "
                    f"{batch.size} users; expected ({batch.size}, {train.n_items})"
                )
            if not scores.flags.writeable:
                scores = scores.copy()
            mask = known[batch].tocoo()
            scores[mask.row, mask.col] = -np.inf
            top = topk_from_scores(scores, k)
            del scores
            covered[top[top >= 0]] = True
            res = ranking_metrics(top, rel[batch], k)
            for key in chunks:
                chunks[key].append(res[key])
            bar.advance(task, batch.size)
    per_user = {"users": users.astype(np.int64)}
    per_user |= {key: np.concatenate(v) if v else np.empty(0, dtype=np.float64) for key, v in chunks.items()}
    means = mean_metrics(per_user) if users.size else dict.fromkeys(RANKING_KEYS)
    for name, src in RANKING_NAMES.items():
        key = f"{name}@{k}"
        if key in wanted and users.size:
            out[key] = float(covered.mean()) if src is None else means[src]
    out["n_rank_users"] = int(users.size)
    return per_user


def _latency(model: Recommender, split: Split, k: int, samples: int, seed: int, out: Metrics) -> None:
    warm_users = np.flatnonzero(split.train.user_counts > 0)
    if not warm_users.size or samples <= 0:
        return
    rng = np.random.default_rng(seed)
    sample = rng.choice(warm_users, size=samples, replace=warm_users.size < samples)
    model.recommend(int(sample[0]), k)  # warm-up: first call pays lazy caches
    times = np.empty(sample.size)
    for j, u in enumerate(sample):
        t0 = time.perf_counter()
        model.recommend(int(u), k)
        times[j] = time.perf_counter() - t0
    out["topk_p50_ms"] = float(np.percentile(times, 50) * 1e3)
    out["topk_p99_ms"] = float(np.percentile(times, 99) * 1e3)


def _model_bytes(model: Recommender, out: Metrics, info: dict[str, Any]) -> None:
    state = model.state()
    out["model_bytes"] = int(sum(np.asarray(v).nbytes for v in state.values()))
    info["model_bytes_own"] = int(
        sum(np.asarray(v).nbytes for key, v in state.items() if not key.startswith("_base."))
    )
