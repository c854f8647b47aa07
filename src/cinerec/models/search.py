"""Hyper-parameter search spaces, declared by each model next to its config.

A model class lists the fields worth tuning and their ranges as ``search_space``::

    class SVD(BiasedFactorModel):
        class Config(ModelConfig): ...
        search_space = {"n_factors": IntRange(16, 256, log=True), "reg": FloatRange(1e-3, 0.2, log=True)}

The types are plain data (no optimiser imported here); `cinerec.tuning` turns them into
Optuna suggestions. Every name must be a field of the model's config (`check_space`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cinerec.errors import ConfigError


@dataclass(frozen=True)
class IntRange:
    lo: int
    hi: int
    log: bool = False
    step: int = 1


@dataclass(frozen=True)
class FloatRange:
    lo: float
    hi: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class MemberWeights:
    """A list field with one weight per member of a stack (``members``): the first
    member's weight is held at 1 (the scale is free) and each other one searched in
    [lo, hi]."""

    lo: float
    hi: float
    log: bool = False


Param = IntRange | FloatRange | Choice | MemberWeights


def check_space(model_cls: Any) -> dict[str, Param]:
    """The model's search space, checked against its config's fields."""
    space = dict(getattr(model_cls, "search_space", {}) or {})
    fields = set(model_cls.Config.model_fields)
    unknown = sorted(set(space) - fields)
    if unknown:
        raise ConfigError(f"{model_cls.name}: search_space names {unknown}, which are not config fields")
    return space
