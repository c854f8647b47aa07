"""Models: the `Recommender` contract (base, query, explain), the registry, and the
model families (classic/ in numpy/numba, torch/ on the one Trainer).

    from cinerec.models import create_model, Query, History
"""

from cinerec.models.base import ModelConfig, Recommender
from cinerec.models.explain import (
    BecauseYouRated,
    Explanation,
    Fallback,
    Popularity,
    ScoreBreakdown,
    ScoreShares,
    SimilarUsers,
)
from cinerec.models.query import History, Query, Recommendations, SimilarItems
from cinerec.models.registry import available_models, create_model, model_class, register

__all__ = [
    "BecauseYouRated",
    "Explanation",
    "Fallback",
    "History",
    "ModelConfig",
    "Popularity",
    "Query",
    "Recommendations",
    "Recommender",
    "ScoreBreakdown",
    "ScoreShares",
    "SimilarItems",
    "SimilarUsers",
    "available_models",
    "create_model",
    "model_class",
    "register",
]
