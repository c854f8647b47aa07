"""The single torch training loop (`Trainer`) used by every torch model."""

from cinerec.train.trainer import (
    Trainer,
    TrainerConfig,
    TrainHistory,
    resolve_device,
    seed_everything,
)

__all__ = ["TrainHistory", "Trainer", "TrainerConfig", "resolve_device", "seed_everything"]
