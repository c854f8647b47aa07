"""`blend`: a linear stack of rating models, its weights learned on a validation part.

Stacking the way the Netflix Prize teams did (Töscher & Jahrer 2009; Sill et al.'s
feature-weighted linear stacking): a validation part is carved from the *train* part
(``valid_fraction`` of its rows, at random, seeded), every member is fitted on the rest
and predicts the held-out ratings, and ridge regression on those predictions gives the
blend's weights. With ``meta_features`` each weight also varies with how much the user
and the movie were rated (``w_j + a_j log(1 + n_u) + b_j log(1 + n_i)``, the counts
standardised on the held-out rows), so the blend can lean on neighbourhood models for
well-rated movies and on biases for thin users; off by default: on ml-latest-small it
gains 0.0007 RMSE and on small data it over-fits the held-out part. With ``refit`` (the default) the members
are then fitted again on the whole train part, so none of them loses the held-out rows.

Members are any rating models by name with their hyper-parameters; the artifact stores
every member's arrays under ``m<j>.`` with the blend's weights. Ranking scores are the
same blend of the members' scores; a new visitor's history is folded in when every
member folds in. The test part is never read.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cinerec._util.console import status
from cinerec.data.dataset import Dataset
from cinerec.data.splits import random_split
from cinerec.errors import ArtifactError, ConfigError, UnknownModel
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.explain import Explanation, ScoreBreakdown
from cinerec.models.query import History
from cinerec.models.registry import create_model, model_class
from cinerec.models.search import FloatRange, MemberWeights, Param

#: The stacking models, which cannot be members of a stack.
STACKS = ("blend", "rank-blend")


class Member(BaseModel):
    """One model of a stack: a registered model and its hyper-parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _registered(cls, v: str) -> str:
        try:
            model_class(v)
        except UnknownModel as e:
            raise ValueError(str(e)) from None
        if v in STACKS:
            raise ValueError(f"{v!r} cannot be a member of a blend")
        return v


def _check_members(members: list[Member], ratings: bool) -> list[Member]:
    """Each member's params validated by its own config (errors name the member);
    ``ratings``: refuse models that do not predict ratings."""
    for m in members:
        if ratings and not model_class(m.name).predicts_ratings:
            raise ValueError(f"{m.name!r} ranks but does not predict ratings: use rank-blend to blend it")
        try:
            model_class(m.name).Config.model_validate(m.params)
        except Exception as e:  # pydantic's ValidationError, with the member's name
            raise ValueError(f"member {m.name!r}: {e}") from None
    return members


def _default_members() -> list[Member]:
    return [
        Member(name="svdpp"),
        Member(name="svd"),
        Member(name="item-knn"),
        Member(name="user-knn"),
        Member(name="autorec"),
        Member(name="bias"),
    ]


