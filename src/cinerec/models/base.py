"""The `Recommender` contract and `ModelConfig`, the base of every model.

A model implements hooks on contiguous indices of *warm* users and items:

- ``_fit(train, valid)``: learn from a train `Dataset` (valid may be None); run options
  (device, progress, threads ...) are in ``self.options_`` (`FitOptions`);
- ``_predict(users, items)``: ratings for warm (user, item) pairs, 1-d float arrays;
- ``_score(users)``: a (len(users), n_items) float matrix for ranking;
- ``_state()`` / ``_load_state(arrays, tables)``: named numpy arrays for safetensors
  (``tables``: compressed embedding tables the artifact loader rebuilt, by name);
- optionally ``explain(user, item)`` returning a typed `Explanation`;
- optionally fold-in (``folds_in = True``): ``_fold_in(histories)`` returns the users'
  representation (e.g. solved factor vectors) and ``_score_folded`` /
  ``_predict_folded`` / ``_explain_folded`` use it, so a person the model has never
  seen gets personal recommendations from a `History`, without retraining;
- optionally ``_item_vectors()`` (or ``_similar_scores(item)``) for `similar_items`;
- optionally ``embedding_tables()`` / ``replace_embedding()``: the factor or embedding
  tables `cinerec.compress` may replace by compressed ones.

The base class does the rest once for every model: validating the typed config,
train-only statistics and the declared fallback for cold or unknown users/items
(`cinerec.models.fallback`), clipping to the rating scale, `recommend` /
`recommend_batch` over `Query` objects (exclusions, candidates, confidence,
risk-averse re-ranking, explanations), `similar_items`, and the arrays an artifact
stores (`state` / `load_state`; reading and writing folders is `cinerec.artifacts`).

"Warm" means the index is in range and has at least one rating in train. A model that
can score cold users or items itself (feature-based models) sets
``handles_cold_users`` / ``handles_cold_items``.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cinerec._util import validate
from cinerec.data.catalogue import Catalogue
from cinerec.data.dataset import Dataset
from cinerec.errors import ArtifactError, ConfigError, NotFittedError
from cinerec.models import fallback as fb
from cinerec.models import tables as tb
from cinerec.models.explain import Explanation, Fallback, Popularity
from cinerec.models.query import History, Query, Recommendations, SimilarItems
from cinerec.models.ranking import top_k
from cinerec.models.retrieval import RetrievalSpace
from cinerec.train.options import RUN_OPTION_NAMES, FitOptions, fit_options

#: Upper bound on score cells (queries x items) computed at once by `recommend_batch`.
MAX_BATCH_CELLS = 1 << 24


class ModelConfig(BaseModel):
    """Base of every model's hyper-parameters: validated, JSON round-trippable.

    Run options (device, progress, checkpoints, threads) are not hyper-parameters: a
    config that names one is refused with a pointer to ``fit(..., options=...)``.
    NaN and infinities are refused everywhere.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, allow_inf_nan=False, populate_by_name=True
    )

    seed: int = Field(42, ge=0, le=validate.MAX_SEED)

    @model_validator(mode="before")
    @classmethod
    def _refuse_run_options(cls, data: Any) -> Any:
        if isinstance(data, dict):
            bad = sorted(k for k in data if k in RUN_OPTION_NAMES and k not in cls.model_fields)
            if bad:
                raise ValueError(
                    f"{', '.join(bad)}: run option(s), not hyper-parameters; pass them to "
                    "fit(train, options={...}) or on the command line (--device, --quiet, "
                    "--threads, --checkpoint-dir)"
                )
        return data


