"""The model registry: short name -> "module:Class", in this one place.

Classes are imported when first asked for, so `cinerec --help` and the classic models
never pay for importing torch. A model whose module fails to import is an error, not
a missing model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cinerec.errors import UnknownModel

if TYPE_CHECKING:
    from cinerec.models.base import ModelConfig, Recommender

_REGISTRY: dict[str, str] = {
    "mean": "cinerec.models.classic.baseline:GlobalMean",
    "popular": "cinerec.models.classic.baseline:Popular",
    "bias": "cinerec.models.classic.baseline:Bias",
    "demographic": "cinerec.models.classic.demographic:Demographic",
    "user-knn": "cinerec.models.classic.knn:UserKNN",
    "item-knn": "cinerec.models.classic.knn:ItemKNN",
    "svd": "cinerec.models.classic.mf:SVD",
    "svdpp": "cinerec.models.classic.mf:SVDpp",
    "als": "cinerec.models.classic.mf:ALS",
    "timesvd": "cinerec.models.classic.timesvd:TimeSVD",
    "ials": "cinerec.models.classic.implicit:IALS",
    "ease": "cinerec.models.classic.implicit:EASE",
    "mf-torch": "cinerec.models.torch.mf:TorchMF",
    "autorec": "cinerec.models.torch.autorec:AutoRec",
    "ncf": "cinerec.models.torch.ncf:NCF",
    "feature-mlp": "cinerec.models.content.feature_mlp:FeatureMLP",
    "text-hybrid": "cinerec.models.content.text_hybrid:TextHybrid",
    "multimodal": "cinerec.models.content.multimodal:Multimodal",
    "gru4rec": "cinerec.models.sequence.gru4rec:GRU4Rec",
    "sasrec": "cinerec.models.sequence.sasrec:SASRec",
    "blend": "cinerec.models.blend:Blend",
    "rank-blend": "cinerec.models.blend:RankBlend",
}


def register(name: str, target: str) -> None:
    """Register a model class under a short name (``target`` = "module:Class")."""
    _REGISTRY[name] = target


def available_models() -> list[str]:
    return list(_REGISTRY)


def model_class(name: str) -> type[Recommender]:
    """The class registered under ``name``; `UnknownModel` lists the valid names."""
    try:
        target = _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownModel(
            f"no model named {name!r}; available: {', '.join(available_models())}"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def create_model(name: str, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any) -> Recommender:
    """A new, unfitted model ``name`` with its config (validated) and overrides."""
    return model_class(name)(config, **overrides)
