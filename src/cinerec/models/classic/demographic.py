"""Demographic baseline: how people like the user rate each movie (new-user cold start).

Users are grouped by a configurable set of attributes of ``Dataset.users_meta``
(default: ML-1M's age bucket x gender; occupation optional). For group ``g`` and item
``i`` the score is a twice-damped mean:

    m_i    = mu  + sum_i (r - mu)          / (n_i  + 10)         overall item mean
    b_g    =       sum_g (r - m_i)         / (n_g  + damping)    group leniency
    s_gi   = m_i + b_g + sum_gi (r - m_i - b_g) / (n_gi + damping)

so an item the group rarely rated falls back to its overall damped mean (plus the
group's leniency); ``m_i`` is the base fallback's damped item mean
(`cinerec.models.fallback`, pseudo-count 10). A user with training ratings adds their own damped bias,
``b_u = sum_u (r - s_gi) / (n_u + user_damping)``. A user with *no* training ratings
but known demographics gets the group's scores (``handles_cold_users``): that is the
point of the model. A user whose attributes are unknown (no ``users_meta``, a missing
or unrecognised value) is scored as "everyone": ``m_i`` plus their bias, and a cold one
takes the declared fallback, explained.

Attributes are read from ``users_meta`` columns: ``age`` (years as in ml-100k, or ML-1M's
bucket codes 1, 18, 25 ...; both map to ML-1M's seven buckets), ``gender`` ("F"/"M")
and ``occupation`` (any text; the vocabulary is the one seen at fit time).

Folding in a `History` (no demographics) gives ``m_i`` plus the history's bias; a known
user's new feedback keeps their group. State: numpy arrays only (group keys as an int
array, group x item deviations as CSR, the occupation vocabulary as UTF-8 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp
from pydantic import Field, field_validator

from cinerec.data.dataset import Dataset
from cinerec.errors import ArtifactError
from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.explain import Explanation, Fallback, GroupTaste
from cinerec.models.query import History, Query
from cinerec.models.search import FloatRange, Param

Attribute = Literal["age", "gender", "occupation"]
#: Lower edges of ML-1M's age buckets after the first ("under 18"), and their labels.
AGE_EDGES = np.array([18, 25, 35, 45, 50, 56])
AGE_LABELS = ("under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")
GENDERS = ("F", "M")


def age_buckets(age: np.ndarray) -> np.ndarray:
    """ML-1M bucket index 0-6 of ages in years or of ML-1M codes; -1 if missing/invalid."""
    a = np.asarray(age, dtype=np.float64)
    ok = np.isfinite(a) & (a >= 1) & (a < 130)
    return np.where(ok, np.searchsorted(AGE_EDGES, np.where(ok, a, 0), side="right"), -1).astype(np.int32)


def attribute_codes(
    meta: pl.DataFrame | None, n_users: int, attributes: tuple[str, ...], occupations: tuple[str, ...]
) -> np.ndarray:
    """(n_users, len(attributes)) int32 codes of each user's attributes; -1 unknown."""
    codes = np.full((n_users, len(attributes)), -1, dtype=np.int32)
    if meta is None or meta.height == 0:
        return codes
    if "user" in meta.columns:
        rows = meta.get_column("user").cast(pl.Int64).to_numpy()
    elif meta.height == n_users:
        rows = np.arange(n_users)
    else:
        return codes
    inside = (rows >= 0) & (rows < n_users)
    for j, attr in enumerate(attributes):
        if attr not in meta.columns:
            continue
        col = meta.get_column(attr)
        if attr == "age":
            vals = age_buckets(col.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy())
        else:
            names = GENDERS if attr == "gender" else occupations
            text = col.cast(pl.String, strict=False).str.strip_chars()
            if attr == "gender":
                text = text.str.to_uppercase()
            lut = {name: k for k, name in enumerate(names)}
            vals = text.replace_strict(lut, default=-1, return_dtype=pl.Int32).fill_null(-1).to_numpy()
        codes[rows[inside], j] = vals[inside]
    return codes


@dataclass(frozen=True, eq=False)
class _GroupHistory(History):
    """A history that remembers the demographic group of the known user it belongs to."""

    group: int = -1


