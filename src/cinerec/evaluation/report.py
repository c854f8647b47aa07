"""`Report`: everything measured for one model on one split, and its metric keys.

The type and its JSON form live here; rendering (tables, markdown, CSV, plots) lives in
`cinerec.report`, so evaluation never formats and rendering never measures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: ``_warm``: test rows whose user and movie both have train ratings; ``_cold_item``: rows
#: of a movie with no train rating (a warm user), the slice content models are for.
RATING_KEYS = (
    "rmse", "mae", "r2", "rmse_warm", "mae_warm", "r2_warm", "rmse_cold_item", "mae_cold_item", "r2_cold_item",
)  # fmt: skip
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
    #: Seed of the split the model was evaluated on (what a reader needs to rerun it).
    seed: int | None
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
            seed=None if d.get("seed") is None else int(d["seed"]),
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
