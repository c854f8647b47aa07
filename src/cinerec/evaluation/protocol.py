"""Run a `Recommender` on a `Split` and collect every metric in one `Report`.

Protocol (see docs/evaluation.md):

- rating metrics over ALL test rows and over WARM rows (user and item rated in
  train), with the number of cold rows and which fallback the model used for them;
- ranking metrics over the FULL catalogue minus the items the user rated in train
  (and valid), for every test user with at least one relevant test rating
  (``rating >= threshold``), scored in user batches so memory stays bounded;
- efficiency: fit time, prediction throughput, single-user top-K latency, model size.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

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
from cinerec.models.base import Recommender

RATING_KEYS = ("rmse", "mae", "r2", "rmse_warm", "mae_warm", "r2_warm")
EFFICIENCY_KEYS = ("fit_s", "predict_per_s", "topk_p50_ms", "topk_p99_ms", "model_bytes")
COUNT_KEYS = ("n_test", "n_test_cold_user", "n_test_cold_item", "n_rank_users")
#: Ranking metric name in the report -> per-user array from `ranking_metrics`.
RANKING_NAMES = {
    "precision": "precision",
    "recall": "recall",
    "f1": "f1",
    "ndcg": "ndcg",
    "hit": "hit",
    "map": "ap",
    "coverage": None,
}
FALLBACK_NAMES = {
    0: "model",
    1: "cold user: item baseline",
    2: "cold item: user baseline",
    3: "both cold: global mean",
}
#: Test rows per `predict` call: bounds memory on 25M-row data sets.
PREDICT_CHUNK = 1_000_000
#: Upper bound on score-matrix cells per ranking batch (users x items): the batch of
#: scores plus argpartition's int64 indices stay under ~200 MB even for ML-25M's 62k items.
MAX_BATCH_CELLS = 1 << 24


def metric_keys(k: int) -> list[str]:
    """Every key of `Report.metrics`, in display order, for cut-off ``k``."""
    return [
        *RATING_KEYS,
        *(f"{name}@{k}" for name in RANKING_NAMES),
        *EFFICIENCY_KEYS,
        *COUNT_KEYS,
    ]


@dataclass
class Report:
    """Everything measured for one model on one split.

    ``metrics`` always holds every key of `metric_keys` (None where not computed or
    not applicable, e.g. RMSE of a pure ranking model). ``per_user`` (users, ndcg,
    precision, recall, f1, hit, ap, n_rel) and ``per_row`` (sq_err, warm, fallback)
    keep the raw arrays for significance tests; they are not serialised by default.
    """

    model: str
    config: dict[str, Any]
    dataset: str
    split: str
    seed: int
    k: int
    threshold: float
    metrics: dict[str, float | int | None]
    info: dict[str, Any] = field(default_factory=dict)
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    per_row: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    # ---- serialisation ----------------------------------------------------------
    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        """JSON-ready dict; ``arrays=True`` adds per-user / per-row arrays as lists."""
        d: dict[str, Any] = {
            "model": self.model,
            "config": self.config,
            "dataset": self.dataset,
            "split": self.split,
            "seed": self.seed,
            "k": self.k,
            "threshold": self.threshold,
            "metrics": {key: _json_num(v) for key, v in self.metrics.items()},
            "info": self.info,
        }
        if arrays:
            d["per_user"] = {key: v.tolist() for key, v in self.per_user.items()}
            d["per_row"] = {key: v.tolist() for key, v in self.per_row.items()}
        return d

    def to_json(self, arrays: bool = False, indent: int | None = 2) -> str:
        """JSON text of `to_dict` (NaN written as null)."""
        return json.dumps(self.to_dict(arrays=arrays), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """Inverse of `to_dict` (arrays restored when they were written)."""
        return cls(
            model=d["model"],
            config=d.get("config", {}),
            dataset=d.get("dataset", ""),
            split=d.get("split", ""),
            seed=int(d.get("seed", 0)),
            k=int(d["k"]),
            threshold=float(d.get("threshold", 4.0)),
            metrics=dict(d["metrics"]),
            info=d.get("info", {}),
            per_user={
                key: np.asarray(v, dtype=np.float64 if key not in ("users", "n_rel") else np.int64)
                for key, v in d.get("per_user", {}).items()
            },
            per_row={
                key: np.asarray(v, dtype=_ROW_DTYPES.get(key, np.float64))
                for key, v in d.get("per_row", {}).items()
            },
        )

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))

    def row(self) -> dict[str, Any]:
        """One flat record: identification columns then every metric."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "split": self.split,
            "seed": self.seed,
            **{key: _json_num(v) for key, v in self.metrics.items()},
        }

    def to_csv(self, header: bool = True) -> str:
        """One CSV row (with a header line by default); empty cells for None."""
        buf = io.StringIO()
        rec = self.row()
        w = csv.DictWriter(buf, fieldnames=list(rec), lineterminator="\n")
        if header:
            w.writeheader()
        w.writerow({key: "" if v is None else v for key, v in rec.items()})
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A two-column metric | value table with a title line."""
        lines = [
            f"### {self.model} on {self.dataset} ({self.split or 'split'}, seed {self.seed})",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        for key, v in self.metrics.items():
            lines.append(f"| {key} | {format_value(key, v)} |")
        fb = self.info.get("fallback")
        if fb:
            lines += [
                "",
                "Test rows by prediction source: " + ", ".join(f"{n}: {c}" for n, c in fb.items()),
            ]
        return "\n".join(lines) + "\n"


_ROW_DTYPES = {"warm": bool, "fallback": np.int8}


def _json_num(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    return None if math.isnan(f) or math.isinf(f) else f


def format_value(key: str, v: Any) -> str:
    """Human formatting of one metric value (shared by reports and tables)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key.startswith("n_") or key == "model_bytes":
        return f"{int(v):,}"
    if key == "predict_per_s":
        return f"{float(v):,.0f}"
    if key in ("fit_s", "topk_p50_ms", "topk_p99_ms"):
        return f"{float(v):.3g}" if float(v) < 100 else f"{float(v):,.0f}"
    return f"{float(v):.4f}"


