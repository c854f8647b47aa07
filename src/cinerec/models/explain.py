"""The typed explanations every model gives, and every front end renders.

One small family, each with ``to_text(catalogue)`` (one line for a person) and
``to_dict(catalogue)`` (structured JSON with ``kind`` and ``text``), so the CLI, the
REST/gRPC layer and the web page show any model's "why" without knowing the model
and without branching on dict keys:

- `BecauseYouRated`: the rated items that carried a recommendation, with their weight
  (item-knn: similarity; ease / ials: contribution to the score);
- `SimilarUsers`: how many of the user's nearest neighbours rated the item (user-knn);
- `ScoreShares`: the share of the user side and of the item side in the score, in
  [0, 1] and summing to 1 (ncf: attention weights or gradient x input);
- `ScoreBreakdown`: an additive score taken apart (bias, svd, als, mf-torch ...):
  global mean + movie bias + user bias + taste match;
- `Popularity`: how many people rated it and how well (popular, fallbacks);
- `GroupTaste`: how people like the user (age bucket, gender ...) rate it (demographic);
- `Fallback`: why the model could not personalise (unknown user, no history, a model
  that cannot fold a new user in), and what it ranked by instead.

A ``catalogue`` (`cinerec.data.catalogue.Catalogue`) turns item indices into raw ids
and titles; without one, indices are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from cinerec.data.catalogue import Catalogue


class Explanation:
    """Base of every explanation type (frozen dataclasses below)."""

    kind: ClassVar[str] = ""
    #: What the "why" column means for this kind (a table caption).
    caption: ClassVar[str] = ""

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        raise NotImplementedError

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        raise NotImplementedError

    def to_dict(self, catalogue: Catalogue | None = None) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.to_text(catalogue), **self._fields(catalogue)}


def _item_refs(items: tuple[int, ...], catalogue: Catalogue | None) -> list[dict[str, Any]]:
    if catalogue is None:
        return [{"item": int(i)} for i in items]
    titles = catalogue.titles(list(items))
    raw = catalogue.item_ids.raw(list(items))
    return [
        {"item": int(i), "item_id": r.item() if hasattr(r, "item") else r, "title": t}
        for i, r, t in zip(items, raw, titles, strict=True)
    ]


@dataclass(frozen=True)
class BecauseYouRated(Explanation):
    """Rated items behind a recommendation, strongest first."""

    items: tuple[int, ...]
    weights: tuple[float, ...]
    measure: str = "similarity"  # or "contribution"

    kind: ClassVar[str] = "because_you_rated"
    caption: ClassVar[str] = "why: the movies you rated that carried it most (weight)"

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        if not self.items:
            return "no single rated movie stands out"
        names = catalogue.titles(list(self.items)) if catalogue else [f"item {i}" for i in self.items]
        parts = [f"{n} ({w:.2f})" for n, w in zip(names, self.weights, strict=True)]
        return "because you rated " + "; ".join(parts)

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        refs = _item_refs(self.items, catalogue)
        for ref, w in zip(refs, self.weights, strict=True):
            ref["weight"] = float(w)
        return {"measure": self.measure, "items": refs}


@dataclass(frozen=True)
class SimilarUsers(Explanation):
    """How many of the user's nearest neighbours rated the item."""

    n_users: int
    similarity_sum: float

    kind: ClassVar[str] = "similar_users"
    caption: ClassVar[str] = "why: how many of your most similar users rated it"

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        who = "user" if self.n_users == 1 else "users"
        return f"{self.n_users} similar {who} rated it (similarity {self.similarity_sum:.2f})"

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        return {"n_users": int(self.n_users), "similarity_sum": float(self.similarity_sum)}


@dataclass(frozen=True)
class ScoreShares(Explanation):
    """Share of the user side and of the item side in the score (sum 1)."""

    user_share: float
    item_share: float
    strength: float | None = None  # the score rescaled to [0, 1], when meaningful
    method: str = ""  # how the shares were measured ("attention", "gradient_x_input")

    kind: ClassVar[str] = "score_shares"
    caption: ClassVar[str] = "why: share of your taste and of the movie itself in the score"

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        text = f"your taste {self.user_share:.0%} / the movie {self.item_share:.0%}"
        if self.strength is not None:
            text += f", strength {self.strength:.2f}"
        return text + (f" ({self.method})" if self.method else "")

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        return {
            "user_share": float(self.user_share),
            "item_share": float(self.item_share),
            "strength": None if self.strength is None else float(self.strength),
            "method": self.method,
        }


