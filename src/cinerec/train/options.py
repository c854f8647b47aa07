"""`FitOptions`: how a fit runs (device, progress, checkpoints, threads), never what it
learns. They are passed to ``Recommender.fit(train, valid, options=...)`` and to the
`Trainer`, and are not part of a model's config nor of its artifact: the same config and
seed give the same model whatever the options (up to GPU arithmetic).

Torch-free, so the classic models can take the same options without importing torch.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cinerec.errors import ConfigError

_DEVICE = re.compile(r"^(cpu|auto|cuda|cuda:\d+)$")
#: DDP communication hooks `cinerec.train.distributed` registers by name.
COMM_HOOKS = ("none", "fp16", "bf16", "powersgd")


class FitOptions(BaseModel):
    """Run options of a fit. ``device``: ``cpu`` | ``auto`` (CUDA when available) |
    ``cuda`` | ``cuda:N``; ``checkpoint_dir`` + ``resume`` continue an interrupted torch
    run; ``threads`` caps CPU threads of models that parallelise (0 = all cores);
    ``eval_batch_size`` bounds inference memory; ``mixed_precision`` autocasts on CUDA
    only (CPU always runs fp32); ``comm_hook`` compresses a distributed run's gradients."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str = "cpu"
    progress: bool = True
    checkpoint_dir: str | None = None
    resume: bool = False
    threads: int = Field(0, ge=0, le=1024)
    eval_batch_size: int = Field(8192, ge=1)
    mixed_precision: bool = True
    #: Gradient compression of a distributed run (a DDP communication hook): none |
    #: fp16 | bf16 | powersgd; ignored in a single process.
    comm_hook: str = "none"

    @field_validator("comm_hook")
    @classmethod
    def _check_hook(cls, v: str) -> str:
        if v not in COMM_HOOKS:
            raise ValueError(f"comm_hook must be one of {', '.join(COMM_HOOKS)}, got {v!r}")
        return v

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        if not _DEVICE.match(v):
            raise ValueError(f"device must be cpu, auto, cuda or cuda:N, got {v!r}")
        return v


#: Names of every run option (a config that sets one of them is told where it belongs).
RUN_OPTION_NAMES = frozenset(FitOptions.model_fields)


def fit_options(options: FitOptions | dict[str, Any] | None = None, **overrides: Any) -> FitOptions:
    """Normalise ``options`` (None, a dict or a `FitOptions`) plus overrides."""
    data = options.model_dump() if isinstance(options, FitOptions) else dict(options or {})
    data.update(overrides)
    try:
        return FitOptions.model_validate(data)
    except ValueError as e:
        raise ConfigError(f"invalid fit options:\n{e}") from None


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when this process was not launched by it)."""
    import os

    from cinerec._util import validate

    return validate.integer("WORLD_SIZE", os.environ.get("WORLD_SIZE", "1"), lo=1)