class Recommender(ABC):
    """Base of every model. Subclasses set `name`, `Config` and the hooks."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    #: True when `_predict`/`_score` give ratings on the rating scale (clipped, used
    #: for RMSE); False for pure ranking models (popular, ials, ease).
    predicts_ratings: ClassVar[bool] = True
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    #: True when the model scores a `History` without retraining (the fold-in hooks).
    folds_in: ClassVar[bool] = False
    #: True when `_score_pairs` / `_score_folded_pairs` give `_score` / `_score_folded`
    #: at given pairs (factor models, per-pair networks), so a short candidate list (an
    #: ANN index's, a pipeline's first stage) is scored pair by pair, not over the catalogue.
    scores_pairs: ClassVar[bool] = False
    #: Classic models: table name -> attribute holding it (``{"Q": "Q_"}``); the
    #: names are also the arrays' names in `_state`.
    factor_attrs: ClassVar[dict[str, str]] = {}
    #: What the tables of `embedding_tables` are: "numpy" arrays / `EmbeddingTable`s,
    #: or "torch" modules (`TorchRecommender`).
    table_backend: ClassVar[str] = "numpy"

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any):
        if isinstance(config, ModelConfig):
            data = config.model_dump()
        elif config is None or isinstance(config, dict):
            data = dict(config or {})
        else:
            raise ConfigError(
                f"the configuration of {self.name!r} must be a mapping of hyper-parameters, "
                f"got {type(config).__name__}"
            )
        data.update(overrides)
        try:
            self.config = self.Config.model_validate(data)
        except ValidationError as e:
            raise ConfigError(f"invalid configuration for model {self.name!r}:\n{e}") from None
        self.fitted_ = False
        self.options_: FitOptions = FitOptions()
        #: Where the model came from (data set, fingerprint, split, seed): set by the
        #: caller before saving, written to the manifest.
        self.provenance: dict[str, Any] = {}
        #: JSON spec of compressed tables (``cinerec.compress``), None when dense.
        self.compression: dict[str, Any] | None = None
        #: Id maps and item table of the data the model was fitted on (set by `fit` and
        #: by the artifact loader): raw ids and titles at the edges.
        self.catalogue: Catalogue | None = None

    # ---- hooks -----------------------------------------------------------------
    @abstractmethod
    def _fit(self, train: Dataset, valid: Dataset | None) -> None: ...

    @abstractmethod
    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None: ...

    def explain(self, user: int, item: int) -> Explanation | None:
        """Why ``item`` is recommended to warm ``user`` (None when the model cannot say)."""
        return None

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        """`explain` for several items of one warm user (models vectorise it)."""
        return [self.explain(user, int(i)) for i in items]

    def _fold_in(self, histories: list[History]) -> Any:
        raise NotImplementedError

    def _score_folded(self, folded: Any) -> np.ndarray:
        raise NotImplementedError

    def _predict_folded(self, folded: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _explain_folded(self, folded: Any, row: int, items: np.ndarray) -> list[Explanation | None]:
        return [None] * len(items)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``_score(users)`` at (users[j], items[j]) only (see `scores_pairs`): the rating
        models' `_predict`; ranking models whose `_predict` is something else override."""
        return self._predict(users, items)

    def _score_folded_pairs(self, folded: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``_score_folded(folded)`` at (rows[j], items[j]) only (see `scores_pairs`)."""
        return self._predict_folded(folded, rows, items)

    def _item_vectors(self) -> np.ndarray | None:
        """(n_items, d) item vectors for `similar_items` (None: the model has none)."""
        return None

    def _similar_scores(self, item: int) -> tuple[np.ndarray, str] | None:
        """Similarity of every item to ``item`` and its name; default: cosine of
        `_item_vectors`. None when the model has neither vectors nor an item matrix."""
        vecs = self._item_vectors()
        if vecs is None:
            return None
        v = np.asarray(vecs, dtype=np.float64)
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        return (v @ v[item]) / (norms * norms[item]), "cosine of item vectors"

    # ---- fitting ----------------------------------------------------------------
    def fit(
        self, train: Dataset, valid: Dataset | None = None, options: FitOptions | dict | None = None,
        callbacks: Sequence[Any] = (),
    ) -> Self:
        """Learn from ``train`` (``valid`` for early stopping where a model uses it);
        ``options`` are run options (`FitOptions`: device, progress, threads ...);
        ``callbacks`` (`cinerec.train.callbacks.Callback`) see every epoch of models
        trained by the `Trainer` (the others have no epochs to show and ignore them)."""
        if train.n_ratings == 0:
            raise ConfigError(f"cannot fit {self.name!r} on an empty training set")
        if not np.isfinite(train.ratings).all():
            raise ConfigError(
                f"cannot fit {self.name!r}: the training ratings contain NaN or infinity "
                "(load data through cinerec.data, which validates it)"
            )
        self.options_ = fit_options(options)
        self.fit_callbacks_ = tuple(callbacks)
        for key, value in fb.train_statistics(train).items():
            setattr(self, key + "_", value)
        self.compression = None
        self.catalogue = Catalogue.from_dataset(train)
        self._fit(train, valid)
        self.fitted_ = True
        return self

    # ---- rating prediction and scoring ------------------------------------------
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings for index pairs; -1 / out-of-range / cold use the fallback."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        warm_u, warm_i = self._warm_users(users), self._warm_items(items)
        out = fb.fallback_predict(self, users, items, warm_u, warm_i)
        both = warm_u & warm_i
        if both.any():
            out[both] = self._predict(users[both], items[both])
        return self._clip(out).astype(np.float32, copy=False)

    def fallback_kind(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Per pair: 0 model, 1 cold user (item baseline), 2 cold item (user baseline),
        3 both cold (global mean); see `cinerec.models.fallback.FALLBACK_NAMES`."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        return (~self._warm_users(users)).astype(np.int8) + 2 * (~self._warm_items(items)).astype(np.int8)

    def score(self, users: np.ndarray) -> np.ndarray:
        """(len(users), n_items) ranking scores over the whole catalogue.

        Cold users get the item baseline. Items without a training rating get -inf
        unless the model handles cold items: a collaborative model has nothing to rank
        them by.
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        out = np.empty((users.shape[0], self.n_items_), dtype=np.float32)
        warm = self._warm_users(users)
        if warm.any():
            out[warm] = self._score(users[warm])
        if (~warm).any():
            out[~warm] = self.item_baseline_[None, :]
        if not self.handles_cold_items:
            out[:, self.item_counts_ == 0] = -np.inf
        return out

    def seen_items(self, user: int) -> np.ndarray:
        """Item indices the user rated in train."""
        if not 0 <= user < self.n_users_:
            return np.empty(0, dtype=np.int32)
        return self.seen_indices_[self.seen_indptr_[user] : self.seen_indptr_[user + 1]]

    def train_history(self, user: int) -> History:
        """The user's training ratings as a `History` (empty for unknown users)."""
        if not 0 <= user < self.n_users_ or self.seen_ratings_ is None:
            return History.empty()
        s, e = self.seen_indptr_[user], self.seen_indptr_[user + 1]
        return History(self.seen_indices_[s:e].astype(np.int64), self.seen_ratings_[s:e])

    # ---- recommendations -----------------------------------------------------------
    def recommend(
        self,
        user: int | Query | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        risk_aversion: float = 0.0,
        *,
        history: History | None = None,
        candidates: np.ndarray | None = None,
        exclude: np.ndarray | None = None,
        explain: bool = True,
    ) -> Recommendations:
        """Top-``k`` for one `Query`, or for a user index (-1 / out of range: unknown)
        with the query's fields as keywords. A thin wrapper of `recommend_batch`.

        ``risk_aversion`` (lambda >= 0) re-ranks by ``score - lambda * sigma_item``,
        sigma being the item's train-only rating standard deviation (paper 000, 5.3).
        Unknown and cold users without a history get the damped item-mean ranking,
        flagged in ``fallback``.
        """
        if isinstance(user, Query):
            query = user
        else:
            query = Query(
                user=None if user is None else validate.integer("user", user),
                history=history,
                candidates=candidates,
                exclude=exclude,
                exclude_seen=exclude_seen,
                risk_aversion=risk_aversion,
            )
        return self.recommend_batch([query], k, explain=explain)[0]

    def recommend_batch(
        self, queries: Sequence[Query | int], k: int = 10, *, explain: bool = True
    ) -> list[Recommendations]:
        """Top-``k`` for many queries at once: known users are scored together (one
        matrix product per chunk instead of one per user; a user asked for twice is
        scored once), histories are folded in together. ``explain=False`` skips the
        per-item explanations."""
        self._check_fitted()
        k = validate.k(k)
        qs = [q if isinstance(q, Query) else Query(user=validate.integer("user", q)) for q in queries]
        plans = [self._plan(q) for q in qs]
        out: list[Recommendations | None] = [None] * len(qs)
        # Identical plain requests (same user and options, no history/lists) share one answer.
        first: dict[tuple, int] = {}
        same_as: dict[int, int] = {}
        for j, (q, p) in enumerate(zip(qs, plans, strict=True)):
            if p[0] == "model" and q.history is None and q.candidates is None and q.exclude is None:
                key = (p[1], float(q.risk_aversion), q.exclude_seen)
                if key in first:
                    same_as[j] = first[key]
                else:
                    first[key] = j
        rows_per_chunk = max(1, MAX_BATCH_CELLS // max(self.n_items_, 1))
        for basis in ("model", "fold-in", "fallback"):
            idx = [j for j, p in enumerate(plans) if p[0] == basis and j not in same_as]
            for s in range(0, len(idx), rows_per_chunk):
                chunk = idx[s : s + rows_per_chunk]
                recs = self._recommend_chunk(basis, [qs[j] for j in chunk], [plans[j] for j in chunk], k, explain)
                for j, rec in zip(chunk, recs, strict=True):
                    out[j] = rec
        for j, src in same_as.items():
            out[j] = dataclasses.replace(out[src])  # type: ignore[type-var]
        return out  # type: ignore[return-value]

    def _plan(self, q: Query) -> tuple[str, int | None, History | None, Fallback | None]:
        """(basis, user index or None, history to fold in, fallback reason)."""
        if q.risk_aversion != 0.0 or type(q.risk_aversion) not in (int, float):
            validate.risk_aversion(q.risk_aversion)
        user = None if q.user is None else validate.integer("user", q.user, lo=-validate.INT64_MAX, hi=validate.INT64_MAX)
        known = user is not None and 0 <= user < self.n_users_
        warm = known and (self.handles_cold_users or bool(self.user_counts_[user] > 0))
        history = q.history if q.history is not None and len(q.history) else None
        if history is not None:
            self._check_history(history)
            if self.folds_in:
                if warm and self.seen_ratings_ is not None:
                    train = self.train_history(user)
                    history = history.merged_over(train.items, train.ratings, train.timestamps)
                return "fold-in", user if known else None, history, None
            if warm:
                return "model", user, None, None
            return "fallback", user, None, Fallback(
                f"{self.name} cannot fold a new user's ratings in without retraining"
            )
        if warm:
            return "model", user, None, None
        if user is None:
            reason = "no user and no history given"
        elif not known:
            reason = "unknown user"
        else:
            reason = "user has no training ratings"
        return "fallback", user, None, Fallback(reason)

    def _check_history(self, h: History) -> None:
        if len(h) and (h.items.min() < 0 or h.items.max() >= self.n_items_):
            bad = h.items[(h.items < 0) | (h.items >= self.n_items_)][0]
            raise ConfigError(f"history item index {bad} is not in the catalogue (0..{self.n_items_ - 1})")
        lo, hi = self.rating_scale_
        if len(h) and (h.ratings.min() < lo or h.ratings.max() > hi):
            raise ConfigError(f"history ratings must be on the rating scale {lo:g}..{hi:g}")

    def _recommend_chunk(
        self, basis: str, qs: list[Query], plans: list[tuple], k: int, explain: bool
    ) -> list[Recommendations]:
        users = np.array([-1 if p[1] is None else p[1] for p in plans], dtype=np.int64)
        folded = self._fold_in([p[2] for p in plans]) if basis == "fold-in" else None
        lam = np.array([float(q.risk_aversion) for q in qs], dtype=np.float32)
        if self._scores_candidates_only(basis, qs):
            top, top_scores = self._rank_candidates(basis, qs, plans, users, folded, lam, k)
        else:
            top, top_scores = self._rank_catalogue(basis, qs, plans, users, folded, lam, k)
        counts = np.array([len(t) for t in top])
        flat = np.concatenate(top) if len(top) else np.empty(0, np.int64)
        rows = np.repeat(np.arange(len(qs)), counts)
        predicted = None
        if self.predicts_ratings:
            if basis == "fold-in":
                predicted = self._clip(np.asarray(self._predict_folded(folded, rows, flat), dtype=np.float64))
                predicted = predicted.astype(np.float32)
            else:
                known = users[rows] if basis == "model" else np.full(flat.shape[0], -1)
                predicted = self.predict(known, flat)
        out = []
        start = 0
        for j in range(len(qs)):
            items = flat[start : start + counts[j]]
            why: list[Explanation | None] = []
            if explain:
                if basis == "model":
                    why = list(self._explain_many(int(users[j]), items))
                elif basis == "fold-in":
                    why = list(self._explain_folded(folded, j, items))
                else:
                    why = [
                        Popularity(int(self.item_counts_[i]), float(self.item_baseline_[i])) for i in items
                    ]
            end = start + counts[j]
            out.append(
                Recommendations(
                    items=items.astype(np.int32),
                    scores=top_scores[start:end],
                    predicted_ratings=None if predicted is None else predicted[start:end],
                    confidence=self.item_confidence_[items],
                    sigma=self.item_sigma_[items],
                    explanations=why,
                    user=plans[j][1],
                    basis=basis,  # type: ignore[arg-type]
                    fallback=plans[j][3],
                )
            )
            start = end
        return out

    def _rank_catalogue(self, basis: str, qs: list[Query], plans: list[tuple], users: np.ndarray, folded: Any,
                        lam: np.ndarray, k: int) -> tuple[list[np.ndarray], np.ndarray]:
        """Top-k per query over the whole catalogue: (item indices per query, their
        scores, concatenated)."""
        if basis == "model":
            scores = self._score(users)
        elif basis == "fold-in":
            scores = self._score_folded(folded)
        else:
            scores = np.broadcast_to(self.item_baseline_, (len(qs), self.n_items_))
        # float32 in place: the ranking overwrites the scores (masked entries are never
        # returned); a copy keeps the scores only when risk aversion shifts them.
        scores = np.asarray(scores, dtype=np.float32)
        if not (scores.flags.writeable and scores.flags.c_contiguous) or np.shares_memory(scores, self.item_baseline_):
            scores = np.array(scores, dtype=np.float32, order="C")
        ranking = scores
        if lam.any():
            scores = scores.copy()
            ranking -= lam[:, None] * self.item_sigma_[None, :]
        if basis == "fallback" or not self.handles_cold_items:
            ranking[:, self.item_counts_ == 0] = -np.inf
        self._mask(ranking, qs, plans)
        top = top_k(ranking, k)
        rows = np.repeat(np.arange(len(qs)), [len(t) for t in top])
        return top, scores[rows, np.concatenate(top) if top else np.empty(0, np.int64)]

    def _scores_candidates_only(self, basis: str, qs: list[Query]) -> bool:
        """Whether to score only the queries' candidates, pair by pair: the model's pair
        scores equal its catalogue scores (`scores_pairs`), every query has a candidate
        list (an ANN index's, a first stage's), and the lists are short."""
        if not self.scores_pairs or basis == "fallback" or any(q.candidates is None for q in qs):
            return False
        return sum(len(q.candidates) for q in qs) * 4 <= len(qs) * self.n_items_  # type: ignore[arg-type]

    def _rank_candidates(self, basis: str, qs: list[Query], plans: list[tuple], users: np.ndarray, folded: Any,
                         lam: np.ndarray, k: int) -> tuple[list[np.ndarray], np.ndarray]:
        """`_rank_catalogue` restricted to each query's candidates, scoring only those
        pairs (same scores, same exclusions, same ties: lower item index first)."""
        cands = [np.unique(self._items_arg(q.candidates, "candidates")) for q in qs]
        counts = np.array([len(c) for c in cands])
        rows = np.repeat(np.arange(len(qs)), counts)
        flat = np.concatenate(cands) if cands else np.empty(0, np.int64)
        if basis == "model":
            pair = self._score_pairs(users[rows], flat)
        else:
            pair = self._score_folded_pairs(folded, rows, flat)
        pair = np.asarray(pair, dtype=np.float32)
        ranked = pair - lam[rows] * self.item_sigma_[flat] if lam.any() else pair.copy()
        if not self.handles_cold_items:
            ranked[self.item_counts_[flat] == 0] = -np.inf
        excluded = [self.excluded_items(q, plan) for q, plan in zip(qs, plans, strict=True)]
        ex_rows = np.repeat(np.arange(len(qs)), [len(e) for e in excluded])
        if ex_rows.size:
            keys = rows * self.n_items_ + flat
            ranked[np.isin(keys, ex_rows * self.n_items_ + np.concatenate(excluded))] = -np.inf
        width = int(counts.max()) if counts.size else 0
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if counts.size else counts
        col = np.arange(flat.shape[0]) - np.repeat(starts, counts)
        grid = np.full((len(qs), max(width, 1)), -np.inf, dtype=np.float32)
        grid[rows, col] = ranked
        picked = top_k(grid, k)
        top = [cands[j][p] for j, p in enumerate(picked)]
        at = np.concatenate([starts[j] + p for j, p in enumerate(picked)]) if picked else np.empty(0, np.int64)
        return top, pair[at.astype(np.int64)]

    def _mask(self, ranking: np.ndarray, qs: list[Query], plans: list[tuple]) -> None:
        """-inf on excluded items: seen (train and history), ``exclude``, non-candidates."""
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        for j, (q, plan) in enumerate(zip(qs, plans, strict=True)):
            c = self.excluded_items(q, plan)
            if c.size:
                rows.append(np.full(c.shape[0], j))
                cols.append(c)
            if q.candidates is not None:
                cand = self._items_arg(q.candidates, "candidates")
                keep = ranking[j, cand].copy()
                ranking[j] = -np.inf
                ranking[j, cand] = keep
        if rows:
            ranking[np.concatenate(rows), np.concatenate(cols)] = -np.inf

    def excluded_items(self, q: Query, plan: tuple) -> np.ndarray:
        """Item indices ``q`` excludes under its `_plan`: the seen ones (train and
        history) when ``exclude_seen``, and ``exclude`` (may repeat items)."""
        parts = []
        if q.exclude_seen:
            user, history = plan[1], plan[2]
            if user is not None and 0 <= user < self.n_users_:
                parts.append(self.seen_items(user).astype(np.int64))
            if history is not None:
                parts.append(history.items)
            elif q.history is not None:
                parts.append(q.history.items)
        if q.exclude is not None:
            parts.append(self._items_arg(q.exclude, "exclude"))
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def _items_arg(self, items: Any, what: str) -> np.ndarray:
        arr = validate.index_array(what, items)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_items_):
            raise ConfigError(f"{what} holds item indices outside the catalogue (0..{self.n_items_ - 1})")
        return arr

    # ---- similar items ---------------------------------------------------------------
    @property
    def has_similar_items(self) -> bool:
        return type(self)._similar_scores is not Recommender._similar_scores or (
            type(self)._item_vectors is not Recommender._item_vectors
        )

    def similar_items(self, item: int, k: int = 10) -> SimilarItems:
        """The ``k`` warm items most similar to warm ``item`` (item vectors or the
        model's item-item matrix); `ConfigError` when the model has neither."""
        self._check_fitted()
        k = validate.k(k)
        item = validate.integer("item", item)
        if not 0 <= item < self.n_items_:
            raise ConfigError(f"item index {item} is not in the catalogue (0..{self.n_items_ - 1})")
        if self.item_counts_[item] == 0:
            raise ConfigError(f"item {item} has no training ratings: the model knows nothing similar")
        got = self._similar_scores(item) if self.has_similar_items else None
        if got is None:
            raise ConfigError(
                f"{self.name} has no item vectors or item-item matrix; similar_items works "
                "with item-knn, ease, svd, svdpp, als, ials, mf-torch, autorec and ncf"
            )
        sims, measure = got
        sims = np.asarray(sims, dtype=np.float64).copy()
        sims[item] = -np.inf
        sims[self.item_counts_ == 0] = -np.inf
        sims[~np.isfinite(sims)] = -np.inf
        top = top_k(sims[None, :], k)[0]
        return SimilarItems(item=item, items=top.astype(np.int32), scores=sims[top].astype(np.float32), measure=measure)

    # ---- retrieval (cinerec.serving.index) ----------------------------------------------
    def retrieval_space(self) -> RetrievalSpace | None:
        """The model's score as a maximum inner product (`cinerec.models.retrieval`), for
        an approximate nearest-neighbour index; None when the model has no such form."""
        return None

    # ---- factor / embedding tables (the compression protocol) --------------------------
    def embedding_tables(self) -> dict[str, Any]:
        """Name -> factor table (dense array or `EmbeddingTable`) the model scores with."""
        return {name: getattr(self, attr) for name, attr in self.factor_attrs.items()}

    def replace_embedding(self, name: str, table: Any) -> None:
        """Swap the table ``name`` (a key of `embedding_tables`) for another one."""
        if name not in self.factor_attrs:
            raise ConfigError(
                f"{name!r} is not a factor table of {self.name!r}; tables: "
                f"{', '.join(self.factor_attrs) or 'none'}"
            )
        setattr(self, self.factor_attrs[name], table)

    # ---- persistence ----------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Every array needed to rebuild the fitted model (base + model state); a
        compressed table contributes its arrays as ``model.<table>.<array>``."""
        self._check_fitted()
        out: dict[str, np.ndarray] = {}
        for key in fb.BASE_STATE:
            value = getattr(self, key + "_", None)
            if value is not None:
                out[f"_base.{key}"] = np.asarray(value)
        for key, value in self._state().items():
            if isinstance(value, np.ndarray):
                out[f"model.{key}"] = value
            elif isinstance(value, tb.EmbeddingTable):
                out |= {f"model.{key}.{k}": np.asarray(v) for k, v in value.arrays().items()}
            else:
                out[f"model.{key}"] = np.asarray(value)
        return out

    def load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any] | None = None) -> None:
        """Rebuild the fitted model from `state`'s arrays; ``tables`` are empty
        compressed tables (by name) to fill first (the artifact loader builds them)."""
        arrays = dict(arrays)
        missing = [k for k in fb.BASE_STATE if f"_base.{k}" not in arrays and k not in fb.OPTIONAL_BASE_STATE]
        if missing:
            raise ArtifactError(f"the weights lack the base arrays {', '.join(missing)}")
        for key in fb.BASE_STATE:
            setattr(self, key + "_", arrays.pop(f"_base.{key}", None))
        self.rating_scale_ = tuple(float(x) for x in np.ravel(self.rating_scale_))
        self.n_users_ = int(np.ravel(self.n_users_)[0])
        self.n_items_ = int(np.ravel(self.n_items_)[0])
        self.global_mean_ = float(np.ravel(self.global_mean_)[0])
        self._check_base_shapes()
        model = {k[6:]: v for k, v in arrays.items() if k.startswith("model.")}
        tables = dict(tables or {})
        for name, table in tables.items():
            if isinstance(table, tb.EmbeddingTable):  # numpy tables; torch modules load with the module
                prefix = f"{name}."
                table.load_arrays({k[len(prefix):]: model.pop(k) for k in list(model) if k.startswith(prefix)})
        try:
            self._load_state(model, tables)
        except KeyError as e:
            raise ArtifactError(
                f"the weights lack the array {e.args[0]!r} that {self.name!r} needs "
                "(are they another model's weights?)"
            ) from None
        self.fitted_ = True

    def _check_base_shapes(self) -> None:
        n_u, n_i = self.n_users_, self.n_items_
        expect = {
            "user_counts": n_u, "user_baseline": n_u, "seen_indptr": n_u + 1,
            "item_counts": n_i, "item_baseline": n_i, "item_sigma": n_i, "item_confidence": n_i,
        }  # fmt: skip
        for key, n in expect.items():
            if np.asarray(getattr(self, key + "_")).shape != (n,):
                raise ArtifactError(f"base array {key} has shape {np.shape(getattr(self, key + '_'))}, expected ({n},)")
        nnz = int(self.seen_indptr_[-1])
        if self.seen_indices_.shape != (nnz,) or (
            self.seen_ratings_ is not None and self.seen_ratings_.shape != (nnz,)
        ):
            raise ArtifactError("the seen-items arrays disagree with their index pointer")
        ptr, idx = np.asarray(self.seen_indptr_), np.asarray(self.seen_indices_)
        if ptr[0] != 0 or (np.diff(ptr) < 0).any() or (idx.size and (idx.min() < 0 or idx.max() >= n_i)):
            raise ArtifactError("the seen-items index pointer or item indices are out of range")
        counts = {"user_counts": self.user_counts_, "item_counts": self.item_counts_}
        if any((np.asarray(c) < 0).any() for c in counts.values()):
            raise ArtifactError("the user or item rating counts are negative")
        lo, hi = self.rating_scale_
        if not (np.isfinite([lo, hi]).all() and lo < hi):
            raise ArtifactError(f"the rating scale {self.rating_scale_} is not a finite interval")
        if self.seen_ratings_ is not None and nnz and (
            np.min(self.seen_ratings_) < lo or np.max(self.seen_ratings_) > hi
        ):
            raise ArtifactError(f"the stored ratings are outside the rating scale {lo:g}..{hi:g}")
        conf, sigma = np.asarray(self.item_confidence_), np.asarray(self.item_sigma_)
        if (sigma < 0).any() or (conf < -1e-6).any() or (conf > 1 + 1e-6).any():
            raise ArtifactError("item sigma must be >= 0 and item confidence in [0, 1]")

    def check_state(self) -> None:
        """Raise `ArtifactError` when loaded arrays disagree with the config or with each
        other: base shapes, the model's own checks (`_check_state`), then one user's
        scores and predictions as a smoke test."""
        self._check_base_shapes()
        self._check_state()
        warm_users = np.flatnonzero(self.user_counts_ > 0)[:1]
        warm_items = np.flatnonzero(self.item_counts_ > 0)[:1]
        if warm_users.size and warm_items.size:
            try:
                scores = self.score(warm_users)
                pred = self.predict(warm_users, warm_items)
            except (IndexError, ValueError, RuntimeError, KeyError) as e:
                raise ArtifactError(f"the weights do not fit the config of {self.name!r} ({e})") from None
            bad_scores = np.isnan(scores).any() or np.isposinf(scores).any()
            if scores.shape != (1, self.n_items_) or bad_scores or not np.isfinite(pred).all():
                raise ArtifactError(f"the weights of {self.name!r} give malformed scores")

    def _check_state(self) -> None:  # noqa: B027  (optional hook, empty by default)
        """Model-specific shape checks of loaded arrays (raise `ArtifactError`)."""

    def _expect_shape(self, what: str, got: tuple[int, ...], want: tuple[int, ...]) -> None:
        if tuple(got) != tuple(want):
            raise ArtifactError(f"{what} has shape {tuple(got)}, expected {tuple(want)} for this config")

    def artifact_extra(self) -> dict[str, Any]:
        """Extra JSON a model needs to rebuild its structure before `_load_state`.
        Stored in config.json."""
        return {"compression": self.compression}

    def apply_artifact_extra(self, extra: dict[str, Any]) -> None:
        """Counterpart of `artifact_extra`, called by the loader before `load_state`."""
        self.compression = extra.get("compression")

    # ---- internals ----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.fitted_:
            raise NotFittedError(f"model {self.name!r} is not fitted: call fit() or load it")

    def _clip(self, values: np.ndarray) -> np.ndarray:
        if self.predicts_ratings:
            np.clip(values, self.rating_scale_[0], self.rating_scale_[1], out=values)
        return values

    def _warm_users(self, users: np.ndarray) -> np.ndarray:
        inside = (users >= 0) & (users < self.n_users_)
        if self.handles_cold_users:
            return inside
        ok = inside.copy()
        ok[inside] = self.user_counts_[users[inside]] > 0
        return ok

    def _warm_items(self, items: np.ndarray) -> np.ndarray:
        inside = (items >= 0) & (items < self.n_items_)
        if self.handles_cold_items:
            return inside
        ok = inside.copy()
        ok[inside] = self.item_counts_[items[inside]] > 0
        return ok

    def _history_matrix(self, histories: list[History], values: str = "ratings") -> sp.csr_matrix:
        """Histories as a (len, n_items) CSR (``values``: "ratings" or "ones")."""
        lens = np.array([len(h) for h in histories], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lens)])
        items = np.concatenate([h.items for h in histories]) if histories else np.empty(0, np.int64)
        if values == "ones":
            data = np.ones(items.shape[0], dtype=np.float32)
        else:
            data = np.concatenate([h.ratings for h in histories]).astype(np.float32) if histories else np.empty(0, np.float32)
        m = sp.csr_matrix((data, items, indptr), shape=(len(histories), self.n_items_))
        m.sort_indices()
        return m