@dataclass(frozen=True)
class ScoreBreakdown(Explanation):
    """An additive score taken apart: ``parts`` are (label, value) summing to ``total``."""

    parts: tuple[tuple[str, float], ...]
    total: float

    kind: ClassVar[str] = "score_breakdown"
    caption: ClassVar[str] = "why: the predicted rating taken apart"

    @classmethod
    def biased_mf(cls, mu: float, user_bias: float, item_biases: Any, tastes: Any) -> list[ScoreBreakdown]:
        """One breakdown per item of ``mu + b_u + b_i + <p_u, q_i>`` (biased MF)."""
        mu, bu = float(mu), float(user_bias)
        return [
            cls((("global mean", mu), ("movie bias", b), ("your bias", bu), ("taste match", t)), mu + b + bu + t)
            for b, t in zip(np.asarray(item_biases, dtype=np.float64).tolist(),
                            np.asarray(tastes, dtype=np.float64).tolist(), strict=True)
        ]

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        if not self.parts:
            return f"{self.total:.2f}"
        (label, value), rest = self.parts[0], self.parts[1:]
        return f"{label} {value:.2f}{''.join([f' {v:+.2f} {k}' for k, v in rest])} = {self.total:.2f}"

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        return {"parts": [{"label": k, "value": float(v)} for k, v in self.parts], "total": float(self.total)}


@dataclass(frozen=True)
class Popularity(Explanation):
    """How many people rated the item in train, and their damped mean rating."""

    n_ratings: int
    mean_rating: float

    kind: ClassVar[str] = "popularity"
    caption: ClassVar[str] = "why: how many people rated it, and how well"

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        return f"rated by {self.n_ratings:,} people, damped mean {self.mean_rating:.2f}"

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        return {"n_ratings": int(self.n_ratings), "mean_rating": float(self.mean_rating)}


@dataclass(frozen=True)
class GroupTaste(Explanation):
    """How people like the user (same age bucket, gender ...) rate the item: their
    damped mean and how many ratings it rests on (demographic). ``group`` is empty when
    the user's demographics are unknown (then everyone's damped mean); ``user_bias`` is
    the user's own damped offset when they have ratings."""

    group: str
    mean_rating: float
    n_ratings: int
    user_bias: float | None = None

    kind: ClassVar[str] = "group_taste"
    caption: ClassVar[str] = "why: how people like you rate it"

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        who = f"people like you ({self.group}) rate" if self.group else "no demographics known: everyone rates"
        text = f"{who} it {self.mean_rating:.1f} ({self.n_ratings:,} ratings)"
        return text if self.user_bias is None else text + f"; your bias {self.user_bias:+.2f}"

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        return {
            "group": self.group,
            "mean_rating": float(self.mean_rating),
            "n_ratings": int(self.n_ratings),
            "user_bias": None if self.user_bias is None else float(self.user_bias),
        }


@dataclass(frozen=True)
class Fallback(Explanation):
    """Why a list is not personal, and what it was ranked by instead."""

    reason: str
    ranked_by: str = "damped item mean (bias baseline)"

    kind: ClassVar[str] = "fallback"
    caption: ClassVar[str] = "not personalised"

    def to_text(self, catalogue: Catalogue | None = None) -> str:
        return f"{self.reason}: ranked by {self.ranked_by}"

    def _fields(self, catalogue: Catalogue | None) -> dict[str, Any]:
        return {"reason": self.reason, "ranked_by": self.ranked_by}


KINDS: dict[str, type[Explanation]] = {
    cls.kind: cls
    for cls in (BecauseYouRated, SimilarUsers, ScoreShares, ScoreBreakdown, Popularity, GroupTaste, Fallback)
}