class _Stack(Recommender):
    """What both stacks share: members fitted by name, their arrays in the artifact under
    ``m<j>.``, their artifact extras, fold-in when every member folds in."""

    #: True for the class (the default members all fold in); a fitted or loaded stack
    #: sets it to whether every one of its members does.
    folds_in = True

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.members_: list[Recommender] = []
        self._member_extras: list[dict[str, Any]] | None = None

    def _new_member(self, j: int) -> Recommender:
        spec = self.config.members[j]
        return create_model(spec.name, spec.params)

    def _member_options(self, j: int) -> dict[str, Any]:
        opts = self.options_.model_dump()
        if opts.get("checkpoint_dir"):
            opts["checkpoint_dir"] = f"{opts['checkpoint_dir']}/m{j}-{self.config.members[j].name}"
        return opts

    def _fit_members(self, train: Dataset, what: str) -> list[Recommender]:
        out = []
        for j, spec in enumerate(self.config.members):
            with status(self.options_.progress, f"{self.name}: fitting {spec.name} on {what}"):
                out.append(self._new_member(j).fit(train, options=self._member_options(j)))
        return out

    def _set_members(self, members: list[Recommender]) -> None:
        self.members_ = members
        self.folds_in = all(m.folds_in for m in members)

    # ---- persistence (the stack's own arrays: `_own_state` / `_load_own`) -----------
    def _own_state(self) -> dict[str, Any]:
        return {}

    def _load_own(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    def _state(self) -> dict[str, Any]:
        out = dict(self._own_state())
        for j, m in enumerate(self.members_):
            out |= {f"m{j}.{k}": v for k, v in m.state().items()}
        return out

    def artifact_extra(self) -> dict[str, Any]:
        return super().artifact_extra() | {"members": [m.artifact_extra() for m in self.members_]}

    def apply_artifact_extra(self, extra: dict[str, Any]) -> None:
        super().apply_artifact_extra(extra)
        self._member_extras = extra.get("members")

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        n = len(self.config.members)
        extras = self._member_extras or [{} for _ in range(n)]
        if len(extras) != n:
            raise ArtifactError(f"the artifact describes {len(extras)} members, the config {n}")
        self._load_own(arrays)
        members = []
        for j in range(n):
            m = self._new_member(j)
            m.options_ = self.options_
            m.apply_artifact_extra(extras[j])
            prefix = f"m{j}."
            m.load_state({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
            members.append(m)
        self._set_members(members)

    def _check_state(self) -> None:
        for m in self.members_:
            if (m.n_users_, m.n_items_) != (self.n_users_, self.n_items_):
                raise ArtifactError(f"member {m.name!r} was fitted on another catalogue")
            m._check_state()


class Blend(_Stack):
    """Ridge-regression stack of rating models (see the module docstring)."""

    name = "blend"
    search_space: ClassVar[dict[str, Param]] = {"ridge": FloatRange(0.1, 1000.0, log=True)}
    scores_pairs = True

    class Config(ModelConfig):
        members: list[Member] = Field(default_factory=_default_members, min_length=1)
        valid_fraction: float = Field(0.1, gt=0.0, lt=0.5)
        ridge: float = Field(10.0, ge=0.0)
        meta_features: bool = False
        refit: bool = True

        @field_validator("members")
        @classmethod
        def _rating_members(cls, v: list[Member]) -> list[Member]:
            return _check_members(v, ratings=True)

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        inner = random_split(train, test_frac=c.valid_fraction, seed=c.seed)
        part, held = inner.train, inner.test
        members = self._fit_members(part, f"{1 - c.valid_fraction:.0%} of train")
        users, items = held.users.astype(np.int64), held.items.astype(np.int64)
        warm = members[0].fallback_kind(users, items) == 0
        if warm.sum() < 10 * (len(members) + 1):
            raise ConfigError(
                f"blend: only {int(warm.sum())} held-out ratings have a user and a movie seen in "
                f"the rest of train; raise valid_fraction or give more data"
            )
        users, items, y = users[warm], items[warm], held.ratings[warm].astype(np.float64)
        preds = np.column_stack([m.predict(users, items) for m in members]).astype(np.float64)
        nu = np.log1p(np.bincount(part.users, minlength=train.n_users)[users])
        ni = np.log1p(np.bincount(part.items, minlength=train.n_items)[items])
        self.meta_mean_ = np.array([nu.mean(), ni.mean()])
        self.meta_scale_ = np.array([max(nu.std(), 1e-6), max(ni.std(), 1e-6)])
        x = self._design(preds, nu, ni)
        penalty = np.full(x.shape[1], c.ridge)
        penalty[-1] = 0.0  # the intercept
        self.coef_ = np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ y)
        self.valid_rmse_ = {
            "blend": float(np.sqrt(np.mean((np.clip(x @ self.coef_, *self.rating_scale_) - y) ** 2))),
            **{s.name: float(np.sqrt(np.mean((preds[:, j] - y) ** 2))) for j, s in enumerate(c.members)},
        }
        self._set_members(self._fit_members(train, "all of train") if c.refit else members)

    def _meta(self, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nu = np.log1p(self.user_counts_[users].astype(np.float64))
        ni = np.log1p(self.item_counts_[items].astype(np.float64))
        return nu, ni

    def _design(self, preds: np.ndarray, nu: np.ndarray, ni: np.ndarray) -> np.ndarray:
        """Columns: each member's prediction, (with meta features) the prediction times
        the standardised user and movie log-counts, then the intercept."""
        cols = [preds]
        if self.config.meta_features:
            zu = (nu - self.meta_mean_[0]) / self.meta_scale_[0]
            zi = (ni - self.meta_mean_[1]) / self.meta_scale_[1]
            cols += [preds * zu[:, None], preds * zi[:, None]]
        cols.append(np.ones((preds.shape[0], 1)))
        return np.concatenate(cols, axis=1)

    def weights(self) -> dict[str, float]:
        """Each member's weight at an average user and movie (the meta features at their
        mean), and the intercept; a member named twice is ``name#j``."""
        self._check_fitted()
        names = [s.name for s in self.config.members]
        keys = [n if names.count(n) == 1 else f"{n}#{j}" for j, n in enumerate(names)]
        return {k: float(self.coef_[j]) for j, k in enumerate(keys)} | {"intercept": float(self.coef_[-1])}

    # ---- prediction -----------------------------------------------------------------
    def _combine(self, preds: np.ndarray, nu: np.ndarray, ni: np.ndarray) -> np.ndarray:
        return self._design(preds, nu, ni) @ self.coef_

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        preds = np.column_stack([m.predict(users, items) for m in self.members_]).astype(np.float64)
        return self._combine(preds, *self._meta(users, items))

    def _member_grid(self, m: Recommender, users: np.ndarray) -> np.ndarray:
        """Member ``m``'s predicted ratings of ``users`` x every item, float64: its
        catalogue scores where those are its predictions (`scores_pairs`), else its
        `predict` pair by pair (a KNN model ranks by another score)."""
        if m.scores_pairs:
            return m._clip(np.asarray(m._score(users), dtype=np.float64))
        rows = np.repeat(users.astype(np.int64), self.n_items_)
        items = np.tile(np.arange(self.n_items_, dtype=np.int64), users.shape[0])
        return np.asarray(m.predict(rows, items), dtype=np.float64).reshape(users.shape[0], self.n_items_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        """`_predict` at every (user, item): the same blend of the members' predictions."""
        n = len(self.members_)
        out = np.full((users.shape[0], self.n_items_), self.coef_[-1], dtype=np.float64)
        zi = (np.log1p(self.item_counts_.astype(np.float64)) - self.meta_mean_[1]) / self.meta_scale_[1]
        zu = (np.log1p(self.user_counts_[users].astype(np.float64)) - self.meta_mean_[0]) / self.meta_scale_[0]
        for j, m in enumerate(self.members_):
            w = np.full((users.shape[0], 1), self.coef_[j])
            if self.config.meta_features:
                w = w + self.coef_[n + j] * zu[:, None] + self.coef_[2 * n + j] * zi[None, :]
            out += w * self._member_grid(m, users)
        return out.astype(np.float32)

    # ---- fold-in (when every member folds in) ------------------------------------
    def _fold_in(self, histories: list[History]) -> Any:
        counts = np.array([len(h) for h in histories], dtype=np.float64)
        return [m._fold_in(histories) for m in self.members_], counts

    def _predict_folded(self, folded: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        states, counts = folded
        preds = np.column_stack(
            [m._clip(np.asarray(m._predict_folded(f, rows, items), dtype=np.float64))
             for m, f in zip(self.members_, states, strict=True)]
        )
        return self._combine(preds, np.log1p(counts[rows]), np.log1p(self.item_counts_[items].astype(np.float64)))

    def _score_folded(self, folded: Any) -> np.ndarray:
        states, counts = folded
        n_rows = counts.shape[0]
        rows = np.repeat(np.arange(n_rows), self.n_items_)
        items = np.tile(np.arange(self.n_items_), n_rows)
        return self._predict_folded(folded, rows, items).reshape(n_rows, self.n_items_).astype(np.float32)

    # ---- explanations -------------------------------------------------------------
    def _breakdown(self, preds: np.ndarray, nu: float, ni: float) -> ScoreBreakdown:
        x = self._design(preds[None, :], np.array([nu]), np.array([ni]))[0]
        n = len(self.members_)
        contrib = x * self.coef_
        parts = []
        for j, spec in enumerate(self.config.members):
            share = contrib[j] + (contrib[n + j] + contrib[2 * n + j] if self.config.meta_features else 0.0)
            weight = share / preds[j] if preds[j] else 0.0
            parts.append((f"{spec.name} ({preds[j]:.2f} x {weight:.2f})", float(share)))
        parts.append(("intercept", float(contrib[-1])))
        return ScoreBreakdown(tuple(parts), float(contrib.sum()))

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        users = np.full(items.shape[0], user, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        preds = np.column_stack([m.predict(users, items) for m in self.members_]).astype(np.float64)
        nu, ni = self._meta(users, items)
        return [self._breakdown(preds[k], nu[k], ni[k]) for k in range(items.shape[0])]

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_folded(self, folded: Any, row: int, items: np.ndarray) -> list[Explanation | None]:
        states, counts = folded
        items = np.asarray(items, dtype=np.int64)
        rows = np.full(items.shape[0], row, dtype=np.int64)
        preds = np.column_stack(
            [m._clip(np.asarray(m._predict_folded(f, rows, items), dtype=np.float64))
             for m, f in zip(self.members_, states, strict=True)]
        )
        ni = np.log1p(self.item_counts_[items].astype(np.float64))
        return [self._breakdown(preds[k], float(np.log1p(counts[row])), ni[k]) for k in range(items.shape[0])]

    # ---- persistence ----------------------------------------------------------------
    def _own_state(self) -> dict[str, Any]:
        return {"coef": self.coef_, "meta_mean": self.meta_mean_, "meta_scale": self.meta_scale_}

    def _load_own(self, arrays: dict[str, np.ndarray]) -> None:
        self.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
        self.meta_mean_ = np.asarray(arrays["meta_mean"], dtype=np.float64)
        self.meta_scale_ = np.asarray(arrays["meta_scale"], dtype=np.float64)

    def _check_state(self) -> None:
        n = len(self.config.members)
        want = n * (3 if self.config.meta_features else 1) + 1
        self._expect_shape("the blend weights", self.coef_.shape, (want,))
        super()._check_state()


def _default_rank_members() -> list[Member]:
    return [Member(name="ease"), Member(name="item-knn")]


class RankBlend(_Stack):
    """A weighted sum of ranking models' per-user standardised scores.

    Each member scores the catalogue for a user; the scores of the movies with a train
    rating are standardised per user (mean 0, sd 1), so members on different scales
    (EASE's, item-knn's similarity sums, a rating model's predictions) add up; the blend
    ranks by ``sum_j weights[j] * z_j``. Members are any registered models; the weights
    are hyper-parameters (default ``ease`` 1.0 + ``item-knn`` 0.3, chosen on the validation
    part of ml-latest-small's per-user temporal 80/20 train part, never on its test part)
    and `cinerec tune rank-blend --metric ndcg@10` searches them. Ratings predicted are the
    damped item means, as for every ranking model.
    """

    name = "rank-blend"
    predicts_ratings = False
    search_space: ClassVar[dict[str, Param]] = {"weights": MemberWeights(0.0, 1.5)}

    class Config(ModelConfig):
        members: list[Member] = Field(default_factory=_default_rank_members, min_length=1)
        weights: list[float] = Field(default_factory=lambda: [1.0, 0.3])

        @model_validator(mode="before")
        @classmethod
        def _equal_weights_by_default(cls, data: Any) -> Any:
            """Members given without weights get one each (1.0)."""
            if isinstance(data, dict) and "members" in data and "weights" not in data:
                members = data["members"]
                data = dict(data) | {"weights": [1.0] * (len(members) if isinstance(members, list) else 0)}
            return data

        @field_validator("members")
        @classmethod
        def _members(cls, v: list[Member]) -> list[Member]:
            return _check_members(v, ratings=False)

        @model_validator(mode="after")
        def _one_weight_per_member(self) -> RankBlend.Config:
            if len(self.weights) != len(self.members):
                raise ValueError(f"give one weight per member: {len(self.members)} members, "
                                 f"{len(self.weights)} weights")
            if any(not np.isfinite(w) or w < 0 for w in self.weights):
                raise ValueError("weights must be finite and >= 0")
            if not any(self.weights):
                raise ValueError("at least one weight must be > 0")
            return self

    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        self._set_members(self._fit_members(train, "train"))

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    def _standardised(self, scores: np.ndarray) -> np.ndarray:
        """Per row: (s - mean) / sd over the movies with a train rating; a score that is
        not finite there (a member's own mask) becomes the row's lowest minus one."""
        s = np.asarray(scores, dtype=np.float64)
        warm = self.item_counts_ > 0
        v = np.where(np.isfinite(s[:, warm]), s[:, warm], np.nan)
        mu = np.nanmean(v, axis=1, keepdims=True) if v.size else np.zeros((s.shape[0], 1))
        sd = np.nanstd(v, axis=1, keepdims=True) if v.size else np.ones((s.shape[0], 1))
        sd[~(sd > 0)] = 1.0
        mu[~np.isfinite(mu)] = 0.0
        z = (s - mu) / sd
        bad = ~np.isfinite(z)
        if bad.any():
            low = np.nanmin(np.where(bad, np.nan, z), axis=1, keepdims=True)
            z = np.where(bad, np.nan_to_num(low, nan=0.0) - 1.0, z)
        return z

    def _member_z(self, users: np.ndarray) -> list[np.ndarray]:
        return [self._standardised(m._score(users)) for m in self.members_]

    def _combine(self, zs: list[np.ndarray]) -> np.ndarray:
        out = sum(w * z for w, z in zip(self.config.weights, zs, strict=True))
        return np.asarray(out, dtype=np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._combine(self._member_z(users))

    def _fold_in(self, histories: list[History]) -> Any:
        return [m._fold_in(histories) for m in self.members_]

    def _score_folded(self, folded: Any) -> np.ndarray:
        return self._combine([self._standardised(m._score_folded(f)) for m, f in zip(self.members_, folded, strict=True)])

    def _predict_folded(self, folded: Any, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_baseline_[items].astype(np.float64)

    def _breakdowns(self, zs: list[np.ndarray], items: np.ndarray) -> list[Explanation | None]:
        out: list[Explanation | None] = []
        for i in np.asarray(items, dtype=np.int64):
            parts = tuple((f"{s.name} (z {z[0, i]:+.2f} x {w:.2f})", float(w * z[0, i]))
                          for s, w, z in zip(self.config.members, self.config.weights, zs, strict=True))
            out.append(ScoreBreakdown(parts, float(sum(v for _, v in parts))))
        return out

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        return self._breakdowns(self._member_z(np.array([user], dtype=np.int64)), items)

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_folded(self, folded: Any, row: int, items: np.ndarray) -> list[Explanation | None]:
        zs = [self._standardised(m._score_folded(f)[row : row + 1]) for m, f in zip(self.members_, folded, strict=True)]
        return self._breakdowns(zs, items)