class Demographic(Recommender):
    """Damped item means per demographic group, plus the user's damped bias.

    Hyper-parameters: ``attributes`` (subset of age, gender, occupation; default age x
    gender), ``damping`` (pseudo-count pulling a group's item mean, and its leniency,
    to the item's overall damped mean) and ``user_damping`` (for the user's bias). See the module docstring for the model and its fallbacks.
    """

    name = "demographic"
    search_space: ClassVar[dict[str, Param]] = {
        "damping": FloatRange(1.0, 100.0, log=True),
        "user_damping": FloatRange(1.0, 50.0, log=True),
    }
    handles_cold_users = True
    folds_in = True
    scores_pairs = True

    class Config(ModelConfig):
        attributes: tuple[Attribute, ...] = ("age", "gender")
        damping: float = Field(25.0, ge=0)
        user_damping: float = Field(5.0, ge=0)

        @field_validator("attributes")
        @classmethod
        def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
            if len(set(v)) != len(v):
                raise ValueError(f"attributes must be distinct, got {list(v)}")
            return v

    # ---- fitting -----------------------------------------------------------------------
    def _fit(self, train: Dataset, valid: Dataset | None) -> None:
        c = self.config
        attrs = tuple(c.attributes)
        meta = train.users_meta
        occ: tuple[str, ...] = ()
        if "occupation" in attrs and meta is not None and "occupation" in meta.columns:
            col = meta.get_column("occupation").cast(pl.String, strict=False).str.strip_chars()
            occ = tuple(sorted(col.drop_nulls().unique().to_list()))
        self.occupations_ = occ
        codes = attribute_codes(meta, train.n_users, attrs, occ)
        known = (codes >= 0).all(axis=1) if attrs else np.zeros(train.n_users, dtype=bool)
        keys, inverse = np.unique(codes[known], axis=0, return_inverse=True)
        self.group_keys_ = keys.astype(np.int32).reshape(-1, len(attrs))
        self.user_group_ = np.full(train.n_users, -1, dtype=np.int32)
        self.user_group_[known] = np.ravel(inverse).astype(np.int32)

        n_items, n_groups = train.n_items, self.group_keys_.shape[0]
        u, i = train.users.astype(np.int64), train.items.astype(np.int64)
        r = train.ratings.astype(np.float64)
        mu = float(train.global_mean)
        self.mu_ = mu
        # The overall damped item mean is the declared fallback's, so that an unknown
        # group and a cold user without demographics get the very same numbers.
        self.item_mean_ = np.asarray(self.item_baseline_, dtype=np.float32).copy()
        m = self.item_mean_.astype(np.float64)

        g = self.user_group_[u].astype(np.int64)
        ing = g >= 0
        gg, gi, resid = g[ing], i[ing], r[ing] - m[i[ing]]
        n_g = np.bincount(gg, minlength=n_groups)
        self.group_bias_ = (np.bincount(gg, resid, n_groups) / (n_g + c.damping)).astype(np.float32)
        self.group_count_ = n_g.astype(np.int64)
        pair, at = np.unique(gg * n_items + gi, return_inverse=True)
        at = np.ravel(at)
        n_gi = np.bincount(at, minlength=pair.size)
        dev = np.bincount(at, resid - self.group_bias_[gg], pair.size) / (n_gi + c.damping)
        self.group_indptr_ = np.searchsorted(pair // max(n_items, 1), np.arange(n_groups + 1)).astype(np.int64)
        self.group_items_ = (pair % max(n_items, 1)).astype(np.int32)
        self.group_dev_ = dev.astype(np.float32)
        self.group_n_ = n_gi.astype(np.int64)
        self._build()

        s = self._pair_scores(g, i)
        n_u = np.bincount(u, minlength=train.n_users)
        self.user_bias_ = (np.bincount(u, r - s, train.n_users) / (n_u + c.user_damping)).astype(np.float32)

    def _build(self) -> None:
        """Derived structures: the group x item deviation matrix and its sorted keys."""
        n_groups, n_items = self.group_keys_.shape[0], self.n_items_
        self._dev = sp.csr_matrix(
            (self.group_dev_, self.group_items_, self.group_indptr_), shape=(n_groups, n_items)
        )
        rows = np.repeat(np.arange(n_groups, dtype=np.int64), np.diff(self.group_indptr_))
        self._keys = rows * n_items + self.group_items_

    # ---- scoring ---------------------------------------------------------------------------
    def _lookup(self, groups: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position of each (group, item) in the CSR, and whether it is there."""
        keys = groups.astype(np.int64) * self.n_items_ + items
        pos = np.minimum(np.searchsorted(self._keys, keys), max(self._keys.size - 1, 0))
        found = (groups >= 0) & (self._keys.size > 0)
        if self._keys.size:
            found &= self._keys[pos] == keys
        return pos, found

    def _pair_scores(self, groups: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``s_gi`` (``m_i`` for group -1), float64."""
        items = np.asarray(items, dtype=np.int64)
        groups = np.asarray(groups, dtype=np.int64)
        out = self.item_mean_[items].astype(np.float64)
        ing = groups >= 0
        out[ing] += self.group_bias_[groups[ing]]
        pos, found = self._lookup(groups, items)
        out[found] += self.group_dev_[pos[found]]
        return out

    def _group_rows(self, groups: np.ndarray, bias: np.ndarray) -> np.ndarray:
        out = np.empty((groups.shape[0], self.n_items_), dtype=np.float32)
        out[:] = self.item_mean_[None, :]
        out += bias.astype(np.float32)[:, None]
        ing = groups >= 0
        if ing.any():
            out[ing] += self.group_bias_[groups[ing]][:, None]
            out[ing] += self._dev[groups[ing]].toarray()
        return out

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._pair_scores(self.user_group_[users], items) + self.user_bias_[users]

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._group_rows(self.user_group_[users], self.user_bias_[users])

    def _warm_users(self, users: np.ndarray) -> np.ndarray:
        # A user is the model's when they have training ratings or a known group.
        inside = (users >= 0) & (users < self.n_users_)
        ok = inside.copy()
        idx = users[inside]
        ok[inside] = (self.user_counts_[idx] > 0) | (self.user_group_[idx] >= 0)
        return ok

    def _plan(self, q: Query) -> tuple[str, int | None, History | None, Fallback | None]:
        basis, user, history, why = super()._plan(q)
        group = int(self.user_group_[user]) if user is not None and 0 <= user < self.n_users_ else -1
        if basis == "model" and group < 0 and self.user_counts_[user] == 0:
            attrs = " x ".join(self.config.attributes) or "attributes"
            return "fallback", user, None, Fallback(f"user has no training ratings and no known {attrs}")
        if basis == "fold-in" and group >= 0 and history is not None:
            history = _GroupHistory(history.items, history.ratings, history.timestamps, group=group)
        return basis, user, history, why

    # ---- fold-in -------------------------------------------------------------------------
    def _fold_in(self, histories: list[History]) -> tuple[np.ndarray, np.ndarray]:
        """(bias, group) per history: the damped mean residual against the group's
        scores (the overall item means when the history carries no group)."""
        groups = np.array([getattr(h, "group", -1) for h in histories], dtype=np.int64)
        lens = np.array([len(h) for h in histories], dtype=np.int64)
        rows = np.repeat(np.arange(len(histories)), lens)
        items = np.concatenate([h.items for h in histories]) if histories else np.empty(0, np.int64)
        ratings = np.concatenate([h.ratings for h in histories]) if histories else np.empty(0, np.float32)
        resid = ratings.astype(np.float64) - self._pair_scores(groups[rows], items)
        bias = np.bincount(rows, resid, len(histories)) / (lens + self.config.user_damping)
        return bias, groups

    def _score_folded(self, folded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        bias, groups = folded
        return self._group_rows(groups, bias)

    def _predict_folded(self, folded: tuple[np.ndarray, np.ndarray], rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        bias, groups = folded
        return self._pair_scores(groups[rows], items) + bias[rows]

    # ---- explanations ----------------------------------------------------------------------
    def group_label(self, group: int) -> str:
        """Display label of a group, e.g. "25-34, F"; "" for -1 (unknown)."""
        if group < 0:
            return ""
        parts = []
        for attr, code in zip(self.config.attributes, self.group_keys_[group].tolist(), strict=True):
            names = AGE_LABELS if attr == "age" else GENDERS if attr == "gender" else self.occupations_
            parts.append(names[code] if 0 <= code < len(names) else "?")
        return ", ".join(parts)

    def _explain_group(self, group: int, bias: float | None, items: np.ndarray) -> list[Explanation | None]:
        items = np.asarray(items, dtype=np.int64)
        groups = np.full(items.shape[0], group, dtype=np.int64)
        means = self._pair_scores(groups, items)
        if group >= 0:
            pos, found = self._lookup(groups, items)
            counts = np.where(found, self.group_n_[pos] if self.group_n_.size else 0, 0)
        else:
            counts = self.item_counts_[items]
        label = self.group_label(group)
        return [
            GroupTaste(label, float(m), int(n), bias)
            for m, n in zip(means.tolist(), np.asarray(counts).tolist(), strict=True)
        ]

    def _user_bias_or_none(self, user: int) -> float | None:
        return float(self.user_bias_[user]) if self.user_counts_[user] > 0 else None

    def explain(self, user: int, item: int) -> Explanation | None:
        return self._explain_many(user, np.array([item]))[0]

    def _explain_many(self, user: int, items: np.ndarray) -> list[Explanation | None]:
        return self._explain_group(int(self.user_group_[user]), self._user_bias_or_none(user), items)

    def _explain_folded(self, folded: tuple[np.ndarray, np.ndarray], row: int, items: np.ndarray) -> list[Explanation | None]:
        bias, groups = folded
        return self._explain_group(int(groups[row]), float(bias[row]), items)

    # ---- persistence -------------------------------------------------------------------------
    def _state(self) -> dict[str, np.ndarray]:
        vocab = "\n".join(self.occupations_).encode("utf-8")
        return {
            "mu": np.array([self.mu_]),
            "item_mean": self.item_mean_,
            "user_bias": self.user_bias_,
            "user_group": self.user_group_,
            "group_keys": self.group_keys_,
            "group_bias": self.group_bias_,
            "group_count": self.group_count_,
            "group_indptr": self.group_indptr_,
            "group_items": self.group_items_,
            "group_dev": self.group_dev_,
            "group_n": self.group_n_,
            # A count first, so that an empty vocabulary is still a non-empty array.
            "occupations": np.frombuffer(bytes([min(len(self.occupations_), 255)]) + vocab, dtype=np.uint8),
        }

    def _load_state(self, arrays: dict[str, np.ndarray], tables: dict[str, Any]) -> None:
        self.mu_ = float(np.ravel(arrays["mu"])[0])
        self.item_mean_ = arrays["item_mean"].astype(np.float32)
        self.user_bias_ = arrays["user_bias"].astype(np.float32)
        self.user_group_ = arrays["user_group"].astype(np.int32)
        self.group_keys_ = arrays["group_keys"].astype(np.int32).reshape(-1, len(self.config.attributes))
        self.group_bias_ = arrays["group_bias"].astype(np.float32)
        self.group_count_ = arrays["group_count"].astype(np.int64)
        self.group_indptr_ = arrays["group_indptr"].astype(np.int64)
        self.group_items_ = arrays["group_items"].astype(np.int32)
        self.group_dev_ = arrays["group_dev"].astype(np.float32)
        self.group_n_ = arrays["group_n"].astype(np.int64)
        raw = np.asarray(arrays["occupations"], dtype=np.uint8).tobytes()
        self.occupations_ = tuple(raw[1:].decode("utf-8").split("\n")) if raw[:1] != b"\x00" else ()
        self._check_state()
        self._build()

    def _check_state(self) -> None:
        n_u, n_i, n_g = self.n_users_, self.n_items_, self.group_keys_.shape[0]
        nnz = self.group_items_.shape[0]
        self._expect_shape("item_mean", self.item_mean_.shape, (n_i,))
        self._expect_shape("user_bias", self.user_bias_.shape, (n_u,))
        self._expect_shape("user_group", self.user_group_.shape, (n_u,))
        self._expect_shape("group_bias", self.group_bias_.shape, (n_g,))
        self._expect_shape("group_count", self.group_count_.shape, (n_g,))
        self._expect_shape("group_indptr", self.group_indptr_.shape, (n_g + 1,))
        self._expect_shape("group_dev", self.group_dev_.shape, (nnz,))
        self._expect_shape("group_n", self.group_n_.shape, (nnz,))
        ptr, ug = self.group_indptr_, self.user_group_
        if ptr[0] != 0 or ptr[-1] != nnz or (np.diff(ptr) < 0).any():
            raise ArtifactError("the group x item index pointer is malformed")
        if nnz and (self.group_items_.min() < 0 or self.group_items_.max() >= n_i):
            raise ArtifactError("the group x item matrix holds items outside the catalogue")
        if ug.size and (ug.min() < -1 or ug.max() >= n_g):
            raise ArtifactError("user_group holds a group that does not exist")
