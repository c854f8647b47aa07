"""The query contract: what a caller asks a model for, and what comes back.

- `History`: items a person rated (indices), their ratings and optional timestamps. A
  model that can fold a user in without retraining (bias, svd, svdpp, als, ials, ease,
  item-knn, user-knn, autorec, mf-torch) scores from it directly.
- `Query`: a known user (index), and/or a history, plus a candidate set, items to
  exclude, whether to exclude what the user already rated, and ``risk_aversion``.
  With a known user *and* a history, the history is added to the user's training
  ratings (later feedback wins), which is how fresh feedback reaches the next list.
- `Recommendations`: one ranked list with scores, predicted ratings, confidence,
  sigma, a typed explanation per item, and the ``basis`` it was made on ("model",
  "fold-in" or "fallback", with the `Fallback` reason).
- `SimilarItems`: ``similar_items(item, k)``'s answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from cinerec._util import validate
from cinerec.errors import ConfigError
from cinerec.models.explain import Explanation, Fallback

if TYPE_CHECKING:
    from cinerec.data.catalogue import Catalogue
    from cinerec.data.dataset import Dataset

Basis = Literal["model", "fold-in", "fallback"]


@dataclass(frozen=True, eq=False)
class History:
    """Ratings of one person: item indices, ratings, optional timestamps.

    Repeated items keep their last occurrence (the latest feedback). Ratings must be
    finite; a model checks them against its rating scale.
    """

    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.items) != 1:
            raise ConfigError("history items must be a 1-d sequence of item indices")
        items = validate.index_array("history items", self.items)
        ratings = validate.float_array("history ratings", self.ratings)
        if ratings.shape != items.shape:
            raise ConfigError(
                f"a history needs one rating per item, got {items.size} items and {ratings.size} ratings"
            )
        if ratings.size and np.abs(ratings).max() > 1e6:
            raise ConfigError("history ratings must be on the data set's rating scale")
        ts = None
        if self.timestamps is not None:
            ts = validate.index_array("history timestamps", self.timestamps)
            if ts.shape != items.shape:
                raise ConfigError("history timestamps must have one entry per item")
        # Keep the last occurrence of each item (np.unique keeps the first: reverse).
        _, last = np.unique(items[::-1], return_index=True)
        keep = np.sort(items.size - 1 - last)
        object.__setattr__(self, "items", items[keep])
        object.__setattr__(self, "ratings", ratings[keep].astype(np.float32))
        object.__setattr__(self, "timestamps", None if ts is None else ts[keep])

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @classmethod
    def empty(cls) -> History:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))

    def merged_over(self, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray | None = None) -> History:
        """This history on top of earlier ratings (``items``, ``ratings``): ours win.
        The earlier ones come first; timestamps are kept when both sides have them."""
        older = ~np.isin(items, self.items)
        ts = None
        if timestamps is not None and self.timestamps is not None:
            ts = np.concatenate([np.asarray(timestamps, dtype=np.int64)[older], self.timestamps])
        return History(
            np.concatenate([np.asarray(items, dtype=np.int64)[older], self.items]),
            np.concatenate([np.asarray(ratings, dtype=np.float32)[older], self.ratings]),
            ts,
        )


@dataclass(frozen=True, eq=False)
class Query:
    """One recommendation request (see the module docstring for the semantics)."""

    user: int | None = None
    history: History | None = None
    candidates: np.ndarray | None = None
    exclude: np.ndarray | None = None
    exclude_seen: bool = True
    risk_aversion: float = 0.0


@dataclass(eq=False)
class Recommendations:
    """Top-K for one query, best first, with everything a person needs to trust it."""

    items: np.ndarray
    scores: np.ndarray
    predicted_ratings: np.ndarray | None
    confidence: np.ndarray
    sigma: np.ndarray
    explanations: list[Explanation | None] = field(default_factory=list)
    user: int | None = None
    basis: Basis = "model"
    fallback: Fallback | None = None

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def to_records(self, catalogue: Catalogue | Dataset | None = None) -> list[dict[str, Any]]:
        """One dict per item: rank, index, raw id, title, score, predicted rating,
        confidence, sigma and the explanation (``to_dict``)."""
        cat = _as_catalogue(catalogue)
        titles = cat.titles(self.items) if cat is not None else None
        out = []
        for j, item in enumerate(self.items):
            rec: dict[str, Any] = {
                "rank": j + 1,
                "item": int(item),
                "item_id": _raw(cat, int(item)),
                "score": float(self.scores[j]),
                "confidence": float(self.confidence[j]),
                "sigma": float(self.sigma[j]),
            }
            if titles is not None:
                rec["title"] = titles[j]
            if self.predicted_ratings is not None:
                rec["predicted_rating"] = float(self.predicted_ratings[j])
            why = self.explanations[j] if j < len(self.explanations) else None
            if why is not None:
                rec["explanation"] = why.to_dict(cat)
            out.append(rec)
        return out

    def to_dict(self, catalogue: Catalogue | Dataset | None = None) -> dict[str, Any]:
        cat = _as_catalogue(catalogue)
        return {
            "user": None if self.user is None else _raw_user(cat, self.user),
            "basis": self.basis,
            "fallback": None if self.fallback is None else self.fallback.to_dict(cat),
            "items": self.to_records(cat),
        }

    def caption(self) -> str | None:
        """What the explanations mean (for a table caption), or the fallback reason."""
        if self.fallback is not None:
            return self.fallback.to_text()
        kinds = {type(e) for e in self.explanations if e is not None}
        return "; ".join(sorted(k.caption for k in kinds)) or None


@dataclass(eq=False)
class SimilarItems:
    """Items most similar to ``item``, best first, with the similarity used."""

    item: int
    items: np.ndarray
    scores: np.ndarray
    measure: str

    def __len__(self) -> int:
        return int(self.items.shape[0])

    def to_records(self, catalogue: Catalogue | Dataset | None = None) -> list[dict[str, Any]]:
        cat = _as_catalogue(catalogue)
        titles = cat.titles(self.items) if cat is not None else None
        return [
            {"rank": j + 1, "item": int(i), "item_id": _raw(cat, int(i)), "similarity": float(s),
             **({"title": titles[j]} if titles is not None else {})}
            for j, (i, s) in enumerate(zip(self.items, self.scores, strict=True))
        ]


def _as_catalogue(obj: Any) -> Catalogue | None:
    if obj is None:
        return None
    from cinerec.data.catalogue import Catalogue

    if isinstance(obj, Catalogue):
        return obj
    return Catalogue.from_dataset(obj)


def _raw(cat: Catalogue | None, item: int) -> Any:
    if cat is None:
        return item
    v = cat.item_ids.raw(item)
    return v.item() if hasattr(v, "item") else v


def _raw_user(cat: Catalogue | None, user: int) -> Any:
    if cat is None or not 0 <= user < cat.n_users:
        return user
    v = cat.user_ids.raw(user)
    return v.item() if hasattr(v, "item") else v