# ---------------------------------------------------------------------------------
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


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not enabled,
    )


def evaluate(
    model: Recommender,
    split: Split,
    k: int = 10,
    threshold: float = 4.0,
    metrics: list[str] | None = None,
    fit: bool = True,
    batch_users: int = 1024,
    latency_samples: int = 200,
    seed: int = 0,
    progress: bool = True,
    options: Any = None,
) -> Report:
    """Fit (optionally) and evaluate ``model`` on ``split``; see the module docstring.

    ``metrics`` selects what to compute: report keys (``"rmse"``, ``"ndcg@10"``),
    bare ranking names (``"ndcg"``) or groups (``"rating"``, ``"ranking"``,
    ``"efficiency"``); None computes everything. Keys not computed are None.
    ``options`` (`FitOptions` or a dict: device, checkpoints...) go to ``model.fit``.
    """
    if k <= 0:
        raise EvaluationError(f"k must be a positive integer, got {k}")
    if batch_users <= 0:
        raise EvaluationError(f"batch_users must be positive, got {batch_users}")
    if split.test.n_ratings == 0:
        raise EvaluationError(f"the test set of split {split.spec or '(unnamed)'} is empty")
    wanted = _select_metrics(metrics, k)
    train, test = split.train, split.test
    out: dict[str, float | int | None] = dict.fromkeys(metric_keys(k))
    info: dict[str, Any] = {
        "n_items": int(train.n_items),
        "n_train": int(train.n_ratings),
        "split_seed": split.seed,
        "batch_users": batch_users,
    }
    per_user: dict[str, np.ndarray] = {}
    per_row: dict[str, np.ndarray] = {}

    # ---- fit ---------------------------------------------------------------------
    if fit:
        t0 = time.perf_counter()
        model.fit(train, split.valid, options=options)
        out["fit_s"] = time.perf_counter() - t0 if "fit_s" in wanted else None

    elif not getattr(model, "fitted_", False):
        raise EvaluationError(
            f"model {model.name!r} is not fitted: pass fit=True or call fit()/load() first"
        )

    # ---- counts -------------------------------------------------------------------
    cold_u, cold_i = split.cold_user_rows, split.cold_item_rows
    warm = split.warm_rows
    out["n_test"] = int(test.n_ratings)
    out["n_test_cold_user"] = int(cold_u.sum())
    out["n_test_cold_item"] = int(cold_i.sum())
    info["cold_share"] = split.cold_share()
    info["n_test_warm"] = int(warm.sum())
    kinds = model.fallback_kind(test.users, test.items)
    counts = np.bincount(kinds, minlength=4)
    info["fallback"] = {FALLBACK_NAMES[j]: int(counts[j]) for j in range(4)}
    per_row["warm"] = warm
    per_row["fallback"] = kinds

    # ---- rating metrics -----------------------------------------------------------
    want_rating = bool(wanted & {*RATING_KEYS, "predict_per_s"})
    if want_rating and model.predicts_ratings:
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
        for suffix, rows in (("", slice(None)), ("_warm", warm)):
            n = int(sq[rows].size)
            vals = {
                "rmse": float(np.sqrt(sq[rows].mean())) if n else None,
                "mae": float(ab[rows].mean()) if n else None,
                "r2": r2(truth[rows], pred[rows]) if n else None,
            }
            for name, v in vals.items():
                if f"{name}{suffix}" in wanted:
                    out[f"{name}{suffix}"] = v

    # ---- ranking metrics ---------------------------------------------------------
    rank_keys = {f"{n}@{k}" for n in RANKING_NAMES}
    if wanted & rank_keys:
        rel = relevance_matrix(
            test.users, test.items, test.ratings, train.n_users, train.n_items, threshold
        )
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
        with _progress(progress) as bar:
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
        per_user |= {
            key: np.concatenate(v) if v else np.empty(0, dtype=np.float64)
            for key, v in chunks.items()
        }
        means = mean_metrics(per_user) if users.size else dict.fromkeys(RANKING_KEYS)
        for name, src in RANKING_NAMES.items():
            key = f"{name}@{k}"
            if key not in wanted:
                continue
            if users.size:
                out[key] = float(covered.mean()) if src is None else means[src]
        out["n_rank_users"] = int(users.size)

    # ---- efficiency ---------------------------------------------------------------
    if "topk_p50_ms" in wanted or "topk_p99_ms" in wanted:
        warm_users = np.flatnonzero(train.user_counts > 0)
        if warm_users.size and latency_samples > 0:
            rng = np.random.default_rng(seed)
            sample = rng.choice(
                warm_users, size=latency_samples, replace=warm_users.size < latency_samples
            )
            model.recommend(int(sample[0]), k)  # warm-up: first call pays lazy caches
            times = np.empty(sample.size)
            for j, u in enumerate(sample):
                t0 = time.perf_counter()
                model.recommend(int(u), k)
                times[j] = time.perf_counter() - t0
            out["topk_p50_ms"] = float(np.percentile(times, 50) * 1e3)
            out["topk_p99_ms"] = float(np.percentile(times, 99) * 1e3)
    if "model_bytes" in wanted:
        state = model.state()
        out["model_bytes"] = int(sum(np.asarray(v).nbytes for v in state.values()))
        info["model_bytes_own"] = int(
            sum(np.asarray(v).nbytes for key, v in state.items() if not key.startswith("_base."))
        )

    return Report(
        model=model.name or type(model).__name__,
        config=model.config.model_dump(mode="json"),
        dataset=train.name,
        split=split.spec,
        seed=seed,
        k=k,
        threshold=threshold,
        metrics=out,
        info=info,
        per_user=per_user,
        per_row=per_row,
    )


def compare(models: list[Recommender], split: Split, **kw: Any) -> list[Report]:
    """`evaluate` each model on the same split with the same options."""
    return [evaluate(m, split, **kw) for m in models]
