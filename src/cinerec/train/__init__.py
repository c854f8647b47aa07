"""Training: run options (`FitOptions`, torch-free) and the single torch loop (`Trainer`).

The torch parts are imported on first use, so ``from cinerec.train.options import
FitOptions`` never pays for importing torch.
"""

from __future__ import annotations

from typing import Any

from cinerec.train.options import FitOptions, fit_options

_LAZY = {"Trainer", "TrainerConfig", "TrainHistory", "resolve_device", "seed_everything"}
__all__ = ["FitOptions", "TrainHistory", "Trainer", "TrainerConfig", "fit_options",
           "resolve_device", "seed_everything"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from cinerec.train import trainer

        return getattr(trainer, name)
    raise AttributeError(name)
