"""Training: run options (`FitOptions`, torch-free) and the single torch loop (`Trainer`)
with its batch sources and callbacks.

The torch parts are imported on first use, so ``from cinerec.train.options import
FitOptions`` never pays for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from cinerec.train.options import FitOptions, fit_options

_LAZY = {
    "Trainer": "trainer", "TrainerConfig": "trainer", "resolve_device": "trainer",
    "seed_everything": "trainer", "BatchSource": "batches", "TensorBatches": "batches",
    "Callback": "callbacks", "TrainHistory": "callbacks", "TrainState": "callbacks",
}  # fmt: skip
__all__ = ["FitOptions", "fit_options", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"cinerec.train.{_LAZY[name]}"), name)
    raise AttributeError(name)
